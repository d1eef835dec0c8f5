"""Metric names, their direction, and scikit-learn scorers for each task.

`score` computes every metric of a task on one set of predictions, weighted by the rows'
sample weights when there are any, with the binary positive class and the custom metrics of
a `Scoring`.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    get_scorer,
    log_loss,
    make_scorer,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_recall_fscore_support,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from looml.data.split_checks import class_index
from looml.errors import Problem, SpecError
from looml.spec import CLASSIFICATION_METRICS, LOWER_IS_BETTER, REGRESSION_METRICS, Spec

__all__ = ["CustomMetric", "Scoring", "better", "metric_of", "per_class", "positive_index", "primary_metric",
           "score", "scorers", "scoring_for", "stable"]


@dataclass(frozen=True)
class CustomMetric:
    """A metric of the user's, by import path: `function(y_true, y_pred) -> float`, or of the
    class probabilities (`needs_proba`: the positive class's column for a binary task, every
    class's column in sorted class order otherwise). Keyword `sample_weight` is passed when
    the rows are weighted."""

    name: str
    path: str
    function: Callable[..., float]
    greater_is_better: bool = True
    needs_proba: bool = False


@dataclass(frozen=True)
class Scoring:
    """How predictions are scored beyond the task: the binary positive class (its index in the
    sorted classes) and the custom metrics."""

    positive: int = 1
    custom: tuple[CustomMetric, ...] = ()

    def lower_is_better(self, metric: str) -> bool:
        """Whether smaller values of `metric` are better."""
        for m in self.custom:
            if m.name == metric:
                return not m.greater_is_better
        return metric in LOWER_IS_BETTER


def positive_index(classes: np.ndarray, declared: Any) -> int:
    """The index of the binary positive class in the sorted `classes`: the declared
    `data.positive_class` (matched as text, see `class_index`), or the second class. -1 when the
    declared class is not among them."""
    return 1 if declared is None else class_index([str(c) for c in classes], declared)


def primary_metric(declared: str, task: str) -> str:
    """The ranking metric: the declared one, or roc_auc / rmse for 'auto'."""
    if declared != "auto":
        return declared.rpartition(":")[2]  # a custom metric by import path goes by its function's name
    return "roc_auc" if task == "classification" else "rmse"


def scoring_for(spec: Spec, classes: np.ndarray) -> Scoring:
    """The spec's `Scoring` for a task with these (sorted) classes: the positive class (checked
    against the data before any work, see `looml.data.validate`) and the custom metrics."""
    positive = positive_index(classes, spec.data.positive_class) if len(classes) == 2 else 1
    return Scoring(positive=max(positive, 0), custom=custom_metrics(spec))


def custom_metrics(spec: Spec) -> tuple[CustomMetric, ...]:
    """The custom metrics the spec names (`evaluation.custom_metrics`, and a primary metric given
    as an import path), imported; one `SpecError` naming every path that does not import or is
    not a function."""
    evaluation = spec.evaluation
    found, problems = [], []
    for path in evaluation.custom_paths:
        loc = (f"evaluation.custom_metrics[{evaluation.custom_metrics.index(path)}]"
               if path in evaluation.custom_metrics else "evaluation.primary_metric")
        module, _, name = path.partition(":")
        try:
            function = getattr(importlib.import_module(module), name)
        except ImportError as exc:
            problems.append(Problem(loc=loc, value=path, message=f"cannot import {module!r}: {exc}",
                                    fix="check the module path and that its package is importable"))
            continue
        except AttributeError:
            problems.append(Problem(loc=loc, value=path, message=f"{module!r} has no {name!r}",
                                    fix="check the function name after the ':'"))
            continue
        if not callable(function):
            problems.append(Problem(loc=loc, value=path, message=f"{path!r} is not a function",
                                    fix="name a function (y_true, y_pred) -> float"))
            continue
        found.append(CustomMetric(name=name, path=path, function=function,
                                  greater_is_better=bool(getattr(function, "greater_is_better", True)),
                                  needs_proba=bool(getattr(function, "needs_proba", False))))
    if problems:
        raise SpecError(problems)
    return tuple(found)


def better(metric: str, a: float, b: float, lower: bool | None = None) -> bool:
    """True when value `a` is strictly better than `b` for `metric` (`lower`: smaller is better;
    default from the built-in metrics)."""
    lower = metric in LOWER_IS_BETTER if lower is None else lower
    return a < b if lower else a > b


def stable(value: float) -> float:
    """A metric value rounded to 12 significant digits.

    Threaded forests sum tree probabilities in whatever order their threads finish, which
    moves the last bit of a score; rounding makes reruns of the same spec compare equal.
    """
    return float(f"{value:.12g}")


def scorers(task: str, classes: np.ndarray, positive: int = 1) -> dict[str, Any]:
    """scikit-learn scorers keyed by looml metric name, each returning the metric's own sign.

    Lower-is-better metrics are wrapped with `greater_is_better=True` on purpose, so the
    numbers in the leaderboard are the metric values themselves, never negated.
    """
    if task == "regression":
        return {"rmse": make_scorer(root_mean_squared_error), "mae": make_scorer(mean_absolute_error),
                "r2": make_scorer(r2_score)}
    if len(classes) == 2:
        pos = classes[positive]
        averaged = {"pos_label": pos, "average": "binary", "zero_division": 0}
        roc = get_scorer("roc_auc") if positive == 1 else make_scorer(
            roc_auc_score, response_method="predict_proba", pos_label=pos)
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


def _roc_auc_ovr(y_true: np.ndarray, proba: np.ndarray, labels: np.ndarray,
                 sample_weight: np.ndarray | None = None) -> float:
    """Macro one-vs-rest ROC AUC over the classes present in `y_true`.

    scikit-learn's multiclass AUC is undefined when a fold lacks a rare class; averaging
    over the classes that are present keeps CV scores defined on messy, imbalanced data.
    """
    return _over_present(roc_auc_score, y_true, proba, labels, sample_weight)


def _over_present(metric: Callable[..., float], y_true: np.ndarray, proba: np.ndarray, labels: np.ndarray,
                  sample_weight: np.ndarray | None) -> float:
    values = [metric(y_true == label, proba[:, i], sample_weight=sample_weight)
              for i, label in enumerate(labels) if 0 < np.sum(y_true == label) < len(y_true)]
    return float(np.mean(values)) if values else float("nan")


def _binary(metric: Callable[..., float], positive: np.ndarray, values: np.ndarray,
            sample_weight: np.ndarray | None) -> float:
    """A ranking metric of one class, NaN when a fold has one class only (a time split's block may)."""
    if positive.all() or not positive.any():
        return float("nan")
    return float(metric(positive, values, sample_weight=sample_weight))


def score(task: str, classes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
          proba: np.ndarray | None, sample_weight: np.ndarray | None = None,
          scoring: Scoring | None = None) -> dict[str, float]:
    """Every metric of the task on one set of predictions, weighted by `sample_weight` if given.

    rmsle is left out when a true value is negative (the spec is checked for that before any
    work); predictions are clipped at 0 for it. Custom metrics follow the built-in ones.
    """
    scoring = scoring or Scoring()
    w = sample_weight
    if task == "regression":
        out = {"rmse": root_mean_squared_error(y_true, y_pred, sample_weight=w),
               "mae": mean_absolute_error(y_true, y_pred, sample_weight=w),
               "r2": r2_score(y_true, y_pred, sample_weight=w),
               "mape": mean_absolute_percentage_error(y_true, y_pred, sample_weight=w)}
        if np.all(y_true >= 0):
            out["rmsle"] = root_mean_squared_error(np.log1p(y_true), np.log1p(np.clip(y_pred, 0, None)),
                                                   sample_weight=w)
        metrics = {m: stable(float(out[m])) for m in REGRESSION_METRICS if m in out}
        return {**metrics, **_custom(scoring, classes, y_true, y_pred, None, w)}
    binary = len(classes) == 2
    averaged: dict[str, Any] = ({"pos_label": classes[scoring.positive], "average": "binary"} if binary
                                else {"average": "macro"})
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred, sample_weight=w)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0, sample_weight=w, **averaged)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0, sample_weight=w, **averaged)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0, sample_weight=w, **averaged)),
    }
    if proba is not None:
        if binary:
            positive = y_true == classes[scoring.positive]
            column = proba[:, scoring.positive]
            out["roc_auc"] = _binary(roc_auc_score, positive, column, w)
            out["average_precision"] = _binary(average_precision_score, positive, column, w)
        else:
            out["roc_auc"] = _roc_auc_ovr(y_true, proba, classes, w)
            out["average_precision"] = _over_present(average_precision_score, y_true, proba, classes, w)
        out["log_loss"] = float(log_loss(y_true, proba, labels=classes, sample_weight=w))
    metrics = {m: stable(out[m]) for m in CLASSIFICATION_METRICS if m in out}
    return {**metrics, **_custom(scoring, classes, y_true, y_pred, proba, w)}


