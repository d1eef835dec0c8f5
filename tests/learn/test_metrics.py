"""Metrics: defined on messy folds, and lower-is-better handled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    mean_absolute_percentage_error,
    roc_auc_score,
    root_mean_squared_log_error,
)

from looml.errors import SpecError
from looml.learn.metrics import (
    CustomMetric,
    Scoring,
    better,
    custom_metrics,
    metric_of,
    per_class,
    positive_index,
    primary_metric,
    score,
    stable,
)
from looml.spec import Spec, validate_spec


def test_multiclass_roc_auc_is_defined_when_a_fold_lacks_a_rare_class() -> None:
    classes = np.array(["a", "b", "rare"])
    y_true = np.array(["a", "b", "a", "b", "a", "b"])  # no "rare" in this fold
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1],
                      [0.3, 0.6, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    metrics = score("classification", classes, y_true, classes[proba.argmax(axis=1)], proba)
    assert metrics["roc_auc"] == 1.0
    assert set(metrics) == {"roc_auc", "accuracy", "precision", "recall", "f1", "log_loss",
                            "average_precision"}


def test_binary_metrics_use_the_second_sorted_class_as_positive() -> None:
    classes = np.array(["no", "yes"])
    y_true = np.array(["yes", "yes", "no", "no"])
    y_pred = np.array(["yes", "no", "no", "no"])
    proba = np.array([[0.1, 0.9], [0.6, 0.4], [0.8, 0.2], [0.9, 0.1]])
    metrics = score("classification", classes, y_true, y_pred, proba)
    assert metrics["precision"] == 1.0 and metrics["recall"] == 0.5


def test_direction_and_rounding() -> None:
    assert better("rmse", 1.0, 2.0) and not better("roc_auc", 0.6, 0.7)
    assert stable(0.1 + 0.2) == 0.3


def test_the_declared_positive_class_decides_precision_recall_and_average_precision() -> None:
    classes = np.array(["no", "yes"])
    y_true = np.array(["yes", "yes", "no", "no", "no"])
    y_pred = np.array(["yes", "no", "no", "no", "yes"])
    proba = np.array([[0.1, 0.9], [0.6, 0.4], [0.8, 0.2], [0.9, 0.1], [0.3, 0.7]])
    as_yes = score("classification", classes, y_true, y_pred, proba)
    as_no = score("classification", classes, y_true, y_pred, proba, scoring=Scoring(positive=0))
    assert as_no["precision"] == stable(2 / 3) == as_no["recall"] and as_yes["recall"] == 0.5
    assert as_no["average_precision"] == stable(average_precision_score(y_true == "no", proba[:, 0]))
    assert as_no["average_precision"] != as_yes["average_precision"]
    assert as_no["roc_auc"] == as_yes["roc_auc"]  # AUC is symmetric in the two classes
    assert metric_of("f1", "classification", classes, y_true, proba, scoring=Scoring(positive=0)) == \
        as_no["f1"]


def test_positive_class_is_matched_as_text_and_yaml_booleans_match() -> None:
    assert positive_index(np.array([0, 1]), 0) == 0 and positive_index(np.array([0, 1]), None) == 1
    assert positive_index(np.array(["No", "Yes"]), True) == 1  # YAML reads a bare yes as true
    assert positive_index(np.array([False, True]), "true") == 1
    assert positive_index(np.array(["a", "b"]), "c") == -1


def test_sample_weights_weigh_every_metric() -> None:
    classes = np.array([0, 1])
    y_true = np.array([1, 1, 0, 0])
    y_pred = np.array([1, 0, 0, 1])
    proba = np.array([[0.2, 0.8], [0.7, 0.3], [0.9, 0.1], [0.4, 0.6]])
    w = np.array([3.0, 1.0, 1.0, 0.5])
    out = score("classification", classes, y_true, y_pred, proba, w)
    assert out["accuracy"] == stable(4 / 5.5)
    assert out["f1"] == stable(f1_score(y_true, y_pred, sample_weight=w))
    assert out["roc_auc"] == stable(roc_auc_score(y_true, proba[:, 1], sample_weight=w))
    assert metric_of("roc_auc", "classification", classes, y_true, proba, w) == out["roc_auc"]
    assert out != score("classification", classes, y_true, y_pred, proba)


def test_regression_has_mape_and_rmsle_only_for_a_non_negative_target() -> None:
    y = np.array([1.0, 2.0, 4.0, 10.0])
    predicted = np.array([1.5, 1.0, 5.0, -2.0])  # a negative prediction counts as 0 in rmsle
    out = score("regression", np.array([]), y, predicted, None)
    assert out["mape"] == stable(mean_absolute_percentage_error(y, predicted))
    assert out["rmsle"] == stable(root_mean_squared_log_error(y, np.clip(predicted, 0, None)))
    assert "rmsle" not in score("regression", np.array([]), y - 3, predicted, None)
    assert better("mape", 0.1, 0.2) and better("rmsle", 0.1, 0.2)


def test_per_class_precision_recall_f1_and_support() -> None:
    classes = np.array(["a", "b", "c"])
    y_true = np.array(["a", "a", "b", "c", "c", "c"])
    y_pred = np.array(["a", "b", "b", "c", "c", "a"])
    out = per_class(classes, y_true, y_pred)
    assert out["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2.0}
    assert out["b"]["recall"] == 1.0 and out["c"]["precision"] == 1.0 and out["c"]["support"] == 3.0


def test_custom_metrics_follow_the_built_in_ones_with_their_direction() -> None:
    def cost(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        return float(np.average(y_true != y_pred, weights=sample_weight) * 10)

    def top(y_true: np.ndarray, proba: np.ndarray) -> float:
        return float(proba.max())

    scoring = Scoring(custom=(CustomMetric("cost", "m:cost", cost, greater_is_better=False),
                              CustomMetric("top", "m:top", top, needs_proba=True)))
    classes = np.array([0, 1])
    proba = np.array([[0.2, 0.8], [0.7, 0.3]])
    out = score("classification", classes, np.array([1, 1]), np.array([1, 0]), proba, scoring=scoring)
    assert out["cost"] == 5.0 and out["top"] == 0.8  # binary: the positive class's column
    assert scoring.lower_is_better("cost") and not scoring.lower_is_better("top")
    assert scoring.lower_is_better("rmse") and better("cost", 1.0, 2.0, lower=True)


def test_custom_metrics_are_imported_by_path_and_a_bad_path_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop_metrics.py").write_text(
        "import numpy as np\n\n"
        "def missed(y_true, y_pred, sample_weight=None):\n"
        "    return float(np.average(y_true != y_pred, weights=sample_weight))\n\n"
        "missed.greater_is_better = False\n\n"
        "def top(y_true, proba):\n"
        "    return float(proba.mean())\n\n"
        "top.needs_proba = True\n\n"
        "NOT_A_FUNCTION = 3\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    good = spec_with({"primary_metric": "shop_metrics:missed", "custom_metrics": ["shop_metrics:top"]})
    found = {m.name: m for m in custom_metrics(good)}
    assert set(found) == {"missed", "top"}
    assert not found["missed"].greater_is_better and found["top"].needs_proba
    assert primary_metric(good.evaluation.primary_metric, "classification") == "missed"
    bad = spec_with({"custom_metrics": ["shop_metrics:mised", "no_such_pkg.metrics:f",
                                        "shop_metrics:NOT_A_FUNCTION"]})
    with pytest.raises(SpecError, match=r"(?s)3 problems.*custom_metrics\[0\].*'shop_metrics' has no "
                                        r"'mised'.*custom_metrics\[1\].*cannot import 'no_such_pkg.metrics'.*"
                                        r"is not a function"):
        custom_metrics(bad)


def test_custom_metric_paths_and_names_are_checked_in_the_spec() -> None:
    with pytest.raises(SpecError, match=r"(?s)custom_metrics.0.*expected an import path 'module:function'"):
        spec_with({"custom_metrics": ["not a path"]})
    with pytest.raises(SpecError, match=r"(?s)primary_metric.*cannot take a built-in metric's name"):
        spec_with({"primary_metric": "mypkg:rmse"})
    assert spec_with({"custom_metrics": ["mypkg.m:cost"], "gate": {"max": {"cost": 3.0}}}).evaluation.gate.max


def spec_with(evaluation: dict[str, object]) -> Spec:
    return validate_spec({"data": {"source": "d.csv", "target": "y", "task": "classification"},
                          "registry": {"model_name": "m"}, "evaluation": evaluation}, project_dir=Path("."))
