"""SQL sources: read a table or a query from PostgreSQL, SQLite or MySQL into one Polars frame.

    fetch_sql(source, env) -> (frame, notes)
    redact_url(url)        -> str   (the URL with any password replaced by ***)

Rows arrive as Arrow through the fastest engine that can read the URL (`engine: auto`):

    postgresql   adbc -> sqlalchemy      sqlite   adbc -> sqlalchemy
    mysql        connectorx -> sqlalchemy other    sqlalchemy

ADBC and connectorx are both Arrow-native and 5-6x faster than SQLAlchemy's row tuples
(bench/ingest_sql.py, 1,000,000 rows x 20 columns: 0.44, 0.52 and 0.08 M rows/s). connectorx
was about 15 % faster on PostgreSQL (25 % less client CPU), but it panics on money, point,
xml, timetz, cidr, macaddr and interval columns and on NaN numerics, and its pool retries a
failed login for 30 s; so ADBC, which reads every type or says which it cannot, goes first.
When the fast engine cannot read a column type (PostgreSQL's inet or range types, a SQLite
column holding both numbers and text) the next one reads the source and a note says so.
Errors the next engine would meet too (unreachable server, bad credentials, missing database
or table, SQL errors) are raised at once, with the password scrubbed from the message.

Whatever the engine, types are normalised: NUMERIC/DECIMAL and REAL -> Float64, integers ->
Int64, timestamps with a time zone -> UTC, UUID and JSON -> String, arrays and composites ->
JSON text, intervals -> Float64 seconds, money -> Float64, binary -> hex text. `sqlite:///data.db` is relative
to the working directory, as SQLAlchemy reads it.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

import polars as pl

from looml.errors import DataError, Problem, did_you_mean
from looml.spec import SqlSource

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.engine import URL

__all__ = ["CONNECT_TIMEOUT_S", "describe_sql", "fetch_sql", "redact_url"]

CONNECT_TIMEOUT_S = 10
# engine: auto's order per dialect (fastest first; see the module docstring), and what each engine reads.
_AUTO = {"postgresql": ["adbc", "sqlalchemy"], "sqlite": ["adbc", "sqlalchemy"],
         "mysql": ["connectorx", "sqlalchemy"], "mariadb": ["connectorx", "sqlalchemy"]}
_READS = {"adbc": {"postgresql", "sqlite"}, "connectorx": {"postgresql", "sqlite", "mysql", "mariadb"}}
_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}
_DRIVERS = {"MySQLdb": "mysqlclient", "pymysql": "pymysql", "pyodbc": "pyodbc", "oracledb": "oracledb",
            "psycopg2": "psycopg2-binary", "cx_Oracle": "oracledb", "pymssql": "pymssql"}
_VAR = re.compile(r"\$\{([^}]*)\}")
_IDENTIFIER = re.compile(r"[^\W\d]\w*")
_USERINFO = re.compile(r"^(?P<head>[\w+.-]+://[^:/@?#]*):[^?#]*@")
_SECRET_PARAM = re.compile(r"(?P<key>[?&][^=&]*(?:pass|pwd|secret|token|key)[^=&]*=)[^&]*", re.I)

_NO_DATABASE = re.compile(r"database \"(?P<name>[^\"]*)\" does not exist|"
                          r"unknown database '(?P<my>[^']*)'", re.I)
_AUTH = re.compile(r"authentication failed|access denied for user|no password supplied|fe_sendauth|"
                   r"role \"[^\"]*\" does not exist", re.I)
_UNREACHABLE = re.compile(r"connection refused|could not translate host name|failed to (?:resolve|lookup)|"
                          r"name or service not known|network is unreachable|no route to host|"
                          r"timeout expired|timed out|can't connect to (?:mysql|mariadb)|"
                          r"server closed the connection unexpectedly|could not connect to server", re.I)
# The server ended the session while the query ran (an administrator, a restart, a failover):
# PostgreSQL's class 57 (operator intervention), and the drivers' words for a connection lost.
_DROPPED = re.compile(r"terminating connection|connection (?:was )?(?:closed|reset|lost)|"
                      r"server has gone away|lost connection to|broken pipe|"
                      r"connection to server .* was lost", re.I)
_NO_TABLE = re.compile(r"relation \"(?P<pg>[^\"]*)\" does not exist|no such table: ?(?P<lite>[\w.$]+)|"
                       r"table '(?P<my>[^']*)' doesn't exist", re.I)
_SYNTAX = re.compile(r"syntax error|error in your sql syntax", re.I)
_SERVER = re.compile(r"\bERROR:|does not exist|permission denied|no such column|ambiguous", re.I)
_CATALOG = {
    "postgresql": "SELECT CASE WHEN table_schema = 'public' THEN table_name "
                  "ELSE table_schema || '.' || table_name END AS name FROM information_schema.tables "
                  "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    "sqlite": "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'",
    "mysql": "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()",
}


class _Unreadable(Exception):
    """The engine cannot read this source (a column type, the URL), but another engine may."""


def redact_url(url: str) -> str:
    """The URL with its password, and any query parameter that looks like a secret, shown as ***."""
    redacted = _USERINFO.sub(r"\g<head>:***@", url, count=1)
    return _SECRET_PARAM.sub(r"\g<key>***", redacted)


def describe_sql(source: SqlSource) -> str:
    """The source in one line, its credentials redacted: the URL and the table or query."""
    what = f"table {source.table}" if source.table else f"query {' '.join(source.query.split())[:200]}"
    return f"{redact_url(source.url)} {what}"


def fetch_sql(source: SqlSource, env: Mapping[str, str]) -> tuple[pl.DataFrame, list[str]]:
    """All rows of the source's table or query, types normalised, and notes (fallbacks, conversions)."""
    where = describe_sql(source)
    url, secrets = _resolve_url(source, env)
    backend = url.get_backend_name()
    sql = _select(source, url)
    engines = _engines(source, backend, where)
    notes: list[str] = []
    if backend == "sqlite":
        _check_sqlite_file(url, where)
    for position, engine in enumerate(engines):
        try:
            if engine == "connectorx":
                _preflight(url)
            rows, read_notes = _FETCH[engine](url, sql)
            frame, converted = _to_polars(rows)
            return frame, [*notes, *read_notes, *converted]
        except DataError:
            raise
        except BaseException as exc:  # connectorx panics are BaseExceptions; let ^C and exit through
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            cause = _cause(exc, secrets)
            problem = _problem(cause, _sqlstate(exc), url, source, where, engines)
            if problem is not None:
                raise DataError(problem) from None
            if position + 1 == len(engines):
                cast = "cast the column to a plain type in data.source.query (e.g. col::text)"
                if source.engine != "auto":
                    cast = f"set data.source.engine: auto (it falls back to SQLAlchemy), or {cast}"
                message = f"{engine} could not read the rows: {cause}"
                raise DataError(Problem(loc="data.source", value=where, message=message, fix=cast)) from None
            notes.append(f"{engine} could not read this source ({cause}); read with {engines[position + 1]}")
    raise AssertionError("unreachable: every engine either returns or raises")