def _custom(scoring: Scoring, classes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
            proba: np.ndarray | None, sample_weight: np.ndarray | None) -> dict[str, float]:
    out = {}
    for metric in scoring.custom:
        if metric.needs_proba:
            if proba is None:
                continue
            given = proba[:, scoring.positive] if len(classes) == 2 else proba
        else:
            given = y_pred
        extra = {} if sample_weight is None else {"sample_weight": sample_weight}
        out[metric.name] = stable(float(metric.function(y_true, given, **extra)))
    return out


def per_class(classes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
              sample_weight: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Precision, recall, f1 and support (rows, or their total weight) of each class."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0, sample_weight=sample_weight)
    support = [float(np.sum(sample_weight[y_true == c]) if sample_weight is not None else np.sum(y_true == c))
               for c in classes]
    return {str(c): {"precision": stable(float(p)), "recall": stable(float(r)), "f1": stable(float(f)),
                     "support": stable(n)} for c, p, r, f, n in zip(classes, precision, recall, f1, support,
                                                                     strict=True)}


def metric_of(metric: str, task: str, classes: np.ndarray, y_true: np.ndarray,
              predicted: np.ndarray, sample_weight: np.ndarray | None = None,
              scoring: Scoring | None = None) -> float:
    """One metric of class probabilities (classification) or values (regression), without the
    input checks of scikit-learn's functions: the ensemble search calls it thousands of times.
    Matches `score` (log loss clipped at float64's eps, ties in AUC averaged). Weighted rows and
    the metrics without a fast form go through `score`."""
    scoring = scoring or Scoring()
    fast = {"rmse", "mae", "r2", "log_loss", "roc_auc", "accuracy"}
    if sample_weight is not None or metric not in fast:  # the fast ones do not depend on the positive class
        if task == "regression":
            return score(task, classes, y_true, predicted, None, sample_weight, scoring).get(metric, math.nan)
        labels = classes[np.argmax(predicted, axis=1)]
        return score(task, classes, y_true, labels, predicted, sample_weight, scoring).get(metric, math.nan)
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
    return float(np.mean(labels == y_true))


def _auc(positive: np.ndarray, values: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) form, ties counted half."""
    from scipy.stats import rankdata

    n_pos = int(np.sum(positive))
    n_neg = len(positive) - n_pos
    ranks = rankdata(values)
    return float((np.sum(ranks[positive]) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
