"""Metrics on weighted rows, and the paired bootstrap that compares two models on the same rows.

A bootstrap resample is a vector of row counts (how often each row was drawn), so every metric
here takes `weights`: one sort or one confusion matrix per resample, no copy of the rows.
Metric names are looml's (learn/metrics.py); classifier probabilities are columns in `classes`
order and the positive class of a binary task is `classes[positive]` (`data.positive_class`;
by default `classes[1]`), as in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from looml.spec import LOWER_IS_BETTER

__all__ = ["COMPARABLE", "Comparison", "Outcomes", "bootstrap_interval", "metric", "outcomes_of",
           "paired_bootstrap", "scorer"]

# The metrics computed here, by task: what a bootstrap or a comparison can be made on.
COMPARABLE = {"classification": ("roc_auc", "average_precision", "log_loss", "accuracy", "precision",
                                 "recall", "f1"),
              "regression": ("rmse", "mae", "mape", "rmsle", "r2")}
_EPS = 1e-15
_DRAWS = 20_000_000  # row draws per bootstrap at most (see _affordable)
_MIN_RESAMPLES = 200


@dataclass(frozen=True)
class Outcomes:
    """What a model predicted on labelled rows: everything a metric needs."""

    task: str
    classes: np.ndarray  # empty for regression
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None = None
    positive: int = 1  # binary: the index of `data.positive_class` in `classes`


def outcomes_of(pipeline: Any, X: Any, labels: Any, positive_class: Any = None) -> Outcomes:
    """What a fitted pipeline predicts for the rows `X` whose true labels (or values) are `labels`
    (an array, or a Polars Series of feedback labels).

    Class labels are compared as text on both sides (`store.predictions.label_text`), so a label
    read back from feedback, a CSV or a registry matches the class the model was fitted on; the
    predicted label is the pipeline's own (`predict`: its decision threshold included)."""
    import polars as pl

    from looml.data.split_checks import class_index
    from looml.store.predictions import label_text

    regression = not hasattr(pipeline, "predict_proba")
    if isinstance(labels, pl.Series):  # feedback labels are text: a regression target is read as a number
        labels = labels.cast(pl.Float64 if regression else pl.String).to_numpy()
    if regression:
        return Outcomes("regression", np.array([]), np.asarray(labels, dtype=np.float64),
                        np.asarray(pipeline.predict(X), dtype=np.float64))
    proba = pipeline.predict_proba(X)
    classes = np.array([label_text(c) for c in pipeline.classes_], dtype=object)
    positive = 1 if positive_class is None else max(0, class_index(list(classes), positive_class))
    as_text = np.frompyfunc(label_text, 1, 1)
    return Outcomes("classification", classes, as_text(np.asarray(labels, dtype=object)),
                    as_text(np.asarray(pipeline.predict(X), dtype=object)), proba, positive)


def metric(name: str, outcomes: Outcomes, weights: np.ndarray | None = None) -> float:
    """The metric `name` on `outcomes`, each row counted `weights[i]` times (default once)."""
    return scorer(name, outcomes)(weights)


def scorer(name: str, outcomes: Outcomes) -> Callable[[np.ndarray | None], float]:
    """`metric` as a function of the weights alone, with the per-row work done once (for bootstraps)."""
    n = len(outcomes.y_true)
    if outcomes.task == "regression":
        return _regression(name, outcomes.y_true.astype(np.float64), outcomes.y_pred.astype(np.float64))
    classes = outcomes.classes
    k = len(classes)
    true_idx = _index(classes, outcomes.y_true)  # a label the model never saw is index k: always wrong
    if name == "roc_auc":
        return _roc_auc(true_idx, outcomes.proba, k)
    if name == "average_precision":
        return _average_precision(true_idx, outcomes.proba, k, outcomes.positive)
    if name == "log_loss":
        if outcomes.proba is None:
            return lambda w: float("nan")
        seen = true_idx < k
        p = np.full(n, _EPS)
        p[seen] = np.clip(outcomes.proba[np.flatnonzero(seen), true_idx[seen]], _EPS, 1.0)
        loss = -np.log(p)
        return lambda w: _mean(loss, w)
    if name not in ("accuracy", "precision", "recall", "f1"):
        raise ValueError(f"unknown classification metric {name!r}")
    size = k + 1
    cell = true_idx * size + _index(classes, outcomes.y_pred)

    def confusion_metric(w: np.ndarray | None) -> float:
        confusion = np.bincount(cell, weights=w, minlength=size * size).reshape(size, size)
        total = confusion.sum()
        if total <= 0:
            return float("nan")
        if name == "accuracy":
            return float(np.trace(confusion[:k, :k]) / total)
        tp = np.diag(confusion)[:k]
        predicted, actual = confusion.sum(axis=0)[:k], confusion.sum(axis=1)[:k]
        precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
        recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k),
                       where=precision + recall > 0)
        values = {"precision": precision, "recall": recall, "f1": f1}[name]
        return float(values[outcomes.positive]) if k == 2 else float(values.mean())

    return confusion_metric


def _mean(values: np.ndarray, w: np.ndarray | None) -> float:
    if w is None:
        return float(values.mean()) if len(values) else float("nan")
    total = w.sum()
    return float(np.dot(w, values) / total) if total > 0 else float("nan")


