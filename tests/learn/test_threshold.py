"""The decision threshold (`evaluation.threshold`): the best cut of the out-of-fold predictions
for the stated objective or cost matrix, and every bad setting named before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
)
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.naive_bayes import GaussianNB

import looml
from looml.errors import SpecError
from looml.learn.decision import DecisionModel, choose_threshold
from looml.spec import Spec

RULES = [
    {"objective": "f1"}, {"objective": "balanced_accuracy"}, {"objective": "accuracy"}, {"objective": "mcc"},
    {"objective": "precision", "min_recall": 0.7}, {"objective": "recall", "min_precision": 0.6},
    {"costs": [[0, 1], [5, 0]]}, {"costs": [[0, 3], [1, 0]]},
]


def brute_force(y: np.ndarray, p: np.ndarray, w: np.ndarray | None, rule: dict) -> float:
    """The objective's best value over every cut `p >= t`, t each distinct value, with scikit-learn."""
    best = -np.inf
    for t in np.unique(p):
        predicted = (p >= t).astype(int)
        best = max(best, _value(y, predicted, w, rule))
    return best


def _value(y: np.ndarray, predicted: np.ndarray, w: np.ndarray | None, rule: dict) -> float:
    if "costs" in rule:
        return -float((confusion_matrix(y, predicted, labels=[0, 1], sample_weight=w) * rule["costs"]).sum())
    name = rule["objective"]
    if name == "precision":
        ok = recall_score(y, predicted, sample_weight=w) >= rule["min_recall"]
        return precision_score(y, predicted, sample_weight=w, zero_division=0) if ok else -np.inf
    if name == "recall":
        ok = precision_score(y, predicted, sample_weight=w, zero_division=0) >= rule["min_precision"]
        return recall_score(y, predicted, sample_weight=w) if ok else -np.inf
    metric = {"f1": f1_score, "accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score,
              "mcc": matthews_corrcoef}[name]
    return float(metric(y, predicted, sample_weight=w))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.get("objective") or str(r["costs"]))
@pytest.mark.parametrize("weighted", [False, True])
def test_the_threshold_is_the_best_cut_a_brute_force_sweep_finds(rule: dict, weighted: bool) -> None:
    rng = np.random.default_rng(7)
    y = (rng.random(400) < 0.3).astype(int)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 400), 0, 1).round(2)  # rounded: many ties
    w = rng.uniform(0.5, 2.0, 400) if weighted else None

    threshold, value = choose_threshold(y == 1, p, sample_weight=w, **rule)

    best = brute_force(y, p, w, rule)
    np.testing.assert_allclose(value, best, rtol=1e-12)
    np.testing.assert_allclose(_value(y, (p >= threshold).astype(int), w, rule), best, rtol=1e-12)


def test_the_model_s_threshold_is_the_best_cut_of_its_out_of_fold_predictions() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    y = np.where(X[:, 0] + rng.normal(size=300) > 0.8, "churn", "stay")

    model = DecisionModel(GaussianNB(), objective="f1", pos_label="churn", folds=4, random_state=5).fit(X, y)

    folds = StratifiedKFold(4, shuffle=True, random_state=5)
    oof = cross_val_predict(GaussianNB(), X, y, cv=folds, method="predict_proba")[:, 0]  # churn first
    assert model.threshold_score_ == pytest.approx(brute_force((y == "churn").astype(int), oof, None,
                                                               {"objective": "f1"}), rel=1e-12)
    proba = model.predict_proba(X)[:, 0]
    assert (model.predict(X) == np.where(proba >= model.threshold_, "churn", "stay")).all()
    assert model.threshold_ < 0.5  # a rarer positive class: f1 wants a lower cut than argmax


def test_a_floor_no_cut_reaches_leaves_the_most_probable_class() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 2))
    y = (rng.random(200) < 0.5).astype(int)  # noise: no cut is 99% precise

    model = DecisionModel(GaussianNB(), objective="recall", min_precision=0.99, random_state=0).fit(X, y)

    assert model.threshold_ is None and model.threshold_score_ is None
    assert (model.predict(X) == model.predict_proba(X).argmax(axis=1)).all()


