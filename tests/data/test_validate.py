"""Validate: task inference, column roles, and every data problem reported at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.datasets import load_diabetes, load_iris

from looml.data.profile import profile
from looml.data.sources.files import read_table
from looml.data.validate import ValidationReport, validate
from looml.errors import DataError
from looml.spec import DataSpec, PreprocessingSpec, SplitSpec


def check(frame: pl.DataFrame, target: str, *, folds: int = 5, test_size: float = 0.2,
          drop_id_like: bool = True, **data: Any) -> ValidationReport:
    return validate(profile(frame), DataSpec(source="d.csv", target=target, **data),
                    SplitSpec(folds=folds, test_size=test_size),
                    PreprocessingSpec(drop_id_like=drop_id_like))


def frame_with(rows: int = 60, seed: int = 0, **columns: Any) -> pl.DataFrame:
    """A numeric feature `x` and a two-class target `y`, plus the given columns."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"x": rng.normal(size=rows), "y": rng.choice(["a", "b"], rows),
                         **columns})


# --- task inference -------------------------------------------------------------------------

def test_string_target_is_classification() -> None:
    report = check(frame_with(), "y")

    assert (report.task, report.task_reason) == ("classification", "the target is String")
    assert sum(report.classes.values()) == 60 and set(report.classes) == {"a", "b"}


def test_float_target_is_regression() -> None:
    frame = pl.from_pandas(load_diabetes(as_frame=True).frame)

    report = check(frame, "target")

    assert report.task == "regression"
    assert report.task_reason.startswith("the target is numeric with 214 distinct values")
    assert report.classes == {}


def test_integer_target_with_few_values_is_classification() -> None:
    frame = pl.from_pandas(load_iris(as_frame=True).frame)

    report = check(frame, "target")

    assert report.task == "classification"
    assert report.task_reason == "the target has 3 distinct whole-number values"
    assert report.classes == {"0": 50, "1": 50, "2": 50}
    assert set(report.features) == {"sepal length (cm)", "sepal width (cm)",
                                    "petal length (cm)", "petal width (cm)"}


def test_integer_target_with_many_values_is_regression() -> None:
    frame = frame_with(rows=100).with_columns(y=pl.Series(np.arange(100) % 30 * 7))

    assert check(frame, "y").task == "regression"


def test_declared_task_wins() -> None:
    frame = pl.from_pandas(load_iris(as_frame=True).frame)

    report = check(frame, "target", task="regression")

    assert (report.task, report.task_reason) == ("regression", "set in data.task")


# --- column roles ---------------------------------------------------------------------------

def test_id_like_columns_are_dropped_with_a_reason() -> None:
    rows = 40
    rng = np.random.default_rng(1)
    frame = frame_with(
        rows=rows,
        uuid=[f"c-{i:05d}-{rng.integers(1e6)}" for i in range(rows)],
        row=np.arange(100, 100 + rows),
        customer_id=rng.permutation(np.arange(0, 10 * rows, 10)),
        visits=rng.permutation(np.arange(0, 10 * rows, 10)),  # unique, but not named like an id
        colour=rng.choice(["red", "blue"], rows),
    )

    report = check(frame, "y")

    assert report.dropped == {"uuid": "id-like (40 distinct values in 40 rows)",
                              "row": "id-like (40 distinct values in 40 rows)",
                              "customer_id": "id-like (40 distinct values in 40 rows)"}
    assert report.features == {"x": "numeric", "visits": "numeric", "colour": "categorical"}
    assert "dropped column 'uuid': id-like (40 distinct values in 40 rows)" in report.warnings


def test_id_like_detection_can_be_turned_off() -> None:
    frame = frame_with(row=np.arange(60))

    assert check(frame, "y", drop_id_like=False).features["row"] == "numeric"


def test_small_tables_have_no_id_like_columns() -> None:
    frame = frame_with(rows=19, row=np.arange(19))

    assert check(frame, "y", folds=2, test_size=0.3).features["row"] == "numeric"


def test_constant_all_missing_and_unsupported_columns_are_dropped() -> None:
    frame = frame_with(
        rows=30, const=["same"] * 30, gone=pl.Series([None] * 30, dtype=pl.Float64),
        clock=[dt.time(9, i) for i in range(30)],
    )

    report = check(frame, "y")

    assert report.dropped == {"const": "constant (only 'same')", "gone": "all values are missing",
                              "clock": "unsupported type Time"}
    assert report.features == {"x": "numeric"}


def test_listed_columns_are_dropped_with_their_reason() -> None:
    frame = frame_with(rows=30, ref=np.arange(30) % 4, note=["n"] * 15 + ["m"] * 15)

    report = check(frame, "y", id_columns=["ref"], drop_columns=["note"])

    assert report.dropped == {"ref": "listed in data.id_columns",
                              "note": "listed in data.drop_columns"}
    # What the user listed is not repeated back as a warning.
    assert not any("ref" in w or "note" in w for w in report.warnings)


def test_iso_dates_in_a_csv_become_datetime_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    days = [dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 700, 50)]
    path = tmp_path / "d.csv"
    frame_with(rows=50, signup=[d.isoformat() for d in days]).write_csv(path)

    report = check(read_table(path), "y")

    assert report.features == {"x": "numeric", "signup": "datetime"}


def test_report_round_trips_through_a_dict() -> None:
    report = check(frame_with(rows=30, const=[1] * 30), "y")

    assert ValidationReport.from_dict(report.to_dict()) == report


# --- problems, all at once ------------------------------------------------------------------

