"""Evaluate: the refitted pipeline on the holdout split, read here and nowhere else.

Besides the metrics and the plots' data, the analysis (unless `evaluation.analysis: false`):
a bootstrap interval of every metric, per-group fairness of the sensitive columns and metrics
per slice. Columns analysed but not features arrive in `extra`, aligned with the holdout rows,
and never reach the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, roc_curve
from sklearn.pipeline import Pipeline

from looml.learn.metrics import Scoring, per_class, score
from looml.spec import EvaluationSpec

__all__ = ["Evaluation", "evaluate"]

_MAX_POINTS = 1000  # points kept for plots


@dataclass(frozen=True)
class Evaluation:
    """Holdout metrics, their intervals, fairness and slices, and the data behind the plots."""

    metrics: dict[str, float]
    rows: int
    plots: dict[str, Any] = field(default_factory=dict)
    confidence: float | None = None
    intervals: dict[str, list[float | None]] = field(default_factory=dict)  # metric -> [low, high]
    fairness: dict[str, Any] | None = None
    slices: dict[str, Any] | None = None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # multiclass: precision, recall, f1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)


def evaluate(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, task: str,
             settings: EvaluationSpec | None = None, *, primary: str = "", seed: int = 0,
             extra: pd.DataFrame | None = None, sample_weight: np.ndarray | None = None,
             scoring: Scoring | None = None) -> tuple[Evaluation, np.ndarray]:
    """Score `pipeline` on the holdout rows; return the evaluation and the predictions.

    With `settings` and its analysis on: intervals at `settings.confidence` (seeded by `seed`),
    fairness over `settings.sensitive_columns` and slices over `settings.slices`, whose values
    are read from `X` or, for columns that are not features, from `extra`.
    """
    scoring = scoring or Scoring()  # the binary positive class, custom metrics (learn/metrics.py)
    predictions = pipeline.predict(X)
    proba = None
    if task == "regression":
        classes = np.array([])
        metrics = score(task, classes, y, predictions, None, sample_weight, scoring)
        pick = _sample(len(y))
        plots: dict[str, Any] = {"actual": y[pick].astype(float).tolist(),
                                 "predicted": predictions[pick].astype(float).tolist(),
                                 "residuals": _residual_histogram(y, predictions)}
    else:
        classes = pipeline.classes_
        proba = pipeline.predict_proba(X)
        metrics = score(task, classes, y, predictions, proba, sample_weight, scoring)
        plots = _classification_plots(classes, y, predictions, proba, scoring.positive)
    by_class = per_class(classes, y, predictions, sample_weight) if len(classes) > 2 else {}
    evaluation = Evaluation(metrics=metrics, rows=len(y), plots=plots, per_class=by_class)
    if settings is not None and settings.analysis and len(y):
        outcomes = _Outcomes(task, classes, y, predictions, proba, scoring.positive, sample_weight)
        evaluation = _analyse(evaluation, settings, outcomes, primary=primary, seed=seed,
                              columns=_columns(settings, X, extra))
    return evaluation, predictions


@dataclass(frozen=True)
class _Outcomes:
    """The holdout's labels and the model's outputs, with what the metrics need to read them."""

    task: str
    classes: np.ndarray
    y: np.ndarray
    predictions: np.ndarray
    proba: np.ndarray | None
    positive: int  # index of the binary positive class in `classes`
    weight: np.ndarray | None  # data.sample_weight of each row


def _analyse(evaluation: Evaluation, settings: EvaluationSpec, o: _Outcomes, *, primary: str, seed: int,
             columns: dict[str, np.ndarray]) -> Evaluation:
    from looml.learn.fairness import fairness
    from looml.learn.intervals import intervals
    from looml.learn.slices import slice_metrics

    bounds = intervals(o.task, o.classes, o.y, o.predictions, o.proba, confidence=settings.confidence,
                       seed=seed, positive=o.positive, sample_weight=o.weight)
    found = {m: [_finite(low), _finite(high)] for m, (low, high) in bounds.items() if m in evaluation.metrics}
    fair = None
    if settings.sensitive_columns:
        fair = fairness(o.task, o.classes, o.y, o.predictions,
                        {c: columns[c] for c in settings.sensitive_columns}, min_rows=settings.min_slice_rows,
                        positive=o.positive, sample_weight=o.weight)
    sliced = None
    if settings.slices:
        sliced = slice_metrics(o.task, o.classes, o.y, o.predictions, o.proba,
                               {c: columns[c] for c in settings.slices},
                               primary=primary or next(iter(evaluation.metrics)),
                               min_rows=settings.min_slice_rows, confidence=settings.confidence, seed=seed,
                               positive=o.positive, sample_weight=o.weight)
    return Evaluation(metrics=evaluation.metrics, rows=evaluation.rows, plots=evaluation.plots,
                      confidence=settings.confidence, intervals=found, fairness=fair, slices=sliced,
                      per_class=evaluation.per_class)


def _columns(settings: EvaluationSpec, X: pd.DataFrame, extra: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """Each analysed column's holdout values: from the features, else from the extra columns."""
    out = {}
    for name in settings.analysed_columns:
        source = extra if extra is not None and name in extra.columns else X
        out[name] = source[name].to_numpy()
    return out


