"""The compiled scorer against the pipeline itself: every zoo family and task, messy raw rows,
fallbacks for what it cannot reproduce, and `load_model` choosing it for a registered model."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PowerTransformer
from threadpoolctl import threadpool_limits

import looml
from looml.data.profile import profile as profile_frame
from looml.data.schema import ColumnSchema, Schema
from looml.learn.ensemble import make_ensemble
from looml.learn.features import SchemaCoercer, build_preprocessor
from looml.learn.rows import wrap_model
from looml.learn.zoo import make_estimator
from looml.serve.compiled import TOLERANCE, CompiledScorer, CompiledStack, CompiledVote, compile_scorer
from looml.serve.compiled.coerce import coerce_column
from looml.serve.compiled.steps import SharedText
from looml.serve.model import Batch, PipelineScorer, load_model
from looml.spec import FeaturesSpec, PreprocessingSpec

FEATURES = {"age": "numeric", "income": "numeric", "visits": "numeric", "plan": "categorical",
            "region": "categorical", "joined": "datetime"}
SMALL = {"linear": {}, "random_forest": {"n_estimators": 25}, "hist_gradient_boosting": {"max_iter": 25},
         "lightgbm": {"n_estimators": 25}, "extra_trees": {"n_estimators": 25},
         "xgboost": {"n_estimators": 25}, "catboost": {"iterations": 25}, "mlp": {"max_iter": 50},
         "decision_tree": {}, "lasso": {}, "elastic_net": {}, "ridge": {}}
NAMES = {"linear": "compiled:linear", "random_forest": "compiled:onnx-trees",
         "hist_gradient_boosting": "compiled:onnx-trees", "lightgbm": "compiled:lightgbm",
         "extra_trees": "compiled:onnx-trees", "xgboost": "compiled:xgboost", "catboost": "compiled:catboost",
         "mlp": "compiled:mlp", "decision_tree": "compiled:onnx-trees", "lasso": "compiled:linear",
         "elastic_net": "compiled:linear", "ridge": "compiled:linear"}
# Every family the default search tries (`DEFAULT_CANDIDATES`) and the other tree and linear ones.
FAMILIES = ["linear", "random_forest", "hist_gradient_boosting", "lightgbm", "extra_trees", "xgboost",
            "catboost", "mlp", "decision_tree"]


def training_frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Numeric columns with gaps, categorical with rare levels and gaps, dates with gaps; 3 targets."""
    rng = np.random.default_rng(seed)
    gaps = lambda: rng.random(rows) < 0.1  # noqa: E731
    frame = pd.DataFrame({
        "age": np.where(gaps(), np.nan, rng.integers(18, 90, rows)),
        "income": np.where(gaps(), np.nan, rng.lognormal(10, 1, rows)),
        "visits": rng.poisson(3, rows).astype(float),
        "plan": rng.choice(["basic", "pro", "team", "edu", "gov", None], rows,
                           p=[.4, .3, .22, .03, .03, .02]),
        "region": rng.choice(["north", "south", "east", "west"], rows),
        "joined": pd.Series(pd.to_datetime(rng.integers(1_300_000_000, 1_700_000_000, rows), unit="s"))
        .where(~gaps()),
    })
    score = np.nan_to_num(frame["age"]) / 30 + (frame["plan"] == "pro") - frame["visits"] / 4 \
        + rng.normal(size=rows)
    return frame, {"binary": np.where(score > 1.2, "yes", "no"),
                   "multiclass": np.digitize(score, [0.8, 1.6]).astype(str),
                   "regression": score * 1000.0}


