"""SQL sources against a real PostgreSQL server on 127.0.0.1 and real SQLite files."""

from __future__ import annotations

import math
import socket
import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest
from sqlalchemy.engine import make_url

import looml
from looml.data.sources import describe, fetch
from looml.data.sources.sql import _select, fetch_sql, redact_url
from looml.errors import DataError, SpecError
from looml.spec import SqlSource, parse_spec

if TYPE_CHECKING:
    from postgres import Postgres

KINDS = """
CREATE TABLE kinds (id int PRIMARY KEY, big bigint, x double precision, r real, price numeric(10, 2),
                    name text, flag boolean, day date, at timestamp, at_tz timestamptz)
"""
KIND_ROWS = """
INSERT INTO kinds VALUES
  (1, 10000000000, 1.5, 2.5, 12.34, 'a', true, '2024-01-02', '2024-01-02 03:04:05', '2024-01-02 03:04:05+02'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, -7, -0.25, 0, 99999999.99, 'c', false, '1999-12-31', '1999-12-31 23:59:59', '1999-12-31 23:59:59-05')
"""


def sql(url: str, **fields: Any) -> SqlSource:
    return SqlSource(kind="sql", url=url, **fields)


@pytest.fixture(scope="module")
def pg(postgres: Postgres) -> Postgres:
    """The server with `kinds`, `sales.orders` and `odd` (types only SQLAlchemy reads) in place."""
    postgres.execute(
        "DROP TABLE IF EXISTS kinds, odd", "DROP SCHEMA IF EXISTS sales CASCADE", KINDS, KIND_ROWS,
        "CREATE SCHEMA sales", "CREATE TABLE sales.orders (id int, amount numeric)",
        "INSERT INTO sales.orders VALUES (1, 10.5), (2, 20)",
        "CREATE TABLE odd (id int, ip inet, u uuid, doc jsonb, tags text[], span interval, cash money)",
        "INSERT INTO odd VALUES (1, '10.0.0.1', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": 1}', "
        "'{x,y}', '1 day 00:00:30', 12.5), (2, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    return postgres


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rendered(exc: pytest.ExceptionInfo[DataError]) -> str:
    return exc.value.render()


# --- reading rows and their types ---------------------------------------------------------------


def test_a_table_arrives_with_plain_polars_types(pg: Postgres) -> None:
    frame, notes = fetch_sql(sql(pg.url, table="kinds"), {})
    assert notes == []
    assert frame.schema == pl.Schema({
        "id": pl.Int64, "big": pl.Int64, "x": pl.Float64, "r": pl.Float64, "price": pl.Float64,
        "name": pl.String, "flag": pl.Boolean, "day": pl.Date, "at": pl.Datetime("us"),
        "at_tz": pl.Datetime("us", "UTC")})
    first = frame.row(0, named=True)
    assert first["price"] == 12.34 and first["big"] == 10_000_000_000 and first["flag"] is True
    assert first["day"] == date(2024, 1, 2) and first["at"] == datetime(2024, 1, 2, 3, 4, 5)
    assert first["at_tz"] == datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert frame.row(1) == (2, *([None] * 9))


def test_a_query_is_sent_as_written(pg: Postgres) -> None:
    query = "SELECT id, name, price * 2 AS doubled FROM kinds WHERE name LIKE '%' ORDER BY id DESC;"
    frame, _ = fetch_sql(sql(pg.url, query=query), {})
    assert frame.to_dict(as_series=False) == {"id": [3, 1], "name": ["c", "a"],
                                              "doubled": [199999999.98, 24.68]}


@pytest.mark.parametrize("engine", ["adbc", "connectorx", "sqlalchemy"])
def test_every_engine_gives_the_same_frame(pg: Postgres, engine: str) -> None:
    auto, _ = fetch_sql(sql(pg.url, table="kinds"), {})
    frame, notes = fetch_sql(sql(pg.url, table="kinds", engine=engine), {})
    assert notes == []
    assert frame.equals(auto) and frame.schema == auto.schema


def test_a_schema_qualified_table(pg: Postgres) -> None:
    frame, _ = fetch_sql(sql(pg.url, table="sales.orders"), {})
    assert frame.to_dict(as_series=False) == {"id": [1, 2], "amount": [10.5, 20.0]}


