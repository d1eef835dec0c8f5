"""The model zoo: every family builds, fits and predicts for both tasks; bad candidates are
spec errors naming the field, all at once, before any work."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression

from looml.errors import SpecError
from looml.learn.spaces import check_search, default_space, portfolio
from looml.learn.zoo import make_estimator
from looml.spec import MODEL_NAMES, CandidateSpec, ModelsSpec, load_spec

MINIMAL = "data:\n  source: data.csv\n  target: y\nregistry:\n  model_name: m\n"


def spec_from(tmp_path: Path, text: str):
    path = tmp_path / "looml.yaml"
    path.write_text(MINIMAL + text, encoding="utf-8")
    return load_spec(path)


@pytest.mark.parametrize("family", MODEL_NAMES)
def test_every_family_fits_and_predicts_both_tasks(family: str) -> None:
    X, y = make_classification(n_samples=120, n_features=5, random_state=0)
    labels = np.array(["no", "yes"])[y]  # string labels: XGBoost's own classifier wants 0..k-1
    small = {"catboost": {"iterations": 20}, "mlp": {"max_iter": 50}}.get(family, {})
    classifier = make_estimator(CandidateSpec(name=family, params=small), "classification", {}, 0, 1)
    classifier.fit(X, labels)
    assert set(classifier.predict(X)) <= {"no", "yes"}
    assert classifier.predict_proba(X).shape == (120, 2)
    assert list(classifier.classes_) == ["no", "yes"]

    Xr, yr = make_regression(n_samples=120, n_features=5, random_state=0)
    regressor = make_estimator(CandidateSpec(name=family, params=small), "regression", {}, 0, 1)
    assert regressor.fit(Xr, yr).predict(Xr).shape == (120,)


@pytest.mark.parametrize("family", MODEL_NAMES)
def test_default_space_and_portfolio_name_real_parameters(family: str) -> None:
    for task in ("classification", "regression"):
        make_estimator(family, task, dict.fromkeys(default_space(family, task)), 0, 1)  # raises if unknown
        assert portfolio(family, task), f"{family} has no warm-start configuration"
        for config in portfolio(family, task):
            assert set(config) <= set(default_space(family, task))


def test_seed_and_threads_are_set_explicitly() -> None:
    model = make_estimator("lightgbm", "classification", {}, seed=7, n_jobs=3)
    assert (model.random_state, model.n_jobs) == (7, 3)
    assert make_estimator("catboost", "regression", {}, seed=7, n_jobs=2).get_params()["thread_count"] == 2
    assert make_estimator("logistic", "classification", {}, 0, 1).max_iter == 2000  # alias of linear


def test_an_estimator_by_import_path_with_its_own_space(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, "models:\n  candidates:\n    - name: my_svc\n"
                               "      estimator: 'sklearn.svm:SVC'\n      params: {probability: true}\n"
                               "      space: {C: {low: 0.01, high: 100, log: true}}\n")
    check_search(spec)
    model = make_estimator(spec.models.candidates[0], "classification", {"C": 2.0}, 0, 1)
    assert type(model).__name__ == "SVC" and model.C == 2.0 and model.random_state == 0


def test_bad_import_paths_and_params_are_reported_together(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, """\
models:
  candidates:
    - {name: mine, estimator: 'sklearn.svm:SVQ'}
    - {name: theirs, estimator: 'no_such_package.models:Model'}
    - {name: path, estimator: 'os:getcwd'}
    - {name: xgboost, params: {max_dept: 3}, space: {learning_rat: {low: 0.01, high: 0.3}}}
""")
    with pytest.raises(SpecError) as exc:
        check_search(spec)
    text = str(exc.value)
    assert "4 problems" not in text and len(exc.value.problems) == 5, text
    assert "models.candidates[0].estimator: 'sklearn.svm' has no 'SVQ'" in text
    assert "models.candidates[1].estimator: cannot import 'no_such_package.models'" in text
    assert "models.candidates[2].estimator: not a scikit-learn estimator" in text
    assert "models.candidates[3].params.max_dept: not a parameter of XGBLabelClassifier" in text
    assert "did you mean 'max_depth'?" in text
    assert "models.candidates[3].space.learning_rat: not a parameter" in text
    assert "did you mean 'learning_rate'?" in text


def test_a_classifier_for_a_regression_task_is_refused_when_built() -> None:
    candidate = CandidateSpec(name="mine", estimator="sklearn.linear_model:LogisticRegression")
    with pytest.raises(SpecError, match=r"models\.candidates\.estimator: LogisticRegression is a classifier, "
                                        r"and the task is regression"):
        make_estimator(candidate, "regression", {}, 0, 1)


def test_spec_refuses_bad_names_and_spaces_all_at_once(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as exc:
        spec_from(tmp_path, """\