def messy_batch(rows: int, seed: int) -> Batch:
    """Raw rows as clients send them: numbers as strings, bools, None, NaN, unseen categories,
    numbers in categorical columns, dates in several formats and garbage."""
    rng = np.random.default_rng(seed)

    def pick(options: list[Callable[[], Any]]) -> list[Any]:
        return [options[int(rng.integers(len(options)))]() for _ in range(rows)]

    number = lambda: float(rng.normal(50, 30))  # noqa: E731
    numeric = [number, number, lambda: int(rng.integers(0, 100)), lambda: f"{number():.3f}",
               lambda: f" {int(rng.integers(0, 9))} ", lambda: None, lambda: float("nan"), lambda: "n/a",
               lambda: "", lambda: True]
    category = [lambda: str(rng.choice(["basic", "pro", "team", "edu", "gov"])), lambda: "platinum",
                lambda: None, lambda: "", lambda: 7, lambda: 2.5, lambda: False, lambda: "(missing)"]
    stamp = lambda: dt.datetime(2000, 1, 1) + dt.timedelta(seconds=int(rng.integers(0, 10**9)))  # noqa: E731
    dates = [lambda: stamp().isoformat(), lambda: stamp().strftime("%Y-%m-%d"), stamp, lambda: "yesterday",
             lambda: None, lambda: "1969-12-31 23:59:59", lambda: stamp().strftime("%Y-%m-%d %H:%M:%S.%f")]
    return {"age": pick(numeric), "income": pick(numeric), "visits": pick(numeric), "plan": pick(category),
            "region": pick(category[:3]), "joined": pick(dates)}


def assert_same(compiled: Any, reference: PipelineScorer, batch: Batch) -> None:
    with threadpool_limits(limits=1, user_api="openmp"):  # HistGradientBoosting's threads, on 2 busy cores
        got, want = compiled.predict(batch), reference.predict(batch)
    if want.proba is None:
        assert got.proba is None
        np.testing.assert_allclose(got.labels, want.labels, rtol=TOLERANCE, atol=TOLERANCE)
    else:
        assert list(got.labels) == list(want.labels)
        np.testing.assert_allclose(got.proba, want.proba, rtol=0, atol=TOLERANCE)


TRICKY = [[1, None], [1, 2], [3, 2.0], [1.5, float("nan")], [None, None], [None], [True, 1], [True, None],
          [False, True], ["7", None], ["1.5", " 2 ", "1e3", "x", "", "inf", "NaN"], [2**70, None],
          [2**63, -1, None], [2**53 + 1, None], [np.float64(2.5), 1], ["a", float("nan")],
          [dt.datetime(2020, 1, 1), "b"], np.array([1, 2]), np.array([1.0, np.nan]), np.array([True, False]),
          np.array(["a", "b"]), np.array([1, None], dtype=object)]


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
@pytest.mark.parametrize("values", TRICKY, ids=repr)
def test_columns_are_coerced_as_the_schema_coercer_coerces_them(values: Any, kind: str) -> None:
    coercer = SchemaCoercer(columns={"c": kind}).fit(pd.DataFrame({"c": [1.0]}))
    want = coercer.transform(pd.DataFrame({"c": values}))["c"].to_numpy()

    got = coerce_column(values, kind, len(values))

    if kind == "numeric":
        np.testing.assert_array_equal(got, want.astype(np.float64))
    else:
        assert got.tolist() == [None if pd.isna(v) else v for v in want.tolist()]


DATES = [["2024-01-05", None], ["2024-01-05T10:00:00", "2024-01-05 23:59:59.123456"], ["2024-02-30"],
         ["1500-01-01"], ["2300-06-01", "2024-01-01"], ["2024-01-05T10:00:00Z"], ["2024-01-05T10:00+02:00"],
         ["05/01/2024"], ["2024-01-05T10:00"], [None, None], ["2024-1-5"], ["yesterday", "2024-01-05"]]


@pytest.mark.parametrize("values", DATES, ids=repr)
def test_dates_are_coerced_as_the_schema_coercer_coerces_them(values: list[Any]) -> None:
    coercer = SchemaCoercer(columns={"c": "datetime"}).fit(pd.DataFrame({"c": ["2024-01-01"]}))
    want = coercer.transform(pd.DataFrame({"c": values}))["c"].to_numpy()

    got = coerce_column(values, "datetime", len(values))

    np.testing.assert_array_equal(got.astype("datetime64[us]"), want.astype("datetime64[us]"))


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, dict[str, np.ndarray], Schema, dict[str, Any]]:
    frame, targets = training_frame()
    profile = profile_frame(pl.from_pandas(frame)).to_dict()
    schema = Schema(target="label", columns={
        "age": ColumnSchema(type="numeric", min=18, max=89), "income": ColumnSchema(type="numeric"),
        "visits": ColumnSchema(type="numeric"),
        "plan": ColumnSchema(type="categorical", categories=["basic", "edu", "gov", "pro", "team"]),
        "region": ColumnSchema(type="categorical", categories=["east", "north", "south", "west"]),
        "joined": ColumnSchema(type="datetime")})
    return frame, targets, schema, profile