def _classification_plots(classes: np.ndarray, y: np.ndarray, predictions: np.ndarray,
                          proba: np.ndarray, positive: int = 1) -> dict[str, Any]:
    plots: dict[str, Any] = {
        "labels": [str(c) for c in classes],
        "confusion": confusion_matrix(y, predictions, labels=classes).tolist(),
        "roc": {},
    }
    for i, label in enumerate(classes):
        if len(classes) == 2 and i != positive:
            continue  # binary: one curve, for the positive class
        fpr, tpr, _ = roc_curve(y == label, proba[:, i])
        keep = _sample(len(fpr))
        plots["roc"][str(label)] = {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()}
    if len(classes) == 2 and 0 < np.sum(y == classes[positive]) < len(y):
        plots |= _binary_curves(y == classes[positive], proba[:, positive])
    return plots


_GAIN_POINTS = 50  # cumulative-gain points (population shares)
_CALIBRATION_BINS = 10  # reliability bins (quantiles of the predicted probability)
_RESIDUAL_BINS = 30


def _binary_curves(positive: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """Precision-recall, cumulative gain and reliability curves of the positive class, with the
    Brier score: aggregated points only (at most 1,000 per curve), never the rows."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(positive, score)
    keep = _sample(len(recall))
    order = np.argsort(-score, kind="stable")
    hits = np.concatenate([[0], np.cumsum(positive[order])])
    shares = np.linspace(0, 1, _GAIN_POINTS + 1)
    taken = np.round(shares * len(score)).astype(int)
    edges = np.unique(np.quantile(score, np.linspace(0, 1, _CALIBRATION_BINS + 1)))
    bins = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, max(len(edges) - 2, 0))
    count = np.bincount(bins, minlength=max(len(edges) - 1, 1))
    filled = count > 0
    mean_p = np.bincount(bins, weights=score, minlength=len(count))[filled] / count[filled]
    observed = np.bincount(bins, weights=positive.astype(float), minlength=len(count))[filled] / count[filled]
    return {
        "pr": {"precision": precision[keep].tolist(), "recall": recall[keep].tolist(),
               "prevalence": float(np.mean(positive))},
        "gain": {"population": shares.tolist(), "captured": (hits[taken] / hits[-1]).tolist()},
        "calibration": {"predicted": mean_p.tolist(), "observed": observed.tolist(),
                        "count": count[filled].tolist(),
                        "brier": float(np.mean((score - positive) ** 2))},
    }


def _residual_histogram(y: np.ndarray, predictions: np.ndarray) -> dict[str, list[float]]:
    """The distribution of the residuals (actual - predicted) of every holdout row, as counts."""
    residual = np.asarray(y, dtype=float) - np.asarray(predictions, dtype=float)
    residual = residual[np.isfinite(residual)]
    if not len(residual):
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(residual, bins=_RESIDUAL_BINS)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def _finite(value: float) -> float | None:
    return None if value != value else float(value)


def _sample(n: int) -> np.ndarray:
    if n <= _MAX_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, _MAX_POINTS).astype(int))
