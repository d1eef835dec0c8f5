"""The custom transformers keep the scikit-learn estimator contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from looml.errors import SpecError
from looml.learn.features import DatetimeParts, SchemaCoercer, build_preprocessor
from looml.learn.rows import TargetTransform, TrainingRows, finalize, wrap_model
from looml.spec import FeaturesSpec, PreprocessingSpec


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


# -- build_preprocessor: the spec's options as pipeline steps ---------------------------------------

KINDS = {"x": "numeric", "y": "numeric", "c": "categorical", "many": "categorical", "when": "datetime"}


def mixed(rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(size=rows)),
        "y": rng.lognormal(size=rows),
        "c": rng.choice(["a", "b", "c"], rows),
        "many": [f"m{i}" for i in rng.integers(0, 80, rows)],
        "when": pd.to_datetime(rng.integers(1_500_000_000, 1_700_000_000, rows), unit="s"),
    })
    return frame, (frame["y"].to_numpy() > 1).astype(int)


def branches(pre: Any) -> dict[str, tuple[list[str], list[str]]]:
    """Fitted ColumnTransformer branches: name -> (step names, columns), empty selections left out."""
    fitted = pre.named_steps["columns"].transformers_
    return {name: ([s for s, _ in t.steps] if hasattr(t, "steps") else [type(t).__name__], list(cols))
            for name, t, cols in fitted if len(cols) and name != "remainder"}


def test_defaults_keep_the_coercer_then_one_column_transformer() -> None:
    X, y = mixed()
    pre = build_preprocessor(KINDS, PreprocessingSpec()).fit(X, y)
    assert [name for name, _ in pre.steps] == ["coerce", "columns"]
    assert branches(pre) == {
        "numeric": (["impute", "scale"], ["x", "y"]),
        "categorical": (["impute", "onehot"], ["c"]),  # few values: one-hot
        "categorical_target": (["impute", "target"], ["many"]),  # 80 values > high_cardinality 50
        "datetime": (["parts", "impute", "scale"], ["when"]),
    }


def test_an_integer_regression_target_is_target_encoded_as_continuous() -> None:
    # Grams or counts are integers with many distinct values: scikit-learn's 'auto' reads them as
    # multiclass and writes one column per feature and value (opt_birthweight: 4,563 columns).
    X, _ = mixed()
    grams = np.random.default_rng(3).integers(2_000, 4_500, size=len(X))
    pre = build_preprocessor(KINDS, PreprocessingSpec(), task="regression").fit(X, grams)
    assert pre.named_steps["columns"].named_transformers_["categorical_target"]["target"].target_type_ \
        == "continuous"
    assert [n for n in pre.get_feature_names_out() if n.startswith("categorical_target__")] == [
        "categorical_target__many"]
    classes = np.random.default_rng(3).choice(["a", "b", "c"], size=len(X))
    pre = build_preprocessor(KINDS, PreprocessingSpec(), task="classification").fit(X, classes)
    assert len([n for n in pre.get_feature_names_out() if n.startswith("categorical_target__")]) == 3


def test_numeric_options_and_per_column_overrides() -> None:
    X, y = mixed()
    spec = PreprocessingSpec.model_validate({
        "numeric": {"impute": "knn", "clip": "zscore", "power": "yeo-johnson", "scale": "minmax"},
        "categorical": {"encoding": "onehot"},
        "columns": {"y": {"impute": "constant", "fill_value": -1, "scale": "none"},
                    "many": {"encoding": "ordinal"}}})
    pre = build_preprocessor(KINDS, spec).fit(X, y)
    got = branches(pre)
    assert got["numeric"] == (["clip", "impute", "power", "scale"], ["x"])
    assert got["categorical"] == (["impute", "onehot"], ["c"])
    overridden = {tuple(cols): steps for name, (steps, cols) in got.items() if name[-1].isdigit()}
    assert overridden == {("y",): ["clip", "impute", "power"], ("many",): ["impute", "ordinal"]}
    columns = pre.named_steps["columns"]
    y_branch = next(t for n, t, c in columns.transformers_ if list(c) == ["y"])
    assert y_branch.named_steps["impute"].fill_value == -1
    assert np.isfinite(pre.transform(X)).all()


def test_engineering_steps_in_order() -> None:
    X, y = mixed()
    engineering = FeaturesSpec.model_validate({
        "derived": [{"name": "ratio", "expr": "x / y"}],
        "polynomial": {"columns": ["x", "ratio"], "degree": 2, "interaction_only": True},
        "binning": {"columns": ["y"], "bins": 3, "strategy": "uniform"},
        "selection": {"variance_threshold": 0.0, "correlation_threshold": 0.99, "mutual_info_k": 12,
                      "rfe": {"n_features": 8}, "model_importance": {"threshold": "median"}},
        "pca": {"components": 3}})
    pre = build_preprocessor(KINDS, PreprocessingSpec(), engineering, "classification", 0).fit(X, y)
    assert [n for n, _ in pre.steps] == ["coerce", "derived", "columns", "variance", "correlation",
                                         "mutual_info", "rfe", "importance", "pca"]
    got = branches(pre)
    assert got["numeric"][1] == ["x", "y", "ratio"]
    names = pre.named_steps["columns"].get_feature_names_out().tolist()
    assert "polynomial__x ratio" in names and "polynomial__x^2" not in names  # interaction only
    assert sum(n.startswith("binning__y_") for n in names) == 3
    assert pre.transform(X).shape == (len(X), 3)


def test_text_and_cyclic_dates() -> None:
    stamps = ["2024-01-01 06:00", "2024-07-01 18:00", None, "2024-12-31"]
    X = pd.DataFrame({"note": ["late delivery again", None, "great price", "late again and again"] * 10,
                      "when": pd.to_datetime(stamps * 10, format="mixed")})
    spec = PreprocessingSpec.model_validate({"text": {"min_df": 2, "ngram_max": 1},
                                             "datetime": {"parts": ["year", "month"], "cyclic": True}})
    pre = build_preprocessor({"note": "text", "when": "datetime"}, spec).fit(X)
    names = pre.named_steps["columns"].get_feature_names_out().tolist()
    assert "text__note_late" in names and "text__note_and" in names
    assert [n for n in names if "cyclic" in n] == ["datetime_cyclic__when_month_sin",
                                                    "datetime_cyclic__when_month_cos"]
    out = pre.transform(pd.DataFrame({"note": ["never seen words"], "when": ["2024-04-01"]}))
    assert out.shape == (1, len(names)) and np.isfinite(out).all()


def test_wide_text_is_projected_on_its_first_singular_directions() -> None:
    rng = np.random.default_rng(2)
    words = [f"w{i}" for i in range(300)]
    X = pd.DataFrame({"note": [" ".join(rng.choice(words, 8)) for _ in range(400)]})
    narrow = build_preprocessor({"note": "text"}, PreprocessingSpec.model_validate(
        {"text": {"ngram_max": 1, "components": 20}})).fit(X)
    wide = build_preprocessor({"note": "text"}, PreprocessingSpec.model_validate(
        {"text": {"ngram_max": 1, "components": 0}})).fit(X)
    names = narrow.named_steps["columns"].get_feature_names_out().tolist()
    assert names == [f"text__note_lsa{k}" for k in range(20)]
    assert narrow.transform(X).shape == (400, 20) and wide.transform(X).shape == (400, 300)
    again = build_preprocessor({"note": "text"}, PreprocessingSpec.model_validate(
        {"text": {"ngram_max": 1, "components": 20}})).fit(X)
    assert np.array_equal(again.transform(X), narrow.transform(X))  # seeded


# -- wrap_model / finalize ----------------------------------------------------------------------------

def test_wrap_model_leaves_the_model_alone_by_default() -> None:
    model = LogisticRegression()
    assert wrap_model(model, PreprocessingSpec(), "classification", 0) is model
    assert wrap_model(model, PreprocessingSpec(target_transform="log"), "classification", 0) is model


def test_class_weights_as_a_parameter_or_as_sample_weights() -> None:
    spec = PreprocessingSpec(imbalance="class_weight")
    assert wrap_model(LogisticRegression(), spec, "classification", 0).class_weight == "balanced"
    wrapped = wrap_model(GaussianNB(), spec, "classification", 0)
    assert isinstance(wrapped, TrainingRows) and wrapped.balanced_weights
    with pytest.raises(SpecError, match="KNeighborsClassifier takes neither class weights nor sample"):
        wrap_model(KNeighborsClassifier(), spec, "classification", 0)


def test_training_rows_resample_drop_duplicates_and_outliers() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = np.r_[np.zeros(90), np.ones(10)].astype(int)
    over = TrainingRows(LogisticRegression(), resample="oversample", random_state=0).fit(X, y)
    under = TrainingRows(LogisticRegression(), resample="undersample", random_state=0).fit(X, y)
    assert (over.n_rows_used_, under.n_rows_used_) == (180, 20)
    doubled = TrainingRows(LogisticRegression(), drop_duplicates=True).fit(np.r_[X, X], np.r_[y, y])
    assert doubled.n_rows_used_ == 100
    X[:3] = 50.0
    clean = TrainingRows(LogisticRegression(), outlier_rows="isolation_forest", random_state=0).fit(X, y)
    assert clean.n_rows_used_ < 100
    np.testing.assert_array_equal(clean.predict(X), clean.estimator_.predict(X))


def test_finalize_unwraps_training_rows_and_keeps_the_target_transform() -> None:
    X, _ = mixed()
    target = np.exp(np.random.default_rng(1).normal(size=len(X)) * 2)
    spec = PreprocessingSpec(drop_duplicates=True, target_transform="auto")
    model = Pipeline([*build_preprocessor(KINDS, spec).steps,
                      ("model", wrap_model(Ridge(), spec, "regression", 0))]).fit(X, target)
    before = model.predict(X)
    finalize(model)
    inner = model.named_steps["model"]
    assert isinstance(inner, TransformedTargetRegressor) and isinstance(inner.regressor_, Ridge)
    assert inner.transformer_.method_ == "log"  # auto: right-skewed and > -1
    np.testing.assert_array_equal(model.predict(X), before)


@pytest.mark.parametrize(("values", "method"), [(np.exp(np.linspace(0, 5, 200)), "log"),
                                                (-np.exp(np.linspace(0, 5, 200)), "yeo-johnson"),
                                                (np.linspace(-3, 3, 200), "none")])
def test_auto_target_transform_by_skewness(values: np.ndarray, method: str) -> None:
    transform = TargetTransform("auto").fit(values.reshape(-1, 1))
    assert transform.method_ == method
    back = transform.inverse_transform(transform.transform(values.reshape(-1, 1)))
    np.testing.assert_allclose(back.ravel(), values, rtol=1e-6)