@pytest.mark.parametrize("engine", ["auto", "sqlalchemy"])
def test_unbounded_numeric_arrives_as_float(pg: Postgres, engine: str) -> None:
    query = "SELECT v FROM (VALUES (1e30::numeric), ('NaN'::numeric), (NULL), (0.1)) AS t(v)"
    frame, _ = fetch_sql(sql(pg.url, query=query, engine=engine), {})
    assert frame.schema == pl.Schema({"v": pl.Float64})
    values = frame["v"].to_list()
    assert values[0] == 1e30 and math.isnan(values[1]) and values[2] is None and values[3] == 0.1


def test_types_only_sqlalchemy_reads_fall_back_with_a_note(pg: Postgres) -> None:
    frame, notes = fetch_sql(sql(pg.url, table="odd"), {})
    assert any(n.startswith("adbc could not read this source (unsupported column type: ip (inet))")
               and n.endswith("read with sqlalchemy") for n in notes)
    assert frame.row(0) == (1, "10.0.0.1", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", '{"a":1}', '["x","y"]',
                            86430.0, "$12.50")
    assert "column 'span' (interval) is read as seconds, a month as 30 days" in notes


def test_a_forced_engine_that_cannot_read_a_type_says_so(pg: Postgres) -> None:
    message = r"adbc could not read the rows: unsupported column type: ip \(inet\)"
    with pytest.raises(DataError, match=message) as exc:
        fetch_sql(sql(pg.url, table="odd", engine="adbc"), {})
    assert "fix: set data.source.engine: auto (it falls back to SQLAlchemy), or cast" in rendered(exc)


def test_uuid_json_arrays_and_intervals_read_the_same_through_adbc(pg: Postgres) -> None:
    query = "SELECT id, u, doc, tags, span FROM odd ORDER BY id"
    fast, notes = fetch_sql(sql(pg.url, query=query, engine="adbc"), {})
    slow, _ = fetch_sql(sql(pg.url, query=query, engine="sqlalchemy"), {})
    assert fast.schema == slow.schema == pl.Schema(
        {"id": pl.Int64, "u": pl.String, "doc": pl.String, "tags": pl.String, "span": pl.Float64})
    assert fast.row(0)[:2] == slow.row(0)[:2] and fast["span"].to_list() == [86430.0, None]
    assert fast["tags"].to_list() == slow["tags"].to_list() == ['["x","y"]', None]
    assert "column 'tags' (array) is read as JSON text" in notes
    assert fetch_sql(sql(pg.url, query="SELECT cash FROM odd", engine="adbc"), {})[0]["cash"][0] == 12.5


def test_duplicate_column_names_are_refused(pg: Postgres) -> None:
    with pytest.raises(DataError, match="the query returns several columns with the same name"):
        fetch_sql(sql(pg.url, query="SELECT id, id FROM kinds"), {})


def test_zero_rows_are_left_to_the_dispatcher(pg: Postgres) -> None:
    frame, _ = fetch_sql(sql(pg.url, query="SELECT * FROM kinds WHERE false"), {})
    assert frame.height == 0
    with pytest.raises(DataError, match="the source has no rows"):
        fetch(sql(pg.url, query="SELECT * FROM kinds WHERE false"), Path("."), {})


# --- the URL: variables, password_env, redaction --------------------------------------------------


def test_url_variables_and_password_env_are_read_from_env(pg: Postgres) -> None:
    url = f"postgresql+psycopg://${{PGUSER_}}@127.0.0.1:${{PGPORT_}}/{pg.database}"
    env = {"PGUSER_": pg.user, "PGPORT_": str(pg.port), "DB_PASSWORD": pg.password}
    frame, _ = fetch_sql(sql(url, table="kinds", password_env="DB_PASSWORD"), env)
    assert frame.height == 3


def test_missing_variables_are_named_all_at_once() -> None:
    source = sql("postgresql://me:${PASS}@${HOST}/db", table="t", password_env="PW")
    with pytest.raises(DataError, match="3 problems") as exc:
        fetch_sql(source, {})
    text = rendered(exc)
    assert "environment variable PASS is not set (the URL names it as ${PASS})" in text
    assert "fix: export HOST=..." in text
    assert "data.source.password_env: environment variable PW is not set" in text


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://me:hunter2@db:5432/shop", "postgresql://me:***@db:5432/shop"),
    ("postgresql+psycopg://me:p@ss:w/rd@db/shop", "postgresql+psycopg://me:***@db/shop"),
    ("postgresql://me:${DB_PASSWORD}@db/shop", "postgresql://me:***@db/shop"),
    ("postgresql://me@db/shop?sslmode=require&password=hunter2", "postgresql://me@db/shop?sslmode=require&password=***"),
    ("postgresql://db:5432/shop", "postgresql://db:5432/shop"),
    ("sqlite:///data/shop.db", "sqlite:///data/shop.db"),
])
def test_redact_url_hides_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_describe_hides_the_password(pg: Postgres) -> None:
    assert pg.password not in describe(sql(pg.url, table="kinds"))
    assert describe(sql(pg.url, table="kinds")).endswith(f"@127.0.0.1:{pg.port}/looml table kinds")