def _resolve_url(source: SqlSource, env: Mapping[str, str]) -> tuple[URL, list[str]]:
    """The URL with ${VAR}s expanded and the password set, and the secrets to scrub from messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    problems = [Problem(loc="data.source.url", value=redact_url(source.url),
                        message=f"environment variable {name} is not set (the URL names it as ${{{name}}})",
                        fix=f"export {name}=...  (before running looml)")
                for name in dict.fromkeys(_VAR.findall(source.url)) if name not in env]
    if source.password_env is not None and source.password_env not in env:
        problems.append(Problem(loc="data.source.password_env", value=source.password_env,
                                message=f"environment variable {source.password_env} is not set",
                                fix=f"export {source.password_env}=...  (the database password)"))
    if problems:
        raise DataError(problems)
    expanded = _VAR.sub(lambda m: env[m.group(1)], source.url)
    try:
        url = make_url(expanded)
    except (ArgumentError, ValueError):
        raise DataError(Problem(loc="data.source.url", value=redact_url(source.url),
                                message="not a database URL",
                                fix="write it as DIALECT://USER@HOST:PORT/DATABASE, e.g. "
                                    "postgresql://me@db:5432/shop or sqlite:///data.db")) from None
    if source.password_env is not None:
        url = url.set(password=env[source.password_env])
    password = url.password or ""
    secrets = [s for s in dict.fromkeys([password, quote(password, safe=""), quote_plus(password)]) if s]
    return url, secrets


def _select(source: SqlSource, url: URL) -> str:
    """The SQL to run: the query as written, or SELECT * from the validated table name, each part
    quoted by SQLAlchemy's identifier preparer for the URL's dialect (never pasted in as text)."""
    if source.query is not None:
        return source.query.strip().rstrip(";").strip()
    assert source.table is not None
    parts = source.table.split(".")
    if len(parts) > 3 or not all(_IDENTIFIER.fullmatch(p) for p in parts):
        raise DataError(Problem(loc="data.source.table", value=source.table,
                                message="not a table name: expected NAME or SCHEMA.NAME made of letters, "
                                        "digits and _", fix="name one table, or write a query in "
                                                            "data.source.query instead"))
    from sqlalchemy.engine.default import DefaultDialect
    from sqlalchemy.exc import NoSuchModuleError

    try:
        dialect = url.get_dialect()()
    except NoSuchModuleError:  # an unknown dialect is reported, with its name, where it is opened
        dialect = DefaultDialect()
    preparer = dialect.identifier_preparer
    return "SELECT * FROM " + ".".join(preparer.quote_identifier(p) for p in parts)


def _engines(source: SqlSource, backend: str, where: str) -> list[str]:
    """The engines to try in order: the one the spec names, or the fast one then SQLAlchemy."""
    if source.engine == "auto":
        return _AUTO.get(backend, ["sqlalchemy"])
    if source.engine != "sqlalchemy" and backend not in _READS[source.engine]:
        able = [e for e, dialects in _READS.items() if backend in dialects] + ["sqlalchemy"]
        raise DataError(Problem(loc="data.source.engine", value=source.engine,
                                message=f"engine {source.engine} cannot read {backend} URLs ({where})",
                                fix=f"set data.source.engine to auto or one of: {', '.join(able)}"))
    return [source.engine]


def _check_sqlite_file(url: URL, where: str) -> None:
    """Refuse a missing SQLite file, which every engine would otherwise create, empty."""
    database = url.database
    in_memory = not database or database == ":memory:" or database.startswith("file:")
    if not in_memory and not Path(database).is_file():
        raise DataError(Problem(
            loc="data.source", value=where, message=f"SQLite database file not found: {database}",
            fix=f"check the path in data.source.url: sqlite:///relative/path starts at the working "
                f"directory ({os.getcwd()}); sqlite:////absolute/path is absolute"))


def _server_url(url: URL) -> str:
    """A libpq / connectorx URL with the password and a connect timeout."""
    query = dict(url.query)
    if url.get_backend_name() == "postgresql":
        query.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    return url.set(drivername=url.get_backend_name(), query=query).render_as_string(hide_password=False)


def _fetch_adbc(url: URL, sql: str) -> tuple[pa.Table, list[str]]:
    if url.get_backend_name() == "postgresql":
        import adbc_driver_postgresql.dbapi as driver

        target = _server_url(url)
    else:
        import adbc_driver_sqlite.dbapi as driver

        target = url.database or ":memory:"
    with driver.connect(target) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetch_arrow_table(), []


def _fetch_connectorx(url: URL, sql: str) -> tuple[pa.Table, list[str]]:
    import connectorx

    if url.get_backend_name() == "sqlite":
        target = "sqlite://" + quote(str(Path(url.database or "").resolve()))
    else:
        target = _server_url(url)
    return connectorx.read_sql(target, sql, return_type="arrow"), []


def _fetch_sqlalchemy(url: URL, sql: str) -> tuple[pl.DataFrame, list[str]]:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    args = {} if url.get_backend_name() == "sqlite" else {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=args)
    except ModuleNotFoundError as exc:
        package = _DRIVERS.get((exc.name or "").split(".")[0], exc.name)
        raise DataError(Problem(loc="data.source.url", value=url.drivername,
                                message=f"the database driver for {url.drivername} is not installed "
                                        f"(no module {exc.name})", fix=f"pip install {package}")) from None
    except sqlalchemy.exc.NoSuchModuleError:
        raise DataError(Problem(loc="data.source.url", value=url.drivername,
                                message=f"unknown database dialect {url.drivername!r}",
                                fix="use postgresql://, sqlite:///PATH or mysql+pymysql://")) from None
    try:
        # The DBAPI cursor, not SQLAlchemy's text(): the query goes to the server as written.
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(sql)
            names = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchall()
        finally:
            connection.close()
    finally:
        engine.dispose()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    _refuse_duplicates(names)
    series = [_series(name, values) for name, values in zip(names, columns, strict=True)]
    notes = [f"column {s.name!r} holds values of several types and is read as text" for s, mixed in series
             if mixed]
    return pl.DataFrame([s for s, _ in series]), notes


_FETCH: dict[str, Callable[[URL, str], tuple[Any, list[str]]]] = {
    "adbc": _fetch_adbc, "connectorx": _fetch_connectorx, "sqlalchemy": _fetch_sqlalchemy}


def _preflight(url: URL) -> None:
    """Connect once with a timeout: connectorx's pool retries a failed connection for 30 s."""
    if url.get_backend_name() == "postgresql":
        import psycopg

        with psycopg.connect(_server_url(url)):
            return
    if url.host:
        port = url.port or _PORTS.get(url.get_backend_name(), 0)
        with socket.create_connection((url.host, port), timeout=CONNECT_TIMEOUT_S):
            return


