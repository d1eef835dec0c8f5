"""Profile: kinds, missing counts, distinct counts and statistics of each column."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from sklearn.datasets import load_diabetes

from looml.data.profile import Profile, profile


@pytest.fixture
def mixed() -> pl.DataFrame:
    return pl.DataFrame({
        "n": [1, 2, None, 4, 4],
        "f": [0.5, 1.5, 2.5, None, None],
        "s": ["a", "b", "a", None, "a"],
        "b": [True, False, True, True, None],
        "d": [dt.date(2024, 1, i) for i in range(1, 6)],
        "t": [dt.time(1, 0)] * 5,
        "empty": pl.Series([None] * 5, dtype=pl.Float64),
    })


def test_kinds(mixed: pl.DataFrame) -> None:
    kinds = {c.name: c.kind for c in profile(mixed).columns}

    assert kinds == {"n": "numeric", "f": "numeric", "s": "string", "b": "boolean",
                     "d": "datetime", "t": "other", "empty": "numeric"}


def test_missing_and_distinct_counts_leave_out_nulls(mixed: pl.DataFrame) -> None:
    result = profile(mixed)

    assert result.rows == 5
    assert [(c.name, c.missing, c.n_unique) for c in result.columns] == [
        ("n", 1, 3), ("f", 2, 3), ("s", 1, 2), ("b", 1, 2), ("d", 0, 5), ("t", 0, 1),
        ("empty", 5, 0)]
    assert result.column("f").missing_rate(result.rows) == pytest.approx(0.4)


def test_integral_marks_whole_numbers_only(mixed: pl.DataFrame) -> None:
    result = profile(mixed.with_columns(whole=pl.Series([1.0, 2.0, 3.0, None, 5.0])))

    assert result.column("n").integral is True
    assert result.column("whole").integral is True
    assert result.column("f").integral is False
    assert result.column("empty").integral is False  # no values: not evidence of anything


def test_top_values_count_each_value(mixed: pl.DataFrame) -> None:
    result = profile(mixed)

    assert result.column("s").top_values == {"a": 3, "b": 1}
    assert result.column("d").top_values == {}  # datetimes are never listed


def test_numeric_statistics_match_numpy() -> None:
    frame = pl.from_pandas(load_diabetes(as_frame=True, scaled=False).frame)

    result = profile(frame)

    for name in ("age", "bmi", "target"):
        values = frame[name].to_numpy()
        col = result.column(name)
        assert col.min == pytest.approx(values.min())
        assert col.max == pytest.approx(values.max())
        assert col.mean == pytest.approx(values.mean())
        assert col.std == pytest.approx(values.std(ddof=1))
    assert result.column("bmi").top_values == {}  # too many distinct values to keep counts
    assert result.column("sex").top_values == {"1.0": 235, "2.0": 207}


def test_many_distinct_values_keep_no_counts() -> None:
    frame = pl.DataFrame({"few": np.arange(200) % 50, "many": np.arange(200) % 51})

    result = profile(frame)

    assert len(result.column("few").top_values) == 50
    assert result.column("many").top_values == {}


def test_round_trips_through_a_dict(mixed: pl.DataFrame) -> None:
    result = profile(mixed)

    assert Profile.from_dict(result.to_dict()) == result
    assert result.names == list(mixed.columns)