def test_not_a_url() -> None:
    with pytest.raises(DataError, match=r"data\.source\.url: not a database URL"):
        fetch_sql(sql("localhost:5432/shop", table="t"), {})


# --- errors -------------------------------------------------------------------------------------


def test_an_unreachable_server_is_named(pg: Postgres) -> None:
    port = closed_port()
    with pytest.raises(DataError, match=f"cannot reach the database server at 127.0.0.1:{port}: "
                                        "connection to server .* Connection refused") as exc:
        fetch_sql(sql(pg.url.replace(str(pg.port), str(port)), table="kinds"), {})
    assert "fix: check the host and port in data.source.url" in rendered(exc)
    assert pg.password not in rendered(exc)


def test_connectorx_reports_an_unreachable_server_at_once(pg: Postgres) -> None:
    port = closed_port()
    with pytest.raises(DataError, match=f"cannot reach the database server at 127.0.0.1:{port}"):
        fetch_sql(sql(pg.url.replace(str(pg.port), str(port)), table="kinds", engine="connectorx"), {})


@pytest.mark.parametrize("engine", ["auto", "connectorx", "sqlalchemy"])
def test_bad_credentials_name_the_user_never_the_password(pg: Postgres, engine: str) -> None:
    wrong = "Wr0ng-pa55word-abc"
    url = pg.url_without_password()
    with pytest.raises(DataError, match="authentication failed for user 'looml'") as exc:
        fetch_sql(sql(url, table="kinds", password_env="PW", engine=engine), {"PW": wrong})
    assert wrong not in rendered(exc) and pg.password not in rendered(exc)
    assert "password_env" in rendered(exc)


def test_no_password_at_all_is_said(pg: Postgres) -> None:
    with pytest.raises(DataError, match=r"authentication failed for user 'looml' \(no password was given\)"):
        fetch_sql(sql(pg.url_without_password(), table="kinds"), {})


def test_a_missing_database(pg: Postgres) -> None:
    url = pg.url.rsplit("/", 1)[0] + "/nowhere"
    with pytest.raises(DataError, match=f"database 'nowhere' does not exist on 127.0.0.1:{pg.port}") as exc:
        fetch_sql(sql(url, table="kinds"), {})
    assert pg.password not in rendered(exc)


def test_a_missing_table_suggests_the_closest(pg: Postgres) -> None:
    with pytest.raises(DataError, match="table 'kind' does not exist: did you mean 'kinds'") as exc:
        fetch_sql(sql(pg.url, table="kind"), {})
    assert "fix: check data.source.table; tables here: kinds, odd, sales.orders" in rendered(exc)
    assert pg.password not in rendered(exc)


def test_a_missing_table_in_a_query(pg: Postgres) -> None:
    with pytest.raises(DataError, match=r"table 'sales\.order' does not exist: did you mean 'sales\.orders'"):
        fetch_sql(sql(pg.url, query="SELECT * FROM sales.order"), {})


@pytest.mark.parametrize("engine", ["auto", "connectorx", "sqlalchemy"])
def test_a_syntax_error_gives_the_servers_message(pg: Postgres, engine: str) -> None:
    with pytest.raises(DataError, match='rejected the query: syntax error at or near "SELEC"') as exc:
        fetch_sql(sql(pg.url, query="SELEC * FROM kinds", engine=engine), {})
    assert "fix: fix the SQL in data.source.query" in rendered(exc)
    assert pg.password not in rendered(exc)


def test_other_server_errors_pass_the_message_through(pg: Postgres) -> None:
    with pytest.raises(DataError, match='the query failed: column "nope" does not exist'):
        fetch_sql(sql(pg.url, query="SELECT nope FROM kinds"), {})


