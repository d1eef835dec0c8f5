"""Live performance: served predictions joined to their feedback labels, against the champion's
holdout metrics; and, for unlabelled classifier traffic, a confidence-based estimate.

A drop is flagged only with enough labels and only when the whole bootstrap confidence
interval of the live metric lies beyond the allowed drop, never on a point estimate.
The estimate without labels follows NannyML's CBPE: the model's probabilities, recalibrated
on the labelled rows when there are enough (isotonic), give the expected confusion of every
unlabelled row; it is reported as an estimate, never as a measurement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from looml.data.split_checks import class_index
from looml.monitor.stats import Outcomes, bootstrap_interval, metric
from looml.spec import LOWER_IS_BETTER, PerformanceSpec, Spec

__all__ = ["LivePerformance", "live_performance", "outcomes_of", "watched_metric"]

_CALIBRATION_ROWS = 50  # labelled rows needed to recalibrate the probabilities


@dataclass(frozen=True)
class LivePerformance:
    """The verdict on one window of served traffic."""

    metric: str
    rows: int
    labelled: int
    value: float | None  # the live metric on the labelled rows
    interval: tuple[float, float] | None
    reference: float | None  # the model's holdout value
    limit: float | None  # the worst value allowed before a drop is flagged
    dropped: bool
    verdict: str  # drop | ok | too few labels | no reference
    windows: list[dict[str, Any]] = field(default_factory=list)
    estimate: dict[str, Any] | None = None  # CBPE on the unlabelled rows, classifiers only

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)


def outcomes_of(frame: pl.DataFrame, positive_class: Any = None) -> tuple[Outcomes, pl.DataFrame]:
    """The labelled rows of a joined prediction log (`join_feedback`) as `Outcomes`, and those rows.

    Classes are read from the `proba_*` columns (written in the model's class order), as text;
    a binary task's positive class is `positive_class` (`data.positive_class`) or the second.
    """
    labelled = frame.filter(pl.col("label").is_not_null())
    proba_columns = [c for c in frame.columns if c.startswith("proba_")]
    if frame.schema["prediction"] == pl.Float64:
        return Outcomes("regression", np.array([]), labelled["label"].cast(pl.Float64).to_numpy(),
                        labelled["prediction"].to_numpy()), labelled
    classes = np.array([c.removeprefix("proba_") for c in proba_columns], dtype=object)
    proba = labelled.select(proba_columns).to_numpy() if proba_columns else None
    positive = 1 if positive_class is None else max(0, class_index(list(classes), positive_class))
    return Outcomes("classification", classes, labelled["label"].cast(pl.String).to_numpy(),
                    labelled["prediction"].cast(pl.String).to_numpy(), proba, positive), labelled


def watched_metric(spec: Spec, holdout: dict[str, float]) -> str:
    """The metric live performance is judged by: `monitor.performance.metric`, or the evaluation's
    primary metric; the task is read off the model's holdout metrics."""
    from looml.learn.metrics import primary_metric

    declared = spec.monitor.performance.metric
    if declared == "auto":
        declared = spec.evaluation.primary_metric
    task = "classification" if "accuracy" in holdout else "regression"
    if ":" in declared:  # a custom metric has no live form here: the task's default is watched
        declared = "auto"
    return primary_metric(declared, task)


def live_performance(joined: pl.DataFrame, name: str, reference: float | None, spec: PerformanceSpec,
                     seed: int = 0, positive_class: Any = None) -> LivePerformance:
    """Measure metric `name` on the labelled rows of `joined` and judge it against `reference`
    (`positive_class`: the binary positive class, `data.positive_class`)."""
    outcomes, labelled = outcomes_of(joined, positive_class)
    n = len(outcomes.y_true)
    windows = _windows(labelled, name, spec.window, positive_class)
    estimate = _estimate(joined, outcomes) if outcomes.task == "classification" else None
    value = metric(name, outcomes) if n else None
    limit = None if reference is None else _limit(name, reference, spec)
    common = {"metric": name, "rows": joined.height, "labelled": n, "reference": reference, "limit": limit,
              "windows": windows, "estimate": estimate}
    if n < spec.min_labels:
        return LivePerformance(**common, value=value, interval=None, dropped=False, verdict="too few labels")
    low, high = bootstrap_interval(name, outcomes, confidence=spec.confidence, resamples=spec.resamples,
                                   seed=seed)
    if limit is None:
        return LivePerformance(**common, value=value, interval=(low, high), dropped=False,
                               verdict="no reference")
    dropped = low > limit if name in LOWER_IS_BETTER else high < limit
    return LivePerformance(**common, value=value, interval=(low, high), dropped=dropped,
                           verdict="drop" if dropped else "ok")


def _limit(name: str, reference: float, spec: PerformanceSpec) -> float:
    allowed = spec.max_drop * abs(reference) if spec.relative else spec.max_drop
    return reference + allowed if name in LOWER_IS_BETTER else reference - allowed


def _windows(labelled: pl.DataFrame, name: str, seconds: float,
             positive_class: Any = None) -> list[dict[str, Any]]:
    """The metric per time window of the prediction timestamps."""
    if labelled.is_empty():
        return []
    every = f"{max(1, int(seconds))}s"
    out = []
    keyed = labelled.sort("timestamp").with_columns(pl.col("timestamp").dt.truncate(every).alias("__window"))
    for (start,), part in keyed.group_by("__window", maintain_order=True):
        outcomes, _ = outcomes_of(part.drop("__window"), positive_class)
        out.append({"start": start.isoformat(), "labelled": part.height, "value": metric(name, outcomes)})
    return out


def _estimate(joined: pl.DataFrame, labelled: Outcomes) -> dict[str, Any] | None:
    """Expected accuracy (and ROC AUC for two classes) of the unlabelled rows from their probabilities.

    Two classes: the positive class's probability is recalibrated against the labels; more:
    the top probability against whether the prediction was right.
    """
    proba_columns = [c for c in joined.columns if c.startswith("proba_")]
    unlabelled = joined.filter(pl.col("label").is_null())
    if not proba_columns or unlabelled.is_empty():
        return None
    proba = unlabelled.select(proba_columns).to_numpy()
    binary = proba.shape[1] == 2
    score = proba[:, 1] if binary else proba.max(axis=1)
    calibrated = labelled.proba is not None and len(labelled.y_true) >= _CALIBRATION_ROWS
    if calibrated:
        from sklearn.isotonic import IsotonicRegression

        if binary:
            x, y = labelled.proba[:, 1], labelled.y_true == labelled.classes[1]
        else:
            x, y = labelled.proba.max(axis=1), labelled.y_pred == labelled.y_true
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        score = iso.fit(x, y.astype(np.float64)).predict(score)
    out: dict[str, Any] = {"rows": unlabelled.height, "calibrated": bool(calibrated),
                           "accuracy": float(np.maximum(score, 1 - score).mean() if binary else score.mean())}
    if binary:
        out["roc_auc"] = _expected_auc(score)
    return out


def _expected_auc(p: np.ndarray) -> float | None:
    """The ROC AUC expected if each row is positive with probability `p`."""
    order = np.argsort(-p, kind="stable")
    p = p[order]
    tp, fp = np.cumsum(p), np.cumsum(1 - p)
    if tp[-1] <= 0 or fp[-1] <= 0:
        return None
    tpr = np.concatenate([[0.0], tp / tp[-1]])
    fpr = np.concatenate([[0.0], fp / fp[-1]])
    return float(np.trapezoid(tpr, fpr))
