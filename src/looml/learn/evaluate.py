"""Evaluate: the refitted pipeline on the holdout split, read here and nowhere else."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, roc_curve
from sklearn.pipeline import Pipeline

from looml.learn.metrics import score

__all__ = ["Evaluation", "evaluate"]

_MAX_POINTS = 1000  # points kept for plots


@dataclass(frozen=True)
class Evaluation:
    """Holdout metrics, and the data behind the report's plots."""

    metrics: dict[str, float]
    rows: int
    plots: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)



def evaluate(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, task: str) -> tuple[Evaluation, np.ndarray]:
    """Score `pipeline` on the holdout rows; return the evaluation and the predictions."""
    predictions = pipeline.predict(X)
    if task == "regression":
        metrics = score(task, np.array([]), y, predictions, None)
        pick = _sample(len(y))
        plots = {"actual": y[pick].astype(float).tolist(),
                 "predicted": predictions[pick].astype(float).tolist()}
        return Evaluation(metrics=metrics, rows=len(y), plots=plots), predictions
    classes = pipeline.classes_
    proba = pipeline.predict_proba(X)
    metrics = score(task, classes, y, predictions, proba)
    plots: dict[str, Any] = {
        "labels": [str(c) for c in classes],
        "confusion": confusion_matrix(y, predictions, labels=classes).tolist(),
        "roc": {},
    }
    for i, label in enumerate(classes):
        if len(classes) == 2 and i == 0:
            continue  # binary: one curve, for the positive class
        fpr, tpr, _ = roc_curve(y == label, proba[:, i])
        keep = _sample(len(fpr))
        plots["roc"][str(label)] = {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()}
    return Evaluation(metrics=metrics, rows=len(y), plots=plots), predictions


def _sample(n: int) -> np.ndarray:
    if n <= _MAX_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, _MAX_POINTS).astype(int))

