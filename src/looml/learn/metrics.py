"""Metric names, their direction, and scikit-learn scorers for each task."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    get_scorer,
    log_loss,
    make_scorer,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from looml.spec import CLASSIFICATION_METRICS, LOWER_IS_BETTER

__all__ = ["better", "metric_of", "primary_metric", "score", "scorers", "stable"]


def primary_metric(declared: str, task: str) -> str:
    """The ranking metric: the declared one, or roc_auc / rmse for 'auto'."""
    if declared != "auto":
        return declared
    return "roc_auc" if task == "classification" else "rmse"


def better(metric: str, a: float, b: float) -> bool:
    """True when value `a` is strictly better than `b` for `metric`."""
    return a < b if metric in LOWER_IS_BETTER else a > b


def stable(value: float) -> float:
    """A metric value rounded to 12 significant digits.

    Threaded forests sum tree probabilities in whatever order their threads finish, which
    moves the last bit of a score; rounding makes reruns of the same spec compare equal.
    """
    return float(f"{value:.12g}")


def scorers(task: str, classes: np.ndarray) -> dict[str, Any]:
    """scikit-learn scorers keyed by looml metric name, each returning the metric's own sign.

    Lower-is-better metrics are wrapped with `greater_is_better=True` on purpose, so the
    numbers in the leaderboard are the metric values themselves, never negated.
    """
    if task == "regression":
        return {"rmse": make_scorer(root_mean_squared_error), "mae": make_scorer(mean_absolute_error),
                "r2": make_scorer(r2_score)}
    if len(classes) == 2:
        pos = classes[1]
        averaged = {"pos_label": pos, "average": "binary", "zero_division": 0}
        roc = get_scorer("roc_auc")
    else:
        averaged = {"average": "macro", "zero_division": 0}
        roc = make_scorer(_roc_auc_ovr, response_method="predict_proba", labels=classes)
    return {
        "roc_auc": roc,
        "accuracy": make_scorer(accuracy_score),
        "precision": make_scorer(precision_score, **averaged),
        "recall": make_scorer(recall_score, **averaged),
        "f1": make_scorer(f1_score, **averaged),
        "log_loss": make_scorer(log_loss, response_method="predict_proba", labels=classes),
    }


def _roc_auc_ovr(y_true: np.ndarray, proba: np.ndarray, labels: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC over the classes present in `y_true`.

    scikit-learn's multiclass AUC is undefined when a fold lacks a rare class; averaging
    over the classes that are present keeps CV scores defined on messy, imbalanced data.
    """
    aucs = [roc_auc_score(y_true == label, proba[:, i]) for i, label in enumerate(labels)
            if 0 < np.sum(y_true == label) < len(y_true)]
    return float(np.mean(aucs)) if aucs else float("nan")


def score(task: str, classes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
          proba: np.ndarray | None) -> dict[str, float]:
    """Every metric of the task on one set of predictions."""
    if task == "regression":
        return {"rmse": stable(root_mean_squared_error(y_true, y_pred)),
                "mae": stable(mean_absolute_error(y_true, y_pred)),
                "r2": stable(r2_score(y_true, y_pred))}
    binary = len(classes) == 2
    averaged: dict[str, Any] = ({"pos_label": classes[1], "average": "binary"} if binary
                                else {"average": "macro"})
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0, **averaged)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0, **averaged)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0, **averaged)),
    }
    if proba is not None:
        if binary:
            out["roc_auc"] = float(roc_auc_score(y_true == classes[1], proba[:, 1]))
        else:
            out["roc_auc"] = _roc_auc_ovr(y_true, proba, labels=classes)
        out["log_loss"] = float(log_loss(y_true, proba, labels=classes))
    return {m: stable(out[m]) for m in CLASSIFICATION_METRICS if m in out}


def metric_of(metric: str, task: str, classes: np.ndarray, y_true: np.ndarray,
              predicted: np.ndarray) -> float:
    """One metric of class probabilities (classification) or values (regression), without the
    input checks of scikit-learn's functions: the ensemble search calls it thousands of times.
    Matches `score` (log loss clipped at float64's eps, ties in AUC averaged)."""
    if task == "regression":
        error = y_true - predicted
        if metric == "rmse":
            return float(np.sqrt(np.mean(error**2)))
        if metric == "mae":
            return float(np.mean(np.abs(error)))
        return float(1.0 - np.sum(error**2) / np.sum((y_true - np.mean(y_true)) ** 2))
    index = np.searchsorted(classes, y_true)
    if metric == "log_loss":
        eps = np.finfo(float).eps
        true = predicted[np.arange(len(index)), index]
        return float(-np.mean(np.log(np.clip(true, eps, 1 - eps))))
    if metric == "roc_auc":
        columns = [1] if len(classes) == 2 else range(len(classes))
        aucs = [_auc(index == c, predicted[:, c]) for c in columns if 0 < np.sum(index == c) < len(index)]
        return float(np.mean(aucs)) if aucs else float("nan")
    labels = classes[np.argmax(predicted, axis=1)]
    if metric == "accuracy":
        return float(np.mean(labels == y_true))
    return score(task, classes, y_true, labels, None)[metric]


def _auc(positive: np.ndarray, values: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) form, ties counted half."""
    from scipy.stats import rankdata

    n_pos = int(np.sum(positive))
    n_neg = len(positive) - n_pos
    ranks = rankdata(values)
    return float((np.sum(ranks[positive]) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
