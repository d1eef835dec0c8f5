"""Per-row contributions by user column (`learn.explain`) and the logged explanations
(`learn.explanations`)."""

from __future__ import annotations

import time

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


def forest(trees: int, rows: int = 2000) -> tuple[Pipeline, pd.DataFrame]:
    X, labels, _ = table(rows, seed=5)
    pre = build_preprocessor(FEATURES, PreprocessingSpec(), task="classification")
    estimator = make_estimator("random_forest", "classification", {"n_estimators": trees}, 0, 2)
    return Pipeline([*pre.steps, ("model", estimator)]).fit(X, labels), X


def test_the_cost_of_treeshap_is_read_from_the_trees_and_grows_with_them() -> None:
    from looml.learn.treecost import SECONDS_PER_STEP, shap_seconds

    small, big = forest(10, 500)[0].steps[-1][1], forest(40, 2000)[0].steps[-1][1]

    def leaf_depths(tree: object, node: int = 0, depth: int = 0) -> list[int]:  # the tree walked
        left, right = tree.children_left[node], tree.children_right[node]
        if left < 0:
            return [depth]
        return leaf_depths(tree, left, depth + 1) + leaf_depths(tree, right, depth + 1)

    steps = sum((d + 1) ** 2 for t in big.estimators_ for d in leaf_depths(t.tree_))

    assert shap_seconds(big) == pytest.approx(steps * SECONDS_PER_STEP)
    assert shap_seconds(big) > 4 * shap_seconds(small) > 0
    assert explainer_for(forest(40, 2000)[0]).seconds_per_row == pytest.approx(shap_seconds(big))


def test_a_forest_too_slow_to_explain_is_explained_by_its_first_trees_close_to_all_of_them() -> None:
    pipeline, X = forest(120)
    full = explainer_for(pipeline)
    cut = explainer_for(pipeline, max_seconds_per_row=full.seconds_per_row / 4)

    kept = int(cut.note.split("first ")[1].split(" of")[0])
    assert kept in (20, 30) and "of 120 trees" in cut.note and full.note == ""  # whole tens of trees
    assert cut.seconds_per_row <= full.seconds_per_row / 4
    rows = X.iloc[:200]
    exact, estimate = full.explain(rows), cut.explain(rows)
    # the mean |SHAP| per column, what the report shows, within 15 % of the whole forest's
    np.testing.assert_allclose(np.abs(estimate.values).mean(axis=(0, 1)),
                               np.abs(exact.values).mean(axis=(0, 1)), rtol=0.15)
    # still exact in sum for the trees it explains
    cut_forest = pipeline.steps[-1][1].estimators_[:kept]
    Z = pipeline[:-1].transform(rows)
    proba = np.mean([t.predict_proba(Z)[:, 1] for t in cut_forest], axis=0)
    np.testing.assert_allclose(estimate.totals()[:, 0], proba, atol=1e-6)


def test_the_logged_explanations_of_a_slow_model_fit_their_time_and_say_how(monkeypatch: pytest.MonkeyPatch
                                                                            ) -> None:
    import looml.learn.explanations as explanations

    pipeline, X = forest(60)
    seconds = explainer_for(pipeline).seconds_per_row
    monkeypatch.setattr(explanations, "_scale", lambda *_: 1.0)  # the plan from the trees' estimate alone
    monkeypatch.setattr(explanations, "_SECONDS", seconds * 100)  # 100 rows of the whole forest

    holdout = X.iloc[:600]
    logged = summarise_explanations(pipeline, holdout, FEATURES, {}, 0)

    assert logged["shap"]["rows"] == 200  # no fewer than _MIN_ROWS before the trees are cut
    assert "of 60 trees" in logged["note"] and "200 of the 600 holdout rows" in logged["note"]

    monkeypatch.setattr(explanations, "_SECONDS", seconds * 1500)  # time enough: every row, every tree
    logged = summarise_explanations(pipeline, holdout, FEATURES, {}, 0)
    assert logged["shap"]["rows"] == 600 and "note" not in logged


def test_an_estimate_below_the_real_cost_is_corrected_by_timing_a_few_rows(monkeypatch: pytest.MonkeyPatch
                                                                               ) -> None:
    import looml.learn.explanations as explanations
    import looml.learn.treecost as treecost

    pipeline, X = forest(60)
    started = time.perf_counter()
    explainer_for(pipeline).explain(X.iloc[:100])
    hundred_rows = time.perf_counter() - started
    monkeypatch.setattr(explanations, "_SECONDS", hundred_rows * 8)  # about 800 rows' worth, measured here
    monkeypatch.setattr(treecost, "SECONDS_PER_STEP", hundred_rows / 100 / 3  # an estimate 3x low
                        / (explainer_for(pipeline).seconds_per_row / treecost.SECONDS_PER_STEP))

    wrong = explainer_for(pipeline).seconds_per_row * 2000
    logged = summarise_explanations(pipeline, X, FEATURES, {}, 0)

    assert wrong < explanations._SECONDS  # believed, the estimate would explain all 2,000 rows
    assert logged["shap"]["rows"] in explanations._ROW_STEPS and logged["shap"]["rows"] < 2000
    assert f"{logged['shap']['rows']:,} of the 2,000 holdout rows" in logged["note"]


def test_a_vote_shares_the_time_among_its_members() -> None:
    pipeline, X = forest(80)
    _, labels, _ = table(2000, seed=5)
    members = [(f"m{i}", Pipeline([*pipeline.steps[:-1], ("model", make_estimator(
        "random_forest", "classification", {"n_estimators": 80}, i, 2))])) for i in range(2)]
    vote = Pipeline([pipeline.steps[0], ("model", VotingClassifier(members, voting="soft"))]).fit(X, labels)
    whole = explainer_for(vote).seconds_per_row

    cut = explainer_for(vote, max_seconds_per_row=whole / 4)

    assert cut.seconds_per_row <= whole / 4 * 1.2
    assert cut.note.count("of 80 trees") == 2  # each member cut to its share
