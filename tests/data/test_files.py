"""Ingest: each format is read, types are detected, and unreadable files get a clear DataError."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl
import pytest
from sklearn.datasets import load_iris

from looml.data.sources.files import detect_format, read_table
from looml.errors import DataError


def iris() -> pl.DataFrame:
    return pl.from_pandas(load_iris(as_frame=True).frame)


def test_csv_detects_iso_dates_and_datetimes(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("day,stamp,n,name\n2024-01-31,2024-01-31T08:30:00,1,a\n"
                    "2024-02-29,2024-02-29T23:59:59,2,b\n")

    frame = read_table(path)

    assert frame.schema["day"] == pl.Date
    assert frame.schema["stamp"].is_temporal() and frame.schema["stamp"] != pl.Date
    assert frame.schema["n"] == pl.Int64
    assert frame.schema["name"] == pl.String
    assert frame["day"].to_list() == [dt.date(2024, 1, 31), dt.date(2024, 2, 29)]


def test_csv_null_markers_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,y\n1.5,a\nNA,\nNaN,N/A\nnull,b\n")

    frame = read_table(path)

    assert frame["x"].null_count() == 3
    assert frame["y"].null_count() == 2


def test_tsv_is_tab_separated(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("a\tb\n1\tx,y\n")

    assert read_table(path).to_dicts() == [{"a": 1, "b": "x,y"}]


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_round_trip(tmp_path: Path, suffix: str) -> None:
    frame = iris()
    path = tmp_path / f"iris{suffix}"
    frame.write_parquet(path)

    assert read_table(path).equals(frame)


@pytest.mark.parametrize("suffix", [".ndjson", ".jsonl"])
def test_ndjson_round_trip(tmp_path: Path, suffix: str) -> None:
    frame = iris()
    path = tmp_path / f"iris{suffix}"
    frame.write_ndjson(path)

    assert read_table(path).equals(frame)


def test_float_nan_is_read_as_missing(tmp_path: Path) -> None:
    # A Parquet NaN must count as missing, like "NaN" in a CSV; otherwise a NaN target
    # reaches the estimator and training fails with "Input y contains NaN".
    path = tmp_path / "d.parquet"
    pl.DataFrame({"x": [1.0, math.nan, 3.0], "y": [math.nan, 2.0, math.nan]}).write_parquet(path)

    frame = read_table(path)

    assert frame["x"].null_count() == 1
    assert frame["y"].null_count() == 2
    assert frame["x"].is_nan().sum() == 0


def test_declared_format_wins_over_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"
    path.write_text('{"a": 1}\n{"a": 2}\n')

    assert detect_format(path, "ndjson") == "ndjson"
    assert read_table(path, "ndjson")["a"].to_list() == [1, 2]


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"PK\x03\x04")

    with pytest.raises(DataError, match=r"data\.source\.format: cannot tell the file format from the "
                                        r"extension \(got '\.xlsx'\)\n\s+fix: set data\.source\.format to "
                                        r"one of csv, parquet, ndjson"):
        read_table(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data\.source: data file not found \(got '.*gone\.csv'\)"):
        read_table(tmp_path / "gone.csv")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.touch()

    with pytest.raises(DataError, match=r"the data file is empty"):
        read_table(path)


def test_header_only_csv_says_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n")

    with pytest.raises(DataError, match=r"data\.source: the data file has no rows"):
        read_table(path)


@pytest.mark.parametrize(("name", "content", "fmt"), [
    ("d.parquet", b"this is not parquet", "parquet"),
    ("d.ndjson", b'{"a": 1}\n{"a": \n', "ndjson"),
    ("d.csv", bytes(range(256)) * 4, "csv"),
])
def test_unreadable_file(tmp_path: Path, name: str, content: bytes, fmt: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(DataError, match=rf"data\.source: cannot read the file as {fmt}: .*\n"
                                        rf"\s+fix: check that the file is valid {fmt}, or set "
                                        r"data\.source\.format") as exc:
        read_table(path)
    assert exc.value.problems[0].value == str(path)


def test_unreadable_csv_message_leaves_out_polars_argument_tips(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")

    with pytest.raises(DataError, match=r"cannot read the file as csv: found more fields") as exc:
        read_table(path)
    assert "truncate_ragged_lines" not in str(exc.value)


def test_csv_types_hold_when_a_late_row_disagrees_with_the_first_rows(tmp_path: Path) -> None:
    rows = ["amount,kind", *(f"{i},x" for i in range(1000)), "3.5,y", "n/a?,z"]
    path = tmp_path / "late.csv"
    path.write_text("\n".join(rows) + "\n")

    frame = read_table(path)

    assert frame.height == 1002
    assert frame["amount"].to_list()[-2:] == ["3.5", "n/a?"]  # nothing lost or nulled