def _regression(name: str, y: np.ndarray, p: np.ndarray) -> Callable[[np.ndarray | None], float]:
    err = p - y
    if name == "rmse":
        squared = err * err
        return lambda w: float(np.sqrt(_mean(squared, w)))
    if name == "mae":
        absolute = np.abs(err)
        return lambda w: _mean(absolute, w)
    if name == "mape":
        share = np.abs(err) / np.maximum(np.abs(y), np.finfo(np.float64).eps)  # as scikit-learn's
        return lambda w: _mean(share, w)
    if name == "rmsle":
        squared_log = (np.log1p(np.clip(p, 0, None)) - np.log1p(np.clip(y, 0, None))) ** 2
        return lambda w: float(np.sqrt(_mean(squared_log, w)))
    if name == "r2":
        def r2(w: np.ndarray | None) -> float:
            mean = _mean(y, w)
            ss_tot, ss_res = _mean((y - mean) ** 2, w), _mean(err * err, w)
            return float(1 - ss_res / ss_tot) if ss_tot > 0 else float("nan")
        return r2
    raise ValueError(f"unknown regression metric {name!r}")


def _index(classes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value's position in `classes`; len(classes) for a value not among them."""
    lookup = {c: i for i, c in enumerate(classes.tolist())}
    missing = len(classes)
    return np.fromiter((lookup.get(v, missing) for v in values.tolist()), dtype=np.int64, count=len(values))


def _roc_auc(true_idx: np.ndarray, proba: np.ndarray | None, k: int) -> Callable[[np.ndarray | None], float]:
    if proba is None:
        return lambda w: float("nan")
    if k == 2:
        return _binary_auc(true_idx == 1, proba[:, 1])
    per_class = [_binary_auc(true_idx == j, proba[:, j]) for j in range(k)]

    def macro(w: np.ndarray | None) -> float:
        aucs = [a for a in (f(w) for f in per_class) if a == a]
        return float(np.mean(aucs)) if aucs else float("nan")

    return macro


def _average_precision(true_idx: np.ndarray, proba: np.ndarray | None, k: int,
                       positive: int) -> Callable[[np.ndarray | None], float]:
    if proba is None:
        return lambda w: float("nan")
    if k == 2:
        return _binary_ap(true_idx == positive, proba[:, positive])
    per_class = [_binary_ap(true_idx == j, proba[:, j]) for j in range(k)]

    def macro(w: np.ndarray | None) -> float:
        values = [a for a in (f(w) for f in per_class) if a == a]
        return float(np.mean(values)) if values else float("nan")

    return macro


def _binary_ap(positive: np.ndarray, score: np.ndarray) -> Callable[[np.ndarray | None], float]:
    """Weighted average precision (scikit-learn's step sum over distinct score thresholds, highest
    first); the scores are sorted once."""
    levels, group = np.unique(-score, return_inverse=True)  # ascending -score: highest score first
    m = len(levels)
    positive = positive.astype(np.float64)

    def ap(w: np.ndarray | None) -> float:
        w = np.ones(len(group)) if w is None else w
        tp = np.cumsum(np.bincount(group, weights=w * positive, minlength=m))
        fp = np.cumsum(np.bincount(group, weights=w * (1 - positive), minlength=m))
        if tp[-1] <= 0:
            return float("nan")
        precision = np.divide(tp, tp + fp, out=np.zeros(m), where=tp + fp > 0)
        recall = tp / tp[-1]
        return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))

    return ap


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> Callable[[np.ndarray | None], float]:
    """Weighted Mann-Whitney AUC; tied scores count one half. The scores are sorted once."""
    levels, group = np.unique(score, return_inverse=True)
    m = len(levels)
    positive = positive.astype(np.float64)

    def auc(w: np.ndarray | None) -> float:
        w = np.ones(len(group)) if w is None else w
        pos = np.bincount(group, weights=w * positive, minlength=m)
        neg = np.bincount(group, weights=w * (1 - positive), minlength=m)
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos <= 0 or total_neg <= 0:
            return float("nan")
        below = np.cumsum(neg) - neg
        return float(np.dot(pos, below + 0.5 * neg) / (total_pos * total_neg))

    return auc


def bootstrap_interval(name: str, outcomes: Outcomes, *, confidence: float, resamples: int,
                       seed: int) -> tuple[float, float]:
    """A two-sided percentile bootstrap interval of the metric."""
    rng = np.random.default_rng(seed)
    n = len(outcomes.y_true)
    score = scorer(name, outcomes)
    values = np.array([score(_resample(rng, n)) for _ in range(_affordable(resamples, n))])
    values = values[values == values]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def _affordable(resamples: int, n: int) -> int:
    """Resamples bounded by about `_DRAWS` row draws in all, and never fewer than `_MIN_RESAMPLES`.

    Each resample costs O(n); on a 100,000-row window 1,000 resamples took 3-13 s here. Past a
    few tens of thousands of rows the interval is narrow and a few hundred resamples place it.
    """
    return max(min(resamples, _MIN_RESAMPLES), min(resamples, _DRAWS // max(n, 1)))


def _resample(rng: np.random.Generator, n: int) -> np.ndarray:
    """How often each of n rows is drawn in one bootstrap resample."""
    return np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)


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
    interval: tuple[float, float]  # the improvement's two-sided interval at `confidence`
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
    old, new = scorer(name, champion), scorer(name, challenger)
    resamples = _affordable(resamples, n)
    diffs = np.empty(resamples)
    for b in range(resamples):
        w = _resample(rng, n)
        diffs[b] = sign * (new(w) - old(w))
    diffs = diffs[diffs == diffs]
    a, c = metric(name, champion), metric(name, challenger)
    nan = float("nan")
    lower = float(np.quantile(diffs, 1 - confidence)) if len(diffs) else nan
    tail = (1 - confidence) / 2
    interval = ((float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail))) if len(diffs)
                else (nan, nan))
    p_value = float(np.mean(diffs <= margin)) if len(diffs) else 1.0
    return Comparison(metric=name, rows=n, champion=a, challenger=c, improvement=sign * (c - a),
                      lower_bound=lower, confidence=confidence, interval=interval, margin=margin,
                      p_value=p_value, resamples=resamples)
