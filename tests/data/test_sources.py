"""The sources dispatcher: the Python-callable kind, descriptions without secrets, empty sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from looml.data.sources import describe, fetch, local_paths
from looml.errors import DataError
from looml.spec import FileSource, PythonSource, SqlSource

LOADER = '''
import pandas as pd
import polars as pl

def orders(n=3):
    return pl.DataFrame({"id": list(range(n)), "amount": [1.5, float("nan"), 3.0][:n]})

def as_pandas():
    return pd.DataFrame({"a": [1, 2]})

def nothing():
    return pl.DataFrame({"a": []})

def broken():
    raise KeyError("customer_id")

def not_a_frame():
    return [1, 2, 3]
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "loaders_for_test.py").write_text(LOADER)
    return tmp_path


def python(function: str, **kwargs: object) -> PythonSource:
    return PythonSource(kind="python", function=function, kwargs=kwargs)


def test_a_function_beside_the_spec_returns_the_rows_with_nan_as_missing(project: Path) -> None:
    fetched = fetch(python("loaders_for_test:orders", n=3), project)

    assert fetched.frame["amount"].to_list() == [1.5, None, 3.0]
    assert fetched.notes == []


def test_a_pandas_frame_is_accepted(project: Path) -> None:
    assert fetch(python("loaders_for_test:as_pandas"), project).frame.to_dicts() == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(("function", "message"), [
    ("no_such_module_x:f", r"data\.source\.function: cannot import 'no_such_module_x'"),
    ("loaders_for_test:missing", r"module 'loaders_for_test' has no function 'missing'"),
    ("loaders_for_test:broken", r"the function raised KeyError: 'customer_id'"),
    ("loaders_for_test:not_a_frame", r"the function returned list, not a DataFrame"),
    ("loaders_for_test:nothing", r"data\.source: the source has no rows \(got 'python loaders_for_test"),
])
def test_function_errors_name_the_function_and_the_cause(project: Path, function: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        fetch(python(function), project)


def test_descriptions_never_carry_a_password() -> None:
    source = SqlSource(kind="sql", url="postgresql://ann:s3cret@db.internal:5432/shop", table="orders")

    text = describe(source)

    assert "s3cret" not in text and "db.internal:5432/shop" in text and "table orders" in text


def test_only_local_files_can_be_digested_without_fetching(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")

    assert local_paths(FileSource(path="a.csv"), tmp_path) == [tmp_path / "a.csv"]
    assert local_paths(FileSource(path="s3://bucket/a.csv"), tmp_path) is None
    assert local_paths(python("m:f"), tmp_path) is None


def test_a_relative_sqlite_path_starts_at_the_spec_folder(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "shop.db") as conn:
        conn.execute("CREATE TABLE items (id INTEGER, price REAL)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(i, i / 2) for i in range(5)])

    source = SqlSource(kind="sql", url="sqlite:///shop.db", table="items")

    assert fetch(source, tmp_path).frame["price"].to_list() == [0.0, 0.5, 1.0, 1.5, 2.0]
