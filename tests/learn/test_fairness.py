"""Fairness: per-group numbers and disparities equal fairlearn's own; small groups are shown but
left out of the disparities; regression and multiclass get their own measures."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from looml.learn.fairness import fairness

CLASSES = np.array(["no", "yes"])


def _biased(n: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group F is selected less often than M and X, whatever the truth."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M", "X"], n, p=[0.45, 0.45, 0.10])
    y = rng.random(n) < 0.4
    pred = np.where(sex == "F", rng.random(n) < 0.2, (rng.random(n) < 0.7) & y | (rng.random(n) < 0.2))
    return sex, y, pred


def test_groups_and_disparities_equal_fairlearn() -> None:
    sex, y, pred = _biased()
    found = fairness("classification", CLASSES, CLASSES[y.astype(int)], CLASSES[pred.astype(int)],
                     {"sex": sex}, min_rows=30)
    frame = MetricFrame(metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                                 "false_positive_rate": false_positive_rate},
                        y_true=y.astype(int), y_pred=pred.astype(int), sensitive_features=sex)
    for group in found["columns"]["sex"]:
        for metric in ("selection_rate", "true_positive_rate", "false_positive_rate"):
            assert group["metrics"][metric] == pytest.approx(frame.by_group.loc[group["group"], metric])
        assert group["rows"] == int(np.sum(sex == group["group"]))
    measures = found["disparities"]["sex"]
    for name, own in [("demographic_parity_difference", demographic_parity_difference),
                      ("demographic_parity_ratio", demographic_parity_ratio),
                      ("equalized_odds_difference", equalized_odds_difference),
                      ("equalized_odds_ratio", equalized_odds_ratio)]:
        assert measures[name]["value"] == pytest.approx(own(y.astype(int), pred.astype(int),
                                                            sensitive_features=sex)), name
    assert "for 'F'" in measures["demographic_parity_difference"]["detail"]
    assert found["positive"] == "yes"


def test_small_groups_are_shown_and_left_out_of_the_disparities() -> None:
    sex, y, pred = _biased(n=400)
    sex = sex.astype(object)
    sex[:8] = "tiny"
    pred = pred.copy()
    pred[:8] = True  # the tiny group is always selected: it would decide the gap
    labels = CLASSES[y.astype(int)], CLASSES[pred.astype(int)]
    found = fairness("classification", CLASSES, *labels, {"sex": sex}, min_rows=30)
    tiny = next(g for g in found["columns"]["sex"] if g["group"] == "tiny")
    assert tiny["small"] and tiny["rows"] == 8
    kept = ~np.isin(sex, ["tiny"])
    expected = demographic_parity_difference(y[kept].astype(int), pred[kept].astype(int),
                                             sensitive_features=sex[kept])
    assert found["disparities"]["sex"]["demographic_parity_difference"]["value"] == pytest.approx(expected)


def test_the_positive_class_and_weights_are_honoured() -> None:
    sex, y, pred = _biased(n=600)
    labels = CLASSES[y.astype(int)], CLASSES[pred.astype(int)]
    flipped = fairness("classification", CLASSES, *labels, {"sex": sex}, min_rows=30, positive=0)
    rates = {g["group"]: g["metrics"]["selection_rate"] for g in flipped["columns"]["sex"]}
    assert rates["F"] == pytest.approx(np.mean(~pred[sex == "F"]))
    w = np.where(y, 3.0, 1.0)
    weighted = fairness("classification", CLASSES, *labels, {"sex": sex}, min_rows=30, sample_weight=w)
    rate = next(g for g in weighted["columns"]["sex"] if g["group"] == "M")["metrics"]["selection_rate"]
    m = sex == "M"
    assert rate == pytest.approx(np.sum(w[m] * pred[m]) / np.sum(w[m]))


def test_regression_and_multiclass_measures() -> None:
    rng = np.random.default_rng(2)
    group = rng.choice(["a", "b"], 300)
    y = rng.normal(size=300)
    pred = y + np.where(group == "a", 0.1, 1.0) * rng.normal(size=300)
    found = fairness("regression", np.array([]), y, pred, {"g": group}, min_rows=30)
    mae = {g["group"]: g["metrics"]["mae"] for g in found["columns"]["g"]}
    assert found["disparities"]["g"]["mae_difference"]["value"] == pytest.approx(mae["b"] - mae["a"])
    classes = np.array(["x", "y", "z"])
    labels = classes[rng.integers(0, 3, 300)]
    multi = fairness("classification", classes, labels, labels[::-1], {"g": group}, min_rows=30)
    assert set(multi["disparities"]["g"]) == {"accuracy_difference"}