models:
  candidates:
    - lightgbn
    - name: xgboost
      space:
        learning_rate: {low: 0.3, high: 0.01}
        reg_lambda: {low: 0, high: 1, log: true}
        booster: {choices: []}
        max_depth: {low: 3}
    - {name: linear, estimator: 'sklearn.linear_model:Ridge'}
""")
    text = str(exc.value)
    assert "models.candidates.0.name (line 8): unknown model (got 'lightgbn')" in text
    assert "did you mean 'lightgbm'?" in text
    assert "candidates.1.space.learning_rate.low (line 11): low (0.3) is greater than high (0.01)" in text
    assert "space.reg_lambda.log (line 12): a log scale needs low > 0; low is 0" in text
    assert "space.booster.choices (line 13): empty choices" in text
    assert "space.max_depth (line 14): a range needs both `low` and `high`" in text
    assert "models.candidates.2.name (line 15): a zoo model's name cannot name your own estimator" in text
    assert len(exc.value.problems) == 6


def test_grid_search_needs_finite_ranges(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, "models:\n  candidates:\n    - name: linear\n      space:\n"
                               "        C: {low: 0.01, high: 10}\n"
                               "        max_iter: {low: 100, high: 300, step: 100}\n"
                               "tuning: {method: grid}\n")
    with pytest.raises(SpecError, match=r"models\.candidates\[0\]\.space\.C: grid search needs a finite "
                                        r"set of values; this is a continuous range 0\.01\.\.10\n\s+fix: "
                                        r"add `step:`, write integer bounds, or give `choices:`") as exc:
        check_search(spec)
    assert len(exc.value.problems) == 1


def test_searched_preprocessing_paths_and_values_are_checked(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, "tuning:\n  space:\n    preprocessing.numeric.scale: [standard, robus]\n"
                               "    preprocessing.numerc.impute: [mean]\n")
    with pytest.raises(SpecError) as exc:
        check_search(spec)
    text = str(exc.value)
    assert "tuning.space.preprocessing.numeric.scale: not a valid value" in text and "'robus'" in text
    assert "tuning.space.preprocessing.numerc.impute: no such setting: 'numerc'" in text
    assert "did you mean 'numeric'?" in text
    with pytest.raises(SpecError, match=r"tuning\.space\.numeric\.scale .*starts with 'preprocessing\.'"):
        spec_from(tmp_path, "tuning:\n  space:\n    numeric.scale: [standard]\n")


def test_default_candidates_and_search(tmp_path: Path) -> None:
    assert [c.name for c in ModelsSpec().candidates] == [
        "lightgbm", "linear", "catboost", "xgboost", "mlp", "extra_trees", "random_forest",
        "hist_gradient_boosting"]
    assert not ModelsSpec().listed and ModelsSpec.model_validate({"candidates": ["linear"]}).listed
    plain = spec_from(tmp_path, "").tuning
    assert (plain.resolved_method, plain.resolved_ensemble) == ("none", "voting")
    searched = spec_from(tmp_path, "tuning: {time_budget: 60}\n").tuning
    assert (searched.resolved_method, searched.resolved_ensemble) == ("bayesian", "voting")


def test_a_missing_optional_extra_is_a_spec_error_naming_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "catboost", None)  # as on a machine without looml[catboost]
    with pytest.raises(SpecError) as caught:
        make_estimator("catboost", "classification", {}, seed=0, n_jobs=1)
    assert "pip install 'looml[catboost]'" in caught.value.render()


def test_a_default_candidate_without_its_extra_is_skipped_not_an_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.datasets import load_breast_cancer

    from looml.learn.train import train
    from looml.spec import Spec

    monkeypatch.setitem(sys.modules, "catboost", None)  # as on a machine without looml[catboost]
    frame = load_breast_cancer(as_frame=True).frame.sample(150, random_state=0)
    X, y = frame.drop(columns="target").iloc[:, :5], frame["target"].to_numpy()
    defaults = Spec.model_validate({"data": {"source": "d.csv", "target": "y"},
                                    "registry": {"model_name": "m"}, "split": {"folds": 2}})
    assert "catboost" in [c.name for c in defaults.models.candidates]
    trained = train(X, y, dict.fromkeys(X.columns, "numeric"), defaults, "classification")
    skipped = next(r for r in trained.leaderboard if r["name"] == "catboost")
    assert skipped["state"] == "skipped" and "pip install 'looml[catboost]'" in skipped["error"]
    listed = defaults.model_copy(update={"models": ModelsSpec.model_validate({"candidates": ["catboost"]})})
    with pytest.raises(SpecError, match=r"looml\[catboost\]"):
        train(X, y, dict.fromkeys(X.columns, "numeric"), listed, "classification")
