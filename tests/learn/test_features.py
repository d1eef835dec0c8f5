"""The custom transformers keep the scikit-learn estimator contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from looml.learn.features import DatetimeParts, SchemaCoercer, build_preprocessor
from looml.spec import PreprocessingSpec


@parametrize_with_checks([SchemaCoercer(), DatetimeParts(parts=("year", "month"))])
def test_sklearn_estimator_contract(estimator, check) -> None:
    check(estimator)


def _train_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "age": [30.0, 40.0, np.nan, 50.0],
        "city": ["a", "b", None, "a"],
        "when": pd.to_datetime(["2024-01-01", "2024-06-15", None, "2025-02-28"]),
    })


def test_schema_coercer_takes_raw_rows_like_training_rows() -> None:
    kinds = {"age": "numeric", "city": "categorical", "when": "datetime"}
    coercer = SchemaCoercer(columns=kinds).fit(_train_frame())
    raw = pd.DataFrame({"when": ["2024-03-01", None], "extra": [1, 2], "age": ["41.5", None],
                        "city": [True, None]})
    out = coercer.transform(raw)
    assert list(out.columns) == ["age", "city", "when"]
    assert out["age"].tolist()[0] == 41.5 and np.isnan(out["age"].tolist()[1])
    assert out["city"].tolist()[0] == "true" and pd.isna(out["city"].tolist()[1])
    assert out["when"].dt.month.tolist()[0] == 3 and pd.isna(out["when"].tolist()[1])


def test_schema_coercer_names_missing_columns() -> None:
    coercer = SchemaCoercer(columns={"age": "numeric", "city": "categorical"}).fit(_train_frame())
    with pytest.raises(ValueError, match=r"missing feature column\(s\): 'city'"):
        coercer.transform(pd.DataFrame({"age": [1.0]}))


def test_datetime_parts_values_and_names() -> None:
    parts = DatetimeParts(parts=("year", "month", "dayofweek")).fit(_train_frame()[["when"]])
    out = parts.transform(_train_frame()[["when"]])
    assert out[0].tolist() == [2024.0, 1.0, 0.0]
    assert np.isnan(out[2]).all()
    assert parts.get_feature_names_out().tolist() == ["when_year", "when_month", "when_dayofweek"]


def test_preprocessor_groups_rare_and_unseen_categories() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200),
                          "c": ["common"] * 120 + ["other"] * 79 + ["rare"]})
    spec = PreprocessingSpec.model_validate({"categorical": {"min_frequency": 0.05}})
    pre = build_preprocessor({"x": "numeric", "c": "categorical"}, spec).fit(frame)
    names = pre.get_feature_names_out().tolist()
    assert any("infrequent" in n for n in names) and not any(n.endswith("_rare") for n in names)
    unseen = pre.transform(pd.DataFrame({"x": [0.0], "c": ["never seen"]}))
    assert unseen.shape == (1, len(names)) and np.isfinite(unseen).all()