def _series(name: str, values: Sequence[Any]) -> tuple[pl.Series, bool]:
    """One column from DBAPI values (decimals as floats, JSON and arrays as JSON text, other objects
    as text), and whether it mixed types that only text can hold."""
    sample = next((v for v in values if v is not None), None)
    try:
        if isinstance(sample, Decimal):
            return pl.Series(name, [None if v is None else float(v) for v in values], dtype=pl.Float64), False
        if isinstance(sample, dict | list | tuple):
            return pl.Series(name, [None if v is None else json.dumps(v, default=str, separators=(",", ":"))
                                    for v in values], dtype=pl.String), False
        series = pl.Series(name, values)
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
        return pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String), True
    if series.dtype == pl.Object:
        series = pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String)
    return series, False


def _refuse_duplicates(names: Sequence[str]) -> None:
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise DataError(Problem(loc="data.source.query", value=", ".join(repeated),
                                message="the query returns several columns with the same name",
                                fix="give each column its own name with AS"))


def _to_polars(rows: pa.Table | pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """A frame of plain types from what an engine returned, and notes on lossy conversions."""
    import pyarrow as pa
    import pyarrow.compute as pc

    notes: list[str] = []
    uuids: list[str] = []
    if isinstance(rows, pa.Table):
        _refuse_duplicates(rows.column_names)
        unreadable: list[str] = []
        for index, field in enumerate(rows.schema):
            column, kind = rows.column(index), field.type
            pg_type = (field.metadata or {}).get(b"POSTGRESQL:type", b"").decode()
            if isinstance(kind, pa.BaseExtensionType):
                storage = pa.chunked_array([c.storage for c in column.chunks], type=kind.storage_type)
                if kind.extension_name == "arrow.uuid":
                    uuids.append(field.name)
                elif pa.types.is_string(kind.storage_type) and pg_type == "numeric":
                    storage = pc.cast(storage, pa.float64())
                elif not pa.types.is_string(kind.storage_type):
                    unreadable.append(f"{field.name} ({getattr(kind, 'type_name', kind.extension_name)})")
                rows = rows.set_column(index, field.name, storage)
            elif pa.types.is_interval(kind):
                seconds = [None if v is None else v.months * 30 * 86400 + v.days * 86400 + v.nanoseconds / 1e9
                           for v in column.to_pylist()]
                rows = rows.set_column(index, field.name, pa.array(seconds, pa.float64()))
                notes.append(f"column {field.name!r} (interval) is read as seconds, a month as 30 days")
            elif pg_type == "money":
                rows = rows.set_column(index, field.name, pc.divide(pc.cast(column, pa.float64()), 100.0))
        if unreadable:
            raise _Unreadable(f"unsupported column type: {', '.join(unreadable)}")
        frame = pl.from_arrow(rows)
        assert isinstance(frame, pl.DataFrame)
    else:
        frame = rows
    casts: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if name in uuids:
            hexed = column.bin.encode("hex")
            casts.append(pl.concat_str([hexed.str.slice(a, b - a) for a, b in
                                        ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))], separator="-"))
        elif dtype.is_integer() and dtype not in (pl.Int64, pl.UInt64):
            casts.append(column.cast(pl.Int64))
        elif dtype == pl.Float32 or isinstance(dtype, pl.Decimal):
            casts.append(column.cast(pl.Float64))
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None and dtype.time_zone != "UTC":
            casts.append(column.dt.convert_time_zone("UTC"))
        elif isinstance(dtype, pl.Duration):
            casts.append(column.dt.total_microseconds().cast(pl.Float64) / 1e6)
            notes.append(f"column {name!r} (interval) is read as seconds, a month as 30 days")
        elif isinstance(dtype, pl.List | pl.Array | pl.Struct):
            wrapped = pl.struct(column.alias("v")).struct.json_encode()
            casts.append(pl.when(column.is_null()).then(None)
                         .otherwise(wrapped.str.strip_prefix('{"v":').str.strip_suffix("}")))
            what = "composite" if isinstance(dtype, pl.Struct) else "array"
            notes.append(f"column {name!r} ({what}) is read as JSON text")
        elif dtype == pl.Binary:
            casts.append(column.bin.encode("hex"))
            notes.append(f"column {name!r} (binary) is read as hex text")
        else:
            continue
        casts[-1] = casts[-1].alias(name)
    return (frame.with_columns(casts) if casts else frame), notes


