"""Metrics: defined on messy folds, and lower-is-better handled."""

from __future__ import annotations

import numpy as np

from looml.learn.metrics import better, score, stable


def test_multiclass_roc_auc_is_defined_when_a_fold_lacks_a_rare_class() -> None:
    classes = np.array(["a", "b", "rare"])
    y_true = np.array(["a", "b", "a", "b", "a", "b"])  # no "rare" in this fold
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1],
                      [0.3, 0.6, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    metrics = score("classification", classes, y_true, classes[proba.argmax(axis=1)], proba)
    assert metrics["roc_auc"] == 1.0
    assert set(metrics) == {"roc_auc", "accuracy", "precision", "recall", "f1", "log_loss"}


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
