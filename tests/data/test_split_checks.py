"""The split column, sample weights, the positive class and rmsle checked against the data before
any work, every problem at once; time and group together refused in the spec."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from looml.data.profile import profile
from looml.data.validate import ValidationReport, validate
from looml.errors import DataError, SpecError
from looml.spec import DataSpec, PreprocessingSpec, SplitSpec, validate_spec

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"))


def corpus(name: str, rows: int) -> pl.DataFrame:
    frame = pl.read_parquet(CORPUS / f"{name}.parquet")
    return frame.sample(n=min(rows, frame.height), seed=0)


def check(name: str | pl.DataFrame, target: str, split: dict[str, Any] | None = None,
          metrics: list[tuple[str, str]] | None = None, **data: Any) -> ValidationReport:
    frame = corpus(name, 300) if isinstance(name, str) else name
    return validate(profile(frame), DataSpec(source="d.csv", target=target, **data),
                    SplitSpec(**(split or {})), PreprocessingSpec(), metrics=metrics)


def test_every_bad_setting_is_reported_at_once_with_a_did_you_mean() -> None:
    with pytest.raises(DataError) as caught:
        check("email_spam", "spam", {"by": {"time": "tme"}}, positive_class="spam", sample_weight="winner")
    text = str(caught.value)
    assert "3 problems" in text
    assert "split.by.time" in text and "did you mean 'time'?" in text
    assert "data.positive_class" in text and "its values are '0', '1'" in text
    assert "data.sample_weight" in text and "sample weights must be numbers; 'winner' is String" in text


def test_a_time_column_must_be_a_date_or_a_number() -> None:
    with pytest.raises(DataError, match=r"a time split needs a date, datetime or numeric column; 'winner' is "
                                        r"String"):
        check("email_spam", "spam", {"by": {"time": "winner"}})
    report = check("email_spam", "spam", {"by": {"time": "time"}})
    assert report.features["time"] == "datetime"  # a split column may still be a feature
    assert check("email_spam", "spam", {"by": {"time": "num_char"}}).task == "classification"


def test_a_group_column_needs_more_groups_than_folds() -> None:
    with pytest.raises(DataError, match=r"'format' has 2 groups: too few for a holdout and 5 grouped folds"):
        check("email_spam", "spam", {"by": {"group": "format"}})
    with pytest.raises(DataError, match=r"split.by.group.*the target cannot be the split column"):
        check("email_spam", "spam", {"by": {"group": "spam"}})


def test_sample_weights_must_be_non_negative_and_are_never_a_feature() -> None:
    report = check("email_spam", "spam", sample_weight="num_char")
    assert "num_char" not in report.features and "data.sample_weight" in report.dropped["num_char"]
    shifted = corpus("email_spam", 300).with_columns((pl.col("num_char") - 5).alias("w"))
    with pytest.raises(DataError, match=r"sample weights must be >= 0; 'w' has \d+ negative values"):
        check(shifted, "spam", sample_weight="w")
    with pytest.raises(DataError, match=r"1 rows have a missing or infinite weight in 'w'"):
        check(shifted.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(
            pl.col("num_char")).alias("w")), "spam", sample_weight="w")


def test_the_positive_class_must_be_a_binary_class() -> None:
    assert check("email_spam", "spam", positive_class=0).task == "classification"
    with pytest.raises(DataError, match=r"a positive class applies to binary classification; this task is "
                                        r"regression"):
        check("gestation_birthweight", "wt", positive_class=1)


def test_rmsle_needs_a_non_negative_target() -> None:
    frame = corpus("gestation_birthweight", 300).with_columns(pl.col("wt") - 120)
    with pytest.raises(DataError, match=r"evaluation.primary_metric.*rmsle needs a target >= 0, but "
                                        r"'wt' goes "
                                        r"down to"):
        check(frame, "wt", metrics=[("primary_metric", "rmsle")], task="regression")
    assert check(frame, "wt", metrics=[("primary_metric", "rmse")], task="regression").task == "regression"


def test_time_and_group_together_are_a_spec_error() -> None:
    raw = {"data": {"source": "d.csv", "target": "y"}, "registry": {"model_name": "m"},
           "split": {"by": {"time": "day", "group": "shop"}}}
    with pytest.raises(SpecError, match=r"split.by.*time and group together are not supported"):
        validate_spec(raw, project_dir=Path("."))
    with pytest.raises(SpecError, match=r"split.by.*give `time: COLUMN` or `group: COLUMN`"):
        validate_spec({**raw, "split": {"by": {}}}, project_dir=Path("."))
    with pytest.raises(SpecError, match=r"(?s)split.by.tme: unknown key.*did you mean 'time'"):
        validate_spec({**raw, "split": {"by": {"tme": "day"}}}, project_dir=Path("."))