@pytest.mark.parametrize("engine", ["auto", "connectorx", "sqlalchemy"])
def test_a_connection_the_server_drops_mid_query_is_a_clear_error(pg: Postgres, engine: str) -> None:
    # The server ends the session (an admin's pg_terminate_backend, a failover) while the query
    # runs: an error naming the server, at once, not a hang and not a traceback.
    import threading
    import time

    marker = f"looml_drop_{engine}"
    query = f"SELECT g AS {marker}, length(pg_sleep(0.01)::text) AS slept FROM generate_series(1, 3000) g"
    killed: list[bool] = []

    def terminate() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not killed:
            with pg.connect(superuser=True) as conn:
                found = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE query LIKE %s AND pid <> pg_backend_pid()",
                                     (f"%{marker}%",)).fetchall()
            if found:
                killed.append(True)
            time.sleep(0.1)

    thread = threading.Thread(target=terminate)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(DataError) as exc:
            fetch_sql(sql(pg.url, query=query, engine=engine), {})
    finally:
        killed.append(True)
        thread.join()
    assert time.monotonic() - started < 25  # stopped when the session ended, not after the 30 s query
    text = rendered(exc)
    assert f"the database server at 127.0.0.1:{pg.port} ended the connection during the query" in text, text
    assert pg.password not in text


@pytest.mark.parametrize("table", ["kinds; DROP TABLE kinds", 'kinds"--', "a.b.c.d", "1kinds", "kinds "])
def test_a_table_name_that_is_not_an_identifier_is_refused(pg: Postgres, table: str) -> None:
    with pytest.raises(DataError, match=r"data\.source\.table: not a table name"):
        fetch_sql(sql(pg.url, table=table), {})
    assert fetch_sql(sql(pg.url, table="kinds"), {})[0].height == 3


def test_an_engine_that_cannot_read_the_dialect() -> None:
    with pytest.raises(DataError, match="engine adbc cannot read mysql URLs"):
        fetch_sql(sql("mysql://me@127.0.0.1/shop", table="t", engine="adbc"), {})


def test_a_missing_driver_names_the_package_to_install() -> None:
    with pytest.raises(DataError, match=r"the database driver for mysql\+pymysql is not installed") as exc:
        fetch_sql(sql("mysql+pymysql://me@127.0.0.1/shop", table="t", engine="sqlalchemy"), {})
    assert "fix: pip install pymysql" in rendered(exc)


def test_mysql_through_connectorx_reports_an_unreachable_server() -> None:
    port = closed_port()
    with pytest.raises(DataError, match=f"cannot reach the database server at 127.0.0.1:{port}"):
        fetch_sql(sql(f"mysql://me:pw@127.0.0.1:{port}/shop", table="t"), {})


def test_an_unknown_dialect() -> None:
    with pytest.raises(DataError, match="unknown database dialect 'nosuchdb'"):
        fetch_sql(sql("nosuchdb://me@127.0.0.1/shop", table="t"), {})


# --- SQLite -------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id INTEGER, price REAL, name TEXT, qty NUMERIC)")
        conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?)",
                         [(i, i * 0.5, f"n{i % 3}", i * 2) for i in range(50)] + [(None, None, None, None)])
        conn.execute("CREATE TABLE mixed (v)")
        conn.executemany("INSERT INTO mixed VALUES (?)", [(i,) for i in range(1100)] + [("text",)])
    return path


@pytest.mark.parametrize("engine", ["auto", "adbc", "connectorx", "sqlalchemy"])
def test_sqlite_file_through_every_engine(sqlite_file: Path, engine: str) -> None:
    frame, notes = fetch_sql(sql(f"sqlite:///{sqlite_file}", table="items", engine=engine), {})
    assert notes == []
    assert frame.schema == pl.Schema({"id": pl.Int64, "price": pl.Float64, "name": pl.String,
                                      "qty": pl.Int64})
    assert frame.height == 51 and frame.row(3) == (3, 1.5, "n0", 6)


def test_sqlite_relative_paths_start_at_the_working_directory(sqlite_file: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sqlite_file.parent)
    assert fetch_sql(sql("sqlite:///shop.db", query="SELECT count(*) AS n FROM items"), {})[0].item() == 51


def test_sqlite_column_of_mixed_types_falls_back_to_text(sqlite_file: Path) -> None:
    frame, notes = fetch_sql(sql(f"sqlite:///{sqlite_file}", table="mixed"), {})
    assert frame.schema == pl.Schema({"v": pl.String}) and frame["v"][-1] == "text"
    assert notes[0].startswith("adbc could not read this source (Type mismatch in column 0")
    assert notes[1] == "column 'v' holds values of several types and is read as text"


def test_sqlite_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"SQLite database file not found: .*nothing\.db"):
        fetch_sql(sql(f"sqlite:///{tmp_path}/nothing.db", table="t"), {})
    assert not (tmp_path / "nothing.db").exists()