def test_missing_target_is_reported_with_the_other_unknown_columns() -> None:
    # Without the target nothing else can be checked, so these are all the problems there are.
    with pytest.raises(DataError, match=r"invalid data: 3 problems") as exc:
        check(frame_with(), "Y", id_columns=["idd"], drop_columns=["xx", "x"])

    assert [(p.loc, p.value, p.fix) for p in exc.value.problems] == [
        ("data.id_columns[0]", "idd", "the columns are: x, y"),
        ("data.drop_columns[0]", "xx", "did you mean 'x'?"),
        ("data.target", "Y", "did you mean 'y'?"),
    ]


def test_problems_with_an_existing_target_are_reported_together() -> None:
    frame = pl.DataFrame({"x": [0.1, 0.2, 0.3, 0.4], "y": ["a"] * 4})

    with pytest.raises(DataError, match=r"invalid data: 3 problems") as exc:
        check(frame, "y", drop_columns=["colour"])

    locs = [p.loc for p in exc.value.problems]
    assert locs == ["data.drop_columns[0]", "data.target", "split.folds"]
    text = str(exc.value)
    assert "classification needs at least two classes; the target has only 'a'" in text
    assert "only 3 training rows (of 4 with a target) for 5 cross-validation folds" in text


def test_target_cannot_also_be_excluded() -> None:
    with pytest.raises(DataError, match=r"data\.drop_columns\[0\]: the target column cannot also "
                                        r"be excluded \(got 'y'\)\n\s+fix: remove 'y' from "
                                        r"data\.drop_columns"):
        check(frame_with(), "y", drop_columns=["y"])


def test_target_all_null() -> None:
    frame = frame_with().with_columns(y=pl.lit(None, dtype=pl.String))

    with pytest.raises(DataError, match=r"data\.target: the target column has no values \(all "
                                        r"null\)") as exc:
        check(frame, "y")
    assert len(exc.value.problems) == 1  # not also "too few rows for the folds"


def test_regression_target_must_be_numeric() -> None:
    with pytest.raises(DataError, match=r"a regression target must be numeric, but 'y' is String "
                                        r"\(values such as '[ab]', '[ab]'\) \(got 'y'\)\n"
                                        r"\s+fix: clean the column to numbers, or set "
                                        r"data\.task: classification"):
        check(frame_with(), "y", task="regression")


def test_single_row_classes() -> None:
    frame = frame_with().with_columns(y=pl.Series(["a", "b"] * 29 + ["c", "d"]))

    with pytest.raises(DataError, match=r"2 class\(es\) have a single row, too few for a "
                                        r"stratified split \(got \['c', 'd'\]\)"):
        check(frame, "y")


def test_holdout_too_small_for_the_classes() -> None:
    frame = pl.DataFrame({"x": np.arange(24) * 0.5, "y": [f"k{i % 12}" for i in range(24)]})

    with pytest.raises(DataError, match=r"split\.test_size: the holdout would have 5 rows for 12 "
                                        r"classes \(got 0\.2\)"):
        check(frame, "y", folds=2)


def test_string_target_with_too_many_values_for_either_task() -> None:
    frame = frame_with(rows=80).with_columns(y=pl.Series([f"{i}.5 kg" for i in range(80)]))

    with pytest.raises(DataError, match=r"data\.target: the target is String with 80 distinct "
                                        r"values: too many classes for classification, and not "
                                        r"numbers for regression"):
        check(frame, "y")


def test_declared_classification_of_a_continuous_target() -> None:
    frame = pl.from_pandas(load_diabetes(as_frame=True).frame)

    with pytest.raises(DataError, match=r"data\.task: the target 'target' has 214 distinct "
                                        r"values, too many for classification \(got "
                                        r"'classification'\)\n\s+fix: set data\.task: regression"):
        check(frame, "target", task="classification")


def test_no_usable_features() -> None:
    frame = frame_with(rows=30).drop("x").with_columns(c=pl.lit(1))

    with pytest.raises(DataError, match=r"data: no usable feature columns remain"):
        check(frame, "y")


# --- warnings -------------------------------------------------------------------------------

def test_rare_class_warning() -> None:
    frame = frame_with(rows=63).with_columns(y=pl.Series(["a"] * 30 + ["b"] * 30 + ["c"] * 3))

    report = check(frame, "y")

    assert ("classes with fewer rows than folds (5): c; their CV scores are noisy"
            in report.warnings)


def test_rows_without_a_target_are_left_out_with_a_warning() -> None:
    frame = frame_with().with_columns(
        y=pl.when(pl.int_range(pl.len()) < 4).then(None).otherwise(pl.col("y")))

    report = check(frame, "y")

    assert report.target_missing == 4
    assert "4 rows have no target value and are left out" in report.warnings


def test_binary_class_rarer_than_the_folds_is_an_error_naming_the_fold_count() -> None:
    frame = frame_with(rows=60, label=np.array(["yes"] * 4 + ["no"] * 56))

    with pytest.raises(DataError, match=r"(?s)split\.folds.*the rarer class 'yes' has 3 training rows, "
                                        r"fewer than the 5 folds.*set split\.folds to 3 or fewer"):
        check(frame, "label")


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_a_target_with_infinite_or_nan_values_is_refused(bad: float) -> None:
    # Found by tests/hostile: "inf" in an integer-coded class column made the split raise.
    target = [0.0, 1.0] * 30
    target[7] = bad

    with pytest.raises(DataError, match=r"data\.target: the target has [01] infinite and [01] NaN values"
                                        r".*\n.*fix: correct those rows, or leave their target cells empty"):
        check(frame_with(label=target), "label")
