"""Sources: fetch the rows a spec's `data.source` names, whatever its kind, as one Polars frame.

    fetch(source, base_dir)        -> Fetched        (rows from a file, sql, http or python source)
    local_paths(source, base_dir)  -> [Path] | None  (local files, which can be digested without reading)
    describe(source)               -> str            (for logs and the snapshot catalog; no secrets)

Each kind lives in its own module, returns `(frame, notes)` (notes: things the user should
know that are not errors, such as "skipped 3 malformed lines: 17, 40, 41") and raises
`DataError` naming the source and the cause, never a credential.
Heavy clients (SQLAlchemy, httpx) are imported only by the kind that needs them.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from looml.errors import DataError, Problem
from looml.spec import FileSource, HttpSource, PythonSource, SqlSource

__all__ = ["Fetched", "describe", "fetch", "local_paths"]

Source = FileSource | SqlSource | HttpSource | PythonSource


@dataclass(frozen=True)
class Fetched:
    """The rows a source gave, and notes for the user (skipped lines, truncation)."""

    frame: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def fetch(source: Source, base_dir: Path, env: Mapping[str, str] | None = None) -> Fetched:
    """All rows of `source`, with float NaN read as missing; raise `DataError` if there are none."""
    env = os.environ if env is None else env
    notes: list[str] = []
    if isinstance(source, FileSource):
        from looml.data.sources.files import read_files

        frame, notes = read_files(source, base_dir, env)
    elif isinstance(source, SqlSource):
        from looml.data.sources.sql import fetch_sql

        frame, notes = fetch_sql(_anchored(source, base_dir), env)
    elif isinstance(source, HttpSource):
        from looml.data.sources.http import fetch_http

        frame, notes = fetch_http(source, env)
    else:
        frame = _call(source, base_dir)
    if frame.height == 0:
        raise DataError(Problem(loc="data.source", value=describe(source), message="the source has no rows",
                                fix="point data.source at data with rows (check the query's filters)"))
    # A float NaN (Parquet, NDJSON, SQL) is a missing value, as "NaN" in a CSV already is: one
    # notion of missing, so profile, validate and split count and skip the same rows.
    return Fetched(frame.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None)), notes)


def local_paths(source: Source, base_dir: Path) -> list[Path] | None:
    """The local files a source reads, in order; None when rows can only be known by fetching them
    (SQL, HTTP, Python, remote URLs)."""
    if not isinstance(source, FileSource):
        return None
    from looml.data.sources.files import local_paths as file_paths

    return file_paths(source, base_dir)


_RELATIVE_SQLITE = re.compile(r"^(sqlite(\+\w+)?:///)(?![/:])(.+)$")


def _anchored(source: SqlSource, base_dir: Path) -> SqlSource:
    """A relative SQLite path starts at the spec's folder, as every other path in the spec does."""
    match = _RELATIVE_SQLITE.match(source.url)
    if match is None:
        return source
    return source.model_copy(update={"url": f"{match.group(1)}{base_dir / match.group(3)}"})


def describe(source: Source) -> str:
    """A one-line description without credentials."""
    if isinstance(source, FileSource):
        return source.path
    if isinstance(source, SqlSource):
        from looml.data.sources.sql import describe_sql

        return describe_sql(source)
    if isinstance(source, HttpSource):
        return f"{source.method} {source.url}"
    return f"python {source.function}"


def _call(source: PythonSource, base_dir: Path) -> pl.DataFrame:
    module_name, _, function_name = source.function.partition(":")
    loc = "data.source.function"
    added = str(base_dir) not in sys.path
    if added:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DataError(Problem(loc=loc, value=source.function,
                                message=f"cannot import {module_name!r}: {exc}",
                                fix="put the module beside looml.yaml or install it")) from exc
    finally:
        if added:
            sys.path.remove(str(base_dir))
    function = getattr(module, function_name, None)
    if not callable(function):
        raise DataError(Problem(loc=loc, value=source.function,
                                message=f"module {module_name!r} has no function {function_name!r}",
                                fix="name a function that returns a DataFrame"))
    try:
        result = function(**source.kwargs)
    except Exception as exc:
        raise DataError(Problem(loc=loc, value=source.function,
                                message=f"the function raised {type(exc).__name__}: {exc}",
                                fix="fix the function, or check data.source.kwargs")) from exc
    if isinstance(result, pl.DataFrame):
        return result
    if type(result).__module__.startswith("pandas") and type(result).__name__ == "DataFrame":
        return pl.from_pandas(result)
    raise DataError(Problem(loc=loc, value=source.function,
                            message=f"the function returned {type(result).__name__}, not a DataFrame",
                            fix="return a polars or pandas DataFrame"))