@pytest.mark.parametrize(("threshold", "fragment"), [
    ({"optimize": "f_1"}, r"evaluation\.threshold\.optimize \(line \d+\): unknown threshold objective "
                          r"\(got 'f_1'\)\n.*fix: did you mean 'f1'\?"),
    ({"optimize": "precision"}, "precision alone is maximised by predicting almost nothing"),
    ({"optimize": "f1", "min_recall": 0.8}, r"min_recall goes with optimize: precision"),
    ({"costs": [[0, 1, 2], [5, 0, 1]]}, r"a binary cost matrix is 2 x 2; got 2 x 3"),
    ({"costs": [[0, -1], [5, 0]]}, "costs cannot be negative"),
    ({"costs": [[1, 0], [0, 1]]}, "no error costs more than a right answer"),
    ({"optimize": "f1", "costs": [[0, 1], [5, 0]]}, "give either optimize or costs"),
])
def test_a_bad_threshold_setting_is_a_spec_error(tmp_path: Path, threshold: dict, fragment: str) -> None:
    import yaml

    spec = tmp_path / "looml.yaml"
    spec.write_text(yaml.safe_dump({"data": {"source": "d.csv", "target": "y"},
                                    "registry": {"model_name": "m"}, "evaluation": {"threshold": threshold}}))
    with pytest.raises(SpecError, match=fragment):
        looml.run(spec)


def test_threshold_and_calibration_that_do_not_fit_the_task_are_named_together(
        make_project, classification_frame) -> None:
    rng = np.random.default_rng(0)
    regression = pl.DataFrame({"x": rng.normal(size=80), "label": rng.normal(size=80)})
    spec = make_project(regression, extra="evaluation:\n  calibration: auto\n  threshold: {optimize: f1}\n")

    with pytest.raises(SpecError) as exc:
        looml.check(spec)

    message = str(exc.value)
    assert "evaluation.calibration: calibration applies to class probabilities; this task is regression" \
        in message
    assert "evaluation.threshold: a decision threshold applies to binary classification; this task is " \
           "regression" in message


def test_a_threshold_on_three_classes_is_refused_before_training(make_project) -> None:
    rng = np.random.default_rng(1)
    frame = pl.DataFrame({"x": rng.normal(size=90), "label": np.repeat(["a", "b", "c"], 30)})
    spec = make_project(frame, extra="evaluation:\n  threshold: {costs: [[0, 1], [5, 0]]}\n")

    with pytest.raises(SpecError, match=r"this task is classification with 3 classes .*\n.*fix: remove "
                                        r"evaluation\.threshold \(several classes are predicted as the most "
                                        r"probable\)"):
        looml.check(spec)


def test_the_default_is_no_calibration_and_no_threshold() -> None:
    spec = Spec.model_validate({"data": {"source": "d.csv", "target": "y"}, "registry": {"model_name": "m"}})
    assert spec.evaluation.calibration == "none" and spec.evaluation.threshold is None


def test_a_chosen_model_without_probabilities_cannot_be_thresholded() -> None:
    import pandas as pd
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    from looml.learn.train import decide_on

    X, y = pd.DataFrame({"a": np.arange(40.0)}), np.array([0, 1] * 20)
    template = Pipeline([("id", "passthrough"), ("model", LinearSVC())])
    spec = Spec.model_validate({"data": {"source": "d.csv", "target": "y"}, "registry": {"model_name": "m"},
                                "evaluation": {"threshold": {"optimize": "f1"}}})

    with pytest.raises(SpecError, match=r"evaluation\.threshold: the chosen model gives no class "
                                        r"probabilities \(predict_proba\) to calibrate or threshold "
                                        r"\(got 'LinearSVC'\)"):
        decide_on(template.fit(X, y), template, X, y, spec, "classification", 3)