def fitted(family: str, target: str, data: tuple[Any, ...],
           spec: PreprocessingSpec | None = None, engineering: FeaturesSpec | None = None) -> Pipeline:
    frame, targets, _, _ = data
    task = "regression" if target == "regression" else "classification"
    spec = spec or PreprocessingSpec.model_validate({"categorical": {"min_frequency": 0.05}})
    model = wrap_model(make_estimator(family, task, SMALL[family], seed=0, n_jobs=1), spec, task, seed=0)
    pipeline = Pipeline([*build_preprocessor(FEATURES, spec, engineering, task).steps, ("model", model)])
    with threadpool_limits(limits=1, user_api="openmp"):
        return pipeline.fit(frame, targets[target])


@pytest.mark.parametrize("target", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("family", FAMILIES)
def test_the_compiled_scorer_reproduces_the_pipeline_on_messy_rows(family: str, target: str,
                                                                   data: tuple[Any, ...]) -> None:
    _, _, schema, profile = data
    pipeline = fitted(family, target, data)
    reference = PipelineScorer(pipeline, FEATURES)

    compiled = compile_scorer(pipeline, FEATURES, schema, profile, reference)

    assert isinstance(compiled, CompiledScorer) and compiled.name == NAMES[family]
    assert_same(compiled, reference, messy_batch(300, seed=11))
    for seed in range(5):  # one row at a time: pandas types a one-value column on its own
        assert_same(compiled, reference, messy_batch(1, seed=100 + seed))


def test_other_preprocessing_settings_and_batch_shapes(data: tuple[Any, ...]) -> None:
    spec = PreprocessingSpec.model_validate({
        "numeric": {"impute": "mean", "scale": "robust", "missing_indicator": False},
        "categorical": {"min_frequency": 0.001, "max_categories": 3},
        "datetime": {"parts": ["year", "dayofyear", "minute", "dayofweek"]}})
    pipeline = fitted("hist_gradient_boosting", "binary", data, spec)
    reference = PipelineScorer(pipeline, FEATURES)
    compiled = compile_scorer(pipeline, FEATURES, None, None, reference)  # no schema, no profile
    assert isinstance(compiled, CompiledScorer)

    assert_same(compiled, reference, messy_batch(200, seed=5))
    assert_same(compiled, reference, {"age": [30, None], "plan": ["pro", "basic"]})  # absent columns
    assert_same(compiled, reference, {"age": np.array([30.0, np.nan]), "income": np.array([1, 2]),
                                      "visits": np.array([1.5, 2.5], dtype=np.float32),
                                      "plan": np.array(["pro", "edu"]), "region": np.array([1.0, np.nan]),
                                      "joined": np.array(["2020-02-29", "NaT"], dtype="datetime64[s]")})
    empty = compiled.predict({name: [] for name in FEATURES})
    assert empty.labels.shape == (0,) and empty.proba.shape == (0, 2)
    with pytest.raises(ValueError, match="infinity"):  # as the pipeline's imputer refuses it
        compiled.predict({"age": [float("inf")]})
    with pytest.raises(ValueError, match="infinity"):
        reference.predict({"age": [float("inf")]})

    minmax = fitted("linear", "regression", data,
                    PreprocessingSpec.model_validate({"numeric": {"scale": "minmax"}}))
    compiled = compile_scorer(minmax, FEATURES, None, None, PipelineScorer(minmax, FEATURES))
    assert isinstance(compiled, CompiledScorer)
    assert_same(compiled, PipelineScorer(minmax, FEATURES), messy_batch(100, seed=6))


@pytest.mark.parametrize("family", ["lasso", "elastic_net", "ridge"])
def test_the_other_linear_regressors_compile(family: str, data: tuple[Any, ...]) -> None:
    _, _, schema, profile = data
    pipeline = fitted(family, "regression", data)
    reference = PipelineScorer(pipeline, FEATURES)

    compiled = compile_scorer(pipeline, FEATURES, schema, profile, reference)

    assert isinstance(compiled, CompiledScorer) and compiled.name == "compiled:linear"
    assert_same(compiled, reference, messy_batch(200, seed=12))


ENGINEERED = {
    "clip and power": ({"numeric": {"clip": "iqr", "power": "yeo-johnson"}}, {}),
    "clip by z-score, no scaling": ({"numeric": {"clip": "zscore", "scale": "none"}}, {}),
    "cyclic dates": ({"datetime": {"parts": ["year", "month", "dayofweek", "hour"], "cyclic": True}}, {}),
    "polynomial and bins": ({}, {"polynomial": {"columns": ["age", "visits"], "degree": 3},
                                 "binning": {"columns": ["income", "age"], "bins": 4}}),
    "uniform bins": ({}, {"binning": {"columns": ["visits"], "bins": 3, "strategy": "uniform"}}),
    "selection": ({}, {"selection": {"variance_threshold": 0.01, "correlation_threshold": 0.9,
                                     "mutual_info_k": 8}}),
    "model importance and pca": ({}, {"selection": {"model_importance": {"threshold": "median"}},
                                      "pca": {"components": 4}}),
}


@pytest.mark.parametrize("target", ["binary", "regression"])
@pytest.mark.parametrize("case", list(ENGINEERED))
def test_every_preprocessing_and_feature_step_compiles(case: str, target: str, data: tuple[Any, ...]) -> None:
    _, _, schema, profile = data
    preprocessing, engineering = ENGINEERED[case]
    spec = PreprocessingSpec.model_validate({"categorical": {"min_frequency": 0.05}, **preprocessing})
    pipeline = fitted("linear", target, data, spec, FeaturesSpec.model_validate(engineering))
    reference = PipelineScorer(pipeline, FEATURES)

    compiled = compile_scorer(pipeline, FEATURES, schema, profile, reference)

    assert isinstance(compiled, CompiledScorer), case
    assert_same(compiled, reference, messy_batch(300, seed=13))
    assert_same(compiled, reference, messy_batch(1, seed=14))


@pytest.mark.parametrize("method", ["log", "yeo-johnson"])
@pytest.mark.parametrize("family", ["lightgbm", "linear"])
def test_a_target_transform_compiles_as_its_inverse_of_the_model(family: str, method: str,
                                                                 data: tuple[Any, ...]) -> None:
    frame, targets, schema, profile = data
    spec = PreprocessingSpec.model_validate({"target_transform": method})
    positive = np.exp(targets["regression"] / 1000)  # a right-skewed target above -1
    model = wrap_model(make_estimator(family, "regression", SMALL[family], seed=0, n_jobs=1), spec,
                       "regression", seed=0)
    pipeline = Pipeline([*build_preprocessor(FEATURES, spec).steps, ("model", model)]).fit(frame, positive)
    assert type(pipeline.steps[-1][1]).__name__ == "TransformedTargetRegressor"
    reference = PipelineScorer(pipeline, FEATURES)

    compiled = compile_scorer(pipeline, FEATURES, schema, profile, reference)

    assert isinstance(compiled, CompiledScorer) and compiled.name == NAMES[family]
    assert_same(compiled, reference, messy_batch(200, seed=15))


@pytest.mark.parametrize("target", ["binary", "multiclass", "regression"])
def test_a_stack_compiles_over_its_members(target: str, data: tuple[Any, ...]) -> None:
    frame, targets, schema, profile = data
    task = "regression" if target == "regression" else "classification"
    members = [(f, fitted(f, target, data)) for f in ("linear", "lightgbm")]
    stack = make_ensemble("stacking", members, FEATURES, task, seed=0)
    with threadpool_limits(limits=1, user_api="openmp"):
        stack.fit(frame, targets[target])
    reference = PipelineScorer(stack, FEATURES)

    compiled = compile_scorer(stack, FEATURES, schema, profile, reference)

    assert isinstance(compiled, CompiledStack) and compiled.name == "compiled:stack(linear, lightgbm; linear)"
    assert_same(compiled, reference, messy_batch(300, seed=16))
    assert_same(compiled, reference, messy_batch(1, seed=17))


def test_the_members_of_a_vote_tokenize_a_text_once_per_batch() -> None:
    rng = np.random.default_rng(4)
    words = np.array(["late", "refund", "great", "broken", "thanks", "slow", "again", "never"])
    frame = pd.DataFrame({"age": rng.normal(40, 10, 240),
                          "note": [" ".join(rng.choice(words, 5)) for _ in range(240)]})
    label = np.where(frame["note"].str.contains("refund") | (frame["age"] > 45), "yes", "no")
    features = {"age": "numeric", "note": "text"}
    members = []
    for family in ("linear", "lightgbm"):
        model = make_estimator(family, "classification", SMALL[family], seed=0, n_jobs=1)
        pipeline = Pipeline([*build_preprocessor(features, PreprocessingSpec()).steps, ("model", model)])
        members.append((family, pipeline))
    vote = make_ensemble("voting", members, features, "classification", seed=0, weights=[1, 2])
    with threadpool_limits(limits=1, user_api="openmp"):
        vote.fit(frame, label)
    reference = PipelineScorer(vote, features)

    compiled = compile_scorer(vote, features, None, None, reference)

    assert isinstance(compiled, CompiledVote)
    texts = [b.steps[0] for m in compiled.members for b in m.branches if isinstance(b.steps[0], SharedText)]
    assert len(texts) == 2 and texts[0] is texts[1]
    text_step = texts[0]
    transform, reducer = text_step.parts[0]
    calls = []
    text_step.parts[0] = (lambda texts: calls.append(len(texts)) or transform(texts), reducer)
    batch = {"age": [30.0, 50.0, None], "note": ["refund again", None, "great thanks"]}
    assert_same(compiled, reference, batch)
    assert calls == [3]  # once for both members


def test_the_compiled_tfidf_equals_the_vectorizer_bit_for_bit() -> None:
    """Tokens, n-grams up to 3, case, unicode, empty and unseen texts: the same CSR, value for value."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from looml.serve.compiled.text import tfidf_transform

    rng = np.random.default_rng(7)
    words = ["Late", "refund", "GREAT", "straße", "İstanbul", "ΣΑΣ", "naïve", "x", "a1", "don't", "e-mail",
             "42"]
    fit = [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(300)]
    new = [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(200)]
    new += ["", "   ", "zzz unseen", "x"]
    for ngrams, sublinear, norm in ((1, True, "l2"), (2, True, "l2"), (3, False, "l1"), (2, True, None)):
        vectorizer = TfidfVectorizer(max_features=40, ngram_range=(1, ngrams), min_df=2, dtype=np.float32,
                                     sublinear_tf=sublinear, norm=norm).fit(fit)
        expected, got = vectorizer.transform(new), tfidf_transform(vectorizer)(new)
        expected.sort_indices()
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_array_equal(got.indptr, expected.indptr)
        np.testing.assert_array_equal(got.indices, expected.indices)
        np.testing.assert_array_equal(got.data, expected.data)
    custom = TfidfVectorizer(analyzer="char", ngram_range=(2, 3)).fit(fit)
    assert tfidf_transform(custom) == custom.transform  # a setting it does not read: the vectorizer's own


def test_an_unsupported_step_or_model_falls_back_to_the_pipeline(data: tuple[Any, ...],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    frame, targets, schema, profile = data
    numeric = [c for c, k in FEATURES.items() if k == "numeric"]
    power = Pipeline([
        ("coerce", SchemaCoercer(columns={c: "numeric" for c in numeric})),
        ("columns", ColumnTransformer([("numeric", Pipeline([("impute", SimpleImputer()),
                                                             ("power", PowerTransformer("box-cox"))]),
                                        numeric)])),
        ("model", LogisticRegression()),
    ]).fit(frame[numeric].fillna(1.0).clip(lower=1.0), targets["binary"])
    neighbours = Pipeline([*fitted("linear", "binary", data).steps[:2], ("model", KNeighborsClassifier())])
    neighbours.steps[-1][1].fit(Pipeline(neighbours.steps[:2]).transform(frame), targets["binary"])

    with caplog.at_level(logging.INFO, logger="looml.serve"):
        assert compile_scorer(power, {c: "numeric" for c in numeric}, None, None,
                              PipelineScorer(power, {c: "numeric" for c in numeric})) is None
        assert compile_scorer(neighbours, FEATURES, schema, profile,
                              PipelineScorer(neighbours, FEATURES)) is None
    assert "PowerTransformer with method='box-cox'" in caplog.text
    assert "no compiled form of KNeighborsClassifier" in caplog.text


def test_a_scorer_that_disagrees_with_the_reference_is_not_used(data: tuple[Any, ...],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    frame, targets, schema, profile = data
    pipeline = fitted("linear", "binary", data)
    other = Pipeline([*build_preprocessor(FEATURES, PreprocessingSpec()).steps,
                      ("model", LogisticRegression(C=0.01))])
    other.fit(frame, targets["binary"])

    with caplog.at_level(logging.WARNING, logger="looml.serve"):
        assert compile_scorer(pipeline, FEATURES, schema, profile, PipelineScorer(other, FEATURES)) is None
    assert "compiled scorer compiled:linear disagrees with the pipeline on the 'typed' validation batch" \
        in caplog.text


def test_the_pipeline_scores_every_validation_batch(data: tuple[Any, ...]) -> None:
    # Both sides failing a batch counts as agreeing, so a batch the pipeline cannot score checks
    # nothing: the numpy-arrays batch once had no categorical or text columns at all.
    from looml.serve.compiled.checks import validation_batches

    _, _, schema, profile = data
    reference = PipelineScorer(fitted("linear", "binary", data), FEATURES)
    batches = validation_batches(FEATURES, schema, profile)
    for label, batch in batches:
        if label != "absent columns":
            assert set(batch) == set(FEATURES) and all(v is not None for v in batch.values()), label
        assert len(reference.predict(batch).labels) == len(next(iter(batch.values()))), label
    arrays = dict(batches)["numpy arrays"]
    assert {name: values.dtype.kind for name, values in arrays.items()} == \
        {"age": "f", "income": "f", "visits": "f", "plan": "U", "region": "U", "joined": "M"}


def test_load_model_serves_a_registered_model_through_the_compiled_scorer(
        make_project: Callable[..., Path]) -> None:
    frame, targets = training_frame(rows=240, seed=3)
    project = make_project(pl.from_pandas(frame.assign(label=targets["binary"])),
                           extra="split:\n  folds: 2\n")
    result = looml.run(project)

    served = load_model(result.tracking_uri, result.model_name)

    assert served.scorer.name == "compiled:linear"
    batch = messy_batch(50, seed=21)
    got, want = served.predict(batch), PipelineScorer(served.pipeline, served.features).predict(batch)
    assert list(got.labels) == list(want.labels)
    np.testing.assert_allclose(got.proba, want.proba, rtol=0, atol=TOLERANCE)


def test_a_version_checked_once_on_a_machine_is_not_checked_again(
        make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import looml.serve.compiled as compiled
    from looml.serve.compiled import remembered

    frame, targets = training_frame(rows=240, seed=5)
    result = looml.run(make_project(pl.from_pandas(frame.assign(label=targets["binary"])),
                                    extra="split:\n  folds: 2\n"))
    checks = []
    real = compiled.validation_batches
    monkeypatch.setattr(compiled, "validation_batches", lambda *a: checks.append(1) or real(*a))

    first = load_model(result.tracking_uri, result.model_name)
    again = load_model(result.tracking_uri, result.model_name)
    assert (first.scorer.name, again.scorer.name, len(checks)) == ("compiled:linear", "compiled:linear", 1)
    batch = messy_batch(40, seed=2)
    assert_same(again.scorer, PipelineScorer(again.pipeline, again.features), batch)

    monkeypatch.setattr(remembered, "_environment", lambda: {"scikit-learn": "another"})
    assert load_model(result.tracking_uri, result.model_name).scorer.name == "compiled:linear"
    assert len(checks) == 2  # another library version: checked anew


def test_a_remembered_verdict_is_whole_or_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from looml.serve.compiled import remembered

    monkeypatch.setenv("LOOML_CACHE_DIR", str(tmp_path / "cache"))
    key = remembered.verdict_key("store m 1 run", {"x": "numeric"}, None, {"columns": []})
    assert remembered.recall(key) is None
    remembered.remember(key, "compiled:linear disagrees on row 3")
    assert remembered.recall(key) == (False, "compiled:linear disagrees on row 3")
    assert remembered.verdict_key("store m 2 run", {"x": "numeric"}, None, {"columns": []}) != key
    (tmp_path / "cache" / "compiled-checks" / f"{key}.json").write_text("{\"matches\": tru")
    assert remembered.recall(key) is None  # a torn file is no verdict: checked again
    monkeypatch.setenv("LOOML_CACHE_DIR", "/proc/looml-cannot-write-here")
    remembered.remember(key, None)  # an unwritable cache costs only the check
    assert remembered.recall(key) is None