def _cause(exc: BaseException, secrets: Sequence[str]) -> str:
    """The driver's own message, first line, without the driver's prefixes or any secret."""
    text = str(getattr(exc, "orig", None) or exc)
    for secret in secrets:
        text = text.replace(secret, "***")
    text = re.sub(r"^\s*(?:IO|NOT_FOUND|INVALID_ARGUMENT|UNKNOWN|INTERNAL|NOT_IMPLEMENTED): ", "", text)
    text = re.sub(r"\[(?:libpq|SQLite)\] |Failed to (?:connect|prepare query|execute query): |"
                  r"timed out waiting for connection: |db error: |(?:ERROR|FATAL): +", "", text)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None) or "")


def _problem(cause: str, sqlstate: str, url: URL, source: SqlSource, where: str,
             engines: Sequence[str]) -> Problem | None:
    """The user-facing problem for an error any engine would meet; None for an engine's own limit."""
    backend = url.get_backend_name()
    server = f"{url.host or 'localhost'}:{url.port or _PORTS.get(backend, '?')}"
    if missing := _NO_DATABASE.search(cause):
        name = missing.group("name") or missing.group("my")
        return Problem(loc="data.source", value=where,
                       message=f"database {name!r} does not exist on {server}",
                       fix="check the database name at the end of data.source.url")
    if _AUTH.search(cause) or sqlstate.startswith("28"):
        named = re.search(r"for user \"?'?([^\"'\s]+)", cause)
        user = named.group(1) if named else (url.username or "(none)")
        given = "" if url.password else " (no password was given)"
        return Problem(loc="data.source", value=where,
                       message=f"authentication failed for user {user!r}{given}",
                       fix="check the user in data.source.url and the password: put it in an environment "
                           "variable named by data.source.password_env (or as ${VAR} in the URL)")
    if _DROPPED.search(cause) or sqlstate.startswith("57"):
        return Problem(loc="data.source", value=where,
                       message=f"the database server at {server} ended the connection during the query: "
                               f"{cause}",
                       fix="run it again once the server is back; if it keeps happening, ask the database's "
                           "administrator what stops the query (a statement_timeout, a restart, a failover)")
    if _UNREACHABLE.search(cause) or sqlstate.startswith("08"):
        return Problem(loc="data.source", value=where,
                       message=f"cannot reach the database server at {server}: {cause}",
                       fix=f"check the host and port in data.source.url, and that the server is running and "
                           f"accepts connections from this machine (looml waits {CONNECT_TIMEOUT_S} s)")
    if (missing := _NO_TABLE.search(cause)) or sqlstate == "42P01":
        name = next((g for g in missing.groups() if g), "?") if missing else (source.table or "?")
        tables = _table_names(url, engines)
        hint = did_you_mean(source.table or name, tables) if tables else ""
        listed = f"; tables here: {', '.join(sorted(tables)[:10])}" if tables else ""
        field = "data.source.table" if source.table else "the table names in data.source.query"
        return Problem(loc="data.source", value=where,
                       message=f"table {name!r} does not exist" + (f": {hint}" if hint else ""),
                       fix=f"check {field}{listed}")
    if _SYNTAX.search(cause) or sqlstate == "42601":
        return Problem(loc="data.source", value=where, message=f"the database rejected the query: {cause}",
                       fix="fix the SQL in data.source.query (it is sent to the database as written)")
    if _SERVER.search(cause) or sqlstate[:2] in ("42", "22", "3F", "25"):
        return Problem(loc="data.source", value=where, message=f"the query failed: {cause}",
                       fix="check data.source.query (or table) and the database user's permissions")
    return None


def _table_names(url: URL, engines: Sequence[str]) -> list[str]:
    """The database's table names, for a did-you-mean; [] when they cannot be listed cheaply."""
    backend = "mysql" if url.get_backend_name() == "mariadb" else url.get_backend_name()
    if backend not in _CATALOG:
        return []
    try:
        rows, _ = _FETCH[engines[0]](url, _CATALOG[backend])
        frame = rows if isinstance(rows, pl.DataFrame) else pl.from_arrow(rows)
        assert isinstance(frame, pl.DataFrame)
        return [str(v) for v in frame.to_series(0).to_list()]
    except Exception:
        return []
