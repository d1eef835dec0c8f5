"""Per-row contributions by user column (`learn.explain`) and the logged explanations
(`learn.explanations`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.pipeline import Pipeline

from looml.learn.explain import NoExplanation, explainer_for
from looml.learn.explanations import summarise_explanations
from looml.learn.features import build_preprocessor
from looml.learn.zoo import make_estimator
from looml.spec import PreprocessingSpec

FEATURES = {"tenure": "numeric", "plan": "categorical", "plan_x": "categorical", "joined": "datetime"}


def table(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"tenure": rng.integers(0, 72, rows).astype(float),
                      "plan": rng.choice(["basic", "pro", "team"], rows),
                      "plan_x": rng.choice(["a", "b"], rows),  # a column whose name starts like another's
                      "joined": pd.to_datetime(rng.integers(1_500_000_000, 1_700_000_000, rows), unit="s")
                      .strftime("%Y-%m-%d")})
    X.loc[::17, "tenure"] = np.nan
    score = 0.05 * X["tenure"].fillna(30) + (X["plan"] == "basic") + rng.normal(size=rows)
    return X, np.where(score > 2.5, "yes", "no"), score.to_numpy() * 10


def fitted(model: str, task: str, preprocessing: PreprocessingSpec | None = None) -> Pipeline:
    X, labels, values = table()
    pre = build_preprocessor(FEATURES, preprocessing or PreprocessingSpec(), task=task)
    pipeline = Pipeline([*pre.steps, ("model", make_estimator(model, task, {"n_estimators": 50}
                                                              if model == "lightgbm" else {}, 0, 1))])
    return pipeline.fit(X, labels if task == "classification" else values)


def raw_output(pipeline: Pipeline, X: pd.DataFrame) -> np.ndarray:
    """The model step's margin on the pipeline's own encoded rows (positive class for binary)."""
    model, Z = pipeline.steps[-1][1], pipeline[:-1].transform(X)
    if hasattr(model, "booster_"):
        out = model.predict(Z, raw_score=True)
    elif hasattr(model, "decision_function"):
        out = model.decision_function(Z)
    elif hasattr(model, "predict_proba"):
        out = model.predict_proba(Z)[:, 1]
    else:
        out = model.predict(Z)
    return np.asarray(out, dtype=np.float64).reshape(len(X), -1)


@pytest.mark.parametrize(("model", "task"), [("lightgbm", "classification"), ("lightgbm", "regression"),
                                             ("random_forest", "classification"), ("xgboost", "regression"),
                                             ("linear", "classification"), ("linear", "regression")])
def test_contributions_plus_base_are_the_model_s_raw_output(model: str, task: str) -> None:
    pipeline = fitted(model, task)
    X = table(40, seed=1)[0]

    found = explainer_for(pipeline).explain(X)

    assert found.values.shape == (40, 1, 4)
    np.testing.assert_allclose(found.totals(), raw_output(pipeline, X), rtol=1e-5, atol=1e-5)


def test_contributions_name_the_user_s_columns_not_the_encoded_ones() -> None:
    explainer = explainer_for(fitted("lightgbm", "classification"))

    assert explainer.columns == list(FEATURES)
    assert len(explainer.map.features) > len(FEATURES)  # 3 + 2 one-hot values and 5 date parts
    assert explainer.map.matrix.sum(axis=1) == pytest.approx(np.ones(len(explainer.map.features)))
    one_hot = [f for f, row in zip(explainer.map.features, explainer.map.matrix, strict=True)
               if row[list(FEATURES).index("plan")] == 1]
    assert one_hot == ["categorical__plan_basic", "categorical__plan_pro", "categorical__plan_team"]


def test_shap_values_are_shap_s_own_on_the_transformed_rows_summed_by_column() -> None:
    pipeline = fitted("lightgbm", "classification")
    X = table(40, seed=2)[0]
    explainer = explainer_for(pipeline)
    Z = pipeline[:-1].transform(X)

    theirs = np.asarray(shap.TreeExplainer(pipeline.steps[-1][1]).shap_values(Z)).reshape(len(X), -1)

    np.testing.assert_allclose(explainer.explain(X).values[:, 0, :], theirs @ explainer.map.matrix,
                               rtol=1e-9, atol=1e-12)


def test_a_soft_vote_adds_up_to_its_probability_and_a_vote_of_regressors_to_its_value() -> None:
    X, labels, values = table()
    members = [(m, fitted(m, "classification")) for m in ("lightgbm", "linear", "random_forest")]
    vote = Pipeline([("coerce", members[0][1].steps[0][1]),
                     ("model", VotingClassifier(members, voting="soft", weights=[2, 1, 1]))]).fit(X, labels)
    regressors = [(m, fitted(m, "regression")) for m in ("lightgbm", "linear")]
    average = Pipeline([("coerce", regressors[0][1].steps[0][1]),
                        ("model", VotingRegressor(regressors))]).fit(X, values)
    rows = table(30, seed=3)[0]

    probability = explainer_for(vote).explain(rows)
    value = explainer_for(average).explain(rows)

    assert probability.outputs == ["probability of 'yes'"]
    np.testing.assert_allclose(probability.totals()[:, 0], vote.predict_proba(rows)[:, 1], atol=1e-9)
    np.testing.assert_allclose(value.totals()[:, 0], average.predict(rows), rtol=1e-9)


def test_a_calibrated_model_with_a_threshold_is_explained_by_its_inner_model_s_margin() -> None:
    from looml.learn.decision import DecisionModel

    X, labels, _ = table()
    pre = build_preprocessor(FEATURES, PreprocessingSpec(), task="classification")
    inner = make_estimator("lightgbm", "classification", {"n_estimators": 50}, 0, 1)
    pipeline = Pipeline([*pre.steps, ("model", DecisionModel(inner, calibration="sigmoid", objective="f1"))])
    pipeline.fit(X, labels)
    rows = table(30, seed=5)[0]

    found = explainer_for(pipeline).explain(rows)

    margin = pipeline.steps[-1][1].estimator_.predict(pipeline[:-1].transform(rows), raw_score=True)
    np.testing.assert_allclose(found.totals()[:, 0], margin, atol=1e-9)
    assert found.outputs == ["log-odds of 'yes' (before calibration)"]


def test_linear_coefficients_are_mapped_back_to_their_columns() -> None:
    # No scaling: a numeric column's contribution is its coefficient times its value.
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=200), "colour": rng.choice(["red", "blue"], 200)})
    y = 3.0 * X["x"] + np.where(X["colour"] == "red", 5.0, 0.0)
    unscaled = PreprocessingSpec.model_validate({"numeric": {"scale": "none"}})
    pre = build_preprocessor({"x": "numeric", "colour": "categorical"}, unscaled, task="regression")
    ridge = make_estimator("linear", "regression", {"alpha": 1e-9}, 0, 1)
    pipeline = Pipeline([*pre.steps, ("model", ridge)])
    pipeline.fit(X, y)
    rows = pd.DataFrame({"x": [1.0, 2.0], "colour": ["red", "blue"]})

    found = explainer_for(pipeline).explain(rows)
    logged = summarise_explanations(pipeline, X, {"x": "numeric", "colour": "categorical"}, {"x": 0.6}, 0)

    assert found.values[:, 0, 0] == pytest.approx([3.0, 6.0])
    assert found.values[0, 0, 1] - found.values[1, 0, 1] == pytest.approx(5.0)
    coefficients = logged["coefficients"]
    assert [p["coefficient"] for p in coefficients["x"]] == pytest.approx([3.0])
    red, blue = ({p["feature"]: p["coefficient"] for p in coefficients["colour"]}[f"categorical__colour_{c}"]
                 for c in ("red", "blue"))
    assert red - blue == pytest.approx(5.0)
    assert logged["method"] == "linear" and logged["permutation_importance"] == {"x": 0.6}
    assert set(logged["contributions"]["mean_abs"]) == {"x", "colour"}


def test_the_logged_summary_keeps_aggregates_not_rows() -> None:
    pipeline = fitted("lightgbm", "classification")
    X = table(300, seed=4)[0]

    logged = summarise_explanations(pipeline, X, FEATURES, {}, 0)

    shap_part = logged["shap"]
    assert logged["method"] == "tree_shap" and shap_part["rows"] == 300
    assert set(shap_part["mean_abs"]) == set(FEATURES)
    assert set(shap_part["dependence"]) <= {"tenure", "plan", "plan_x"}  # not the date: no bins of it
    tenure = shap_part["dependence"]["tenure"]["points"]
    assert sum(p["rows"] for p in tenure) == 300 and len(tenure) <= 11  # 10 bins and the missing rows


def test_a_model_without_contributions_says_why() -> None:
    with pytest.raises(NoExplanation, match=r"a KNeighborsClassifier model has no per-row contributions: "
                                            r"only tree models .* and linear models have them"):
        explainer_for(fitted("knn", "classification"))

    logged = summarise_explanations(fitted("knn", "classification"), table(50)[0], FEATURES, {"plan": 1.0}, 0)
    assert logged["method"] is None and "KNeighborsClassifier" in logged["reason"]
    assert logged["permutation_importance"] == {"plan": 1.0}