def test_sqlite_missing_table_and_syntax_error(sqlite_file: Path) -> None:
    with pytest.raises(DataError, match="table 'item' does not exist: did you mean 'items'"):
        fetch_sql(sql(f"sqlite:///{sqlite_file}", table="item"), {})
    with pytest.raises(DataError, match='the database rejected the query: near "SELEC": syntax error'):
        fetch_sql(sql(f"sqlite:///{sqlite_file}", query="SELEC 1"), {})


# --- end to end ---------------------------------------------------------------------------------


def test_pipeline_trains_from_postgres_caches_unchanged_rows_and_retrains_on_new_ones(
        postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A database of its own: the tests above list the tables of the shared one.
    with postgres.connect(superuser=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS churn")
        conn.execute(f'CREATE DATABASE churn OWNER "{postgres.user}"')
    pg = replace(postgres, database="churn")
    rng = np.random.default_rng(0)

    def insert(rows: int) -> None:
        x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
        labels = np.where(x1 + 0.5 * rng.normal(size=rows) > 0, "yes", "no")
        values = ", ".join(f"({a:.6f}, {b:.6f}, '{c}')" for a, b, c in zip(x1, x2, labels, strict=True))
        pg.execute(f"INSERT INTO churn VALUES {values}")

    pg.execute("CREATE TABLE churn (x1 float8, x2 float8, label text)")
    insert(300)
    monkeypatch.setenv("LOOML_TEST_PG_PASSWORD", pg.password)
    spec = tmp_path / "looml.yaml"
    spec.write_text(
        "seed: 3\n"
        "data:\n"
        f"  source: {{kind: sql, url: '{pg.url_without_password()}', table: churn,\n"
        "           password_env: LOOML_TEST_PG_PASSWORD}\n"
        "  target: label\n"
        "split: {folds: 2}\n"
        "models: {candidates: [linear]}\n"
        "registry: {model_name: from_sql}\n", encoding="utf-8")

    first = looml.run(spec)
    assert first.model_version == "1" and all(s.status == "ran" for s in first.stages)

    second = looml.run(spec)
    status = {s.name: s.status for s in second.stages}
    assert status.pop("fetch") == "ran" and status.pop("ingest") == "cached"
    assert set(status.values()) == {"cached"}, status
    assert second.data_digest == first.data_digest

    insert(40)
    third = looml.run(spec)
    status = {s.name: s.status for s in third.stages}
    assert status["ingest"] == status["train"] == "ran"
    assert third.data_digest != first.data_digest


@pytest.mark.parametrize("table", ["items; DROP TABLE items", 'items"--', "items' OR '1'='1", "a.b.c.d",
                                   "1items", "items ", "it\0ems"])
def test_a_hostile_table_name_is_refused_and_the_sqlite_file_is_untouched(sqlite_file: Path,
                                                                          table: str) -> None:
    with pytest.raises(DataError, match=r"data\.source\.table: not a table name"):
        fetch_sql(sql(f"sqlite:///{sqlite_file}", table=table), {})
    assert fetch_sql(sql(f"sqlite:///{sqlite_file}", table="items"), {})[0].height == 51


def test_table_names_are_quoted_by_sqlalchemy_for_the_dialect(sqlite_file: Path) -> None:
    # A reserved word is a table name once quoted; SQLAlchemy's preparer quotes for each dialect.
    with sqlite3.connect(sqlite_file) as conn:
        conn.execute('CREATE TABLE "order" ("select" INTEGER)')
        conn.executemany('INSERT INTO "order" VALUES (?)', [(1,), (2,)])
    assert fetch_sql(sql(f"sqlite:///{sqlite_file}", table="order"), {})[0]["select"].to_list() == [1, 2]
    assert _select(sql("mysql://me@h/shop", table="sales.order"), make_url("mysql://me@h/shop")) == \
        "SELECT * FROM `sales`.`order`"
    assert _select(sql("postgresql://me@h/shop", table="Order"), make_url("postgresql://me@h/shop")) == \
        'SELECT * FROM "Order"'


def test_an_empty_table_name_is_a_spec_error() -> None:
    # It reached the source description as a query of None (an AttributeError) before issue 16.
    with pytest.raises(SpecError, match=r"data\.source\.table \(line 1\): String should have at least 1 "
                                        r"character"):
        parse_spec("data: {source: {kind: sql, url: 'sqlite:///x.db', table: ''}, target: y}\n"
                   "registry: {model_name: m}\n", Path("."))
