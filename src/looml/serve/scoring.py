"""The scoring contract: a batch of raw rows, a prediction, and what scores one; the fitted
pipeline itself is the reference scorer (the compiled forms in `serve.compiled` must match it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["Batch", "PipelineScorer", "Prediction", "Scorer", "batch_rows"]

Batch = dict[str, Sequence[Any] | np.ndarray]


def batch_rows(batch: Batch) -> int:
    """The number of rows in a batch (0 for no columns)."""
    return len(next(iter(batch.values()))) if batch else 0


@dataclass(frozen=True)
class Prediction:
    """What a scorer returns for n rows."""

    labels: np.ndarray  # (n,) predicted class labels, or regression values
    proba: np.ndarray | None = None  # (n, k) class probabilities, columns in `classes` order


class Scorer(Protocol):
    """Anything that scores a batch of raw rows."""

    name: str

    def predict(self, batch: Batch) -> Prediction:
        """Score every row of `batch`."""
        ...


@dataclass
class PipelineScorer:
    """The fitted scikit-learn pipeline itself, through a pandas DataFrame (the reference path)."""

    pipeline: Any
    features: dict[str, str]
    name: str = "pipeline"

    def predict(self, batch: Batch) -> Prediction:
        """Score through `pipeline.predict` / `predict_proba`."""
        import pandas as pd

        n = batch_rows(batch)
        frame = pd.DataFrame({c: batch[c] if c in batch else [None] * n for c in self.features})
        if hasattr(self.pipeline, "predict_proba"):
            from looml.learn.decision import decide, threshold_of

            proba = self.pipeline.predict_proba(frame)
            # the labels as pipeline.predict gives them: at a chosen threshold, else the most probable
            return Prediction(labels=decide(proba, self.pipeline.classes_, *threshold_of(self.pipeline)),
                              proba=proba)
        return Prediction(labels=np.asarray(self.pipeline.predict(frame), dtype=np.float64))
