"""Metrics on weighted rows, and the paired bootstrap that compares two models on the same rows.

A bootstrap resample is a vector of row counts (how often each row was drawn), so every metric
here takes `weights`: one sort or one confusion matrix per resample, no copy of the rows.
Metric names are looml's (learn/metrics.py); classifier probabilities are columns in `classes`
order and the positive class of a binary task is `classes[1]`, as in training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from looml.spec import LOWER_IS_BETTER

__all__ = ["Comparison", "bootstrap_interval", "metric", "paired_bootstrap"]

_EPS = 1e-15


@dataclass(frozen=True)
class Outcomes:
    """What a model predicted on labelled rows: everything a metric needs."""

    task: str
    classes: np.ndarray  # empty for regression
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None = None


def metric(name: str, outcomes: Outcomes, weights: np.ndarray | None = None) -> float:
    """The metric `name` on `outcomes`, each row counted `weights[i]` times (default once)."""
    w = np.ones(len(outcomes.y_true)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if total <= 0:
        return float("nan")
    if outcomes.task == "regression":
        y, p = outcomes.y_true.astype(np.float64), outcomes.y_pred.astype(np.float64)
        err = p - y
        if name == "rmse":
            return float(np.sqrt(np.dot(w, err * err) / total))
        if name == "mae":
            return float(np.dot(w, np.abs(err)) / total)
        if name == "r2":
            mean = np.dot(w, y) / total
            ss_tot = np.dot(w, (y - mean) ** 2)
            return float(1 - np.dot(w, err * err) / ss_tot) if ss_tot > 0 else float("nan")
        raise ValueError(f"unknown regression metric {name!r}")
    classes = outcomes.classes
    k = len(classes)
    true_idx = _index(classes, outcomes.y_true)  # a label the model never saw is index k: always wrong
    if name == "roc_auc":
        return _roc_auc(true_idx, outcomes.proba, w, len(classes))
    if name == "log_loss":
        if outcomes.proba is None:
            return float("nan")
        seen = true_idx < k
        p = np.full(len(true_idx), _EPS)
        p[seen] = np.clip(outcomes.proba[np.flatnonzero(seen), true_idx[seen]], _EPS, 1.0)
        return float(-np.dot(w, np.log(p)) / total)
    pred_idx = _index(classes, outcomes.y_pred)
    size = k + 1
    confusion = np.bincount(true_idx * size + pred_idx, weights=w, minlength=size * size).reshape(size, size)
    if name == "accuracy":
        return float(np.trace(confusion[:k, :k]) / total)
    tp = np.diag(confusion)[:k]
    predicted, actual = confusion.sum(axis=0)[:k], confusion.sum(axis=1)[:k]
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
    values = {"precision": precision, "recall": recall, "f1": f1}.get(name)
    if values is None:
        raise ValueError(f"unknown classification metric {name!r}")
    return float(values[1]) if k == 2 else float(values.mean())


def _index(classes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value's position in `classes`; len(classes) for a value not among them."""
    lookup = {c: i for i, c in enumerate(classes.tolist())}
    missing = len(classes)
    return np.fromiter((lookup.get(v, missing) for v in values.tolist()), dtype=np.int64, count=len(values))


def _roc_auc(true_idx: np.ndarray, proba: np.ndarray | None, w: np.ndarray, k: int) -> float:
    if proba is None:
        return float("nan")
    if k == 2:
        return _binary_auc(true_idx == 1, proba[:, 1], w)
    aucs = [_binary_auc(true_idx == j, proba[:, j], w) for j in range(k)]
    aucs = [a for a in aucs if a == a]
    return float(np.mean(aucs)) if aucs else float("nan")


def _binary_auc(positive: np.ndarray, score: np.ndarray, w: np.ndarray) -> float:
    """Weighted Mann-Whitney AUC; tied scores count one half."""
    levels, group = np.unique(score, return_inverse=True)
    pos = np.bincount(group, weights=w * positive, minlength=len(levels))
    neg = np.bincount(group, weights=w * ~positive, minlength=len(levels))
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float(np.dot(pos, below + 0.5 * neg) / (total_pos * total_neg))


def bootstrap_interval(name: str, outcomes: Outcomes, *, confidence: float, resamples: int,
                       seed: int) -> tuple[float, float]:
    """A two-sided percentile bootstrap interval of the metric."""
    rng = np.random.default_rng(seed)
    n = len(outcomes.y_true)
    values = np.array([metric(name, outcomes, np.bincount(rng.integers(0, n, n), minlength=n))
                       for _ in range(resamples)])
    values = values[values == values]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


@dataclass(frozen=True)
class Comparison:
    """Challenger vs champion on the same labelled rows (`improvement` > 0: the challenger is better)."""

    metric: str
    rows: int
    champion: float
    challenger: float
    improvement: float  # in the better direction: champion - challenger for lower-is-better metrics
    lower_bound: float  # one-sided lower confidence bound of the improvement
    confidence: float
    margin: float
    p_value: float  # share of resamples whose improvement is not above the margin
    resamples: int

    @property
    def significant(self) -> bool:
        """The challenger is better by more than the margin, at the confidence asked."""
        return self.lower_bound > self.margin

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {**asdict(self), "significant": self.significant}


def paired_bootstrap(name: str, champion: Outcomes, challenger: Outcomes, *, margin: float,
                     confidence: float, resamples: int, seed: int) -> Comparison:
    """Resample the rows (the same resample for both models) and bound the improvement."""
    sign = -1.0 if name in LOWER_IS_BETTER else 1.0
    rng = np.random.default_rng(seed)
    n = len(champion.y_true)
    diffs = np.empty(resamples)
    for b in range(resamples):
        w = np.bincount(rng.integers(0, n, n), minlength=n)
        diffs[b] = sign * (metric(name, challenger, w) - metric(name, champion, w))
    diffs = diffs[diffs == diffs]
    a, c = metric(name, champion), metric(name, challenger)
    lower = float(np.quantile(diffs, 1 - confidence)) if len(diffs) else float("nan")
    p_value = float(np.mean(diffs <= margin)) if len(diffs) else 1.0
    return Comparison(metric=name, rows=n, champion=a, challenger=c, improvement=sign * (c - a),
                      lower_bound=lower, confidence=confidence, margin=margin, p_value=p_value,
                      resamples=resamples)
