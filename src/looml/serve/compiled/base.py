"""What every compiled form shares: the scorer, its branches, the step and model types."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from looml.serve.compiled.coerce import coerce_column
from looml.serve.scoring import Batch, Prediction, batch_rows

__all__ = ["TOLERANCE", "CompiledScorer", "Model", "Step", "Unsupported", "log"]


TOLERANCE = 1e-9  # largest accepted difference of a probability, or of a regression value per unit
log = logging.getLogger("looml.serve")

Step = Callable[[Any], np.ndarray]  # one fitted transformer, as a function of a branch's columns
Model = Callable[[np.ndarray], Prediction]


class Unsupported(Exception):
    """A step or setting the compiler does not reproduce; the message says which."""


# -- the scorer ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Branch:
    """One ColumnTransformer branch: its columns (feature positions), their kind and its steps."""

    columns: list[int]
    kind: str  # numeric | categorical | datetime
    steps: list[Step]

    def transform(self, coerced: list[np.ndarray]) -> np.ndarray:
        data: Any = [coerced[i] for i in self.columns]
        steps = self.steps
        if steps and hasattr(steps[0], "on_columns"):  # a step shared by vote members (SharedText)
            data, steps = steps[0].on_columns(data), steps[1:]
        elif self.kind != "datetime":
            data = np.column_stack(data)
        for step in steps:
            data = step(data)
        return data


@dataclass
class CompiledScorer:
    """Scores a Batch with numpy and the compiled estimator: no DataFrame, no per-call checks."""

    name: str
    features: dict[str, str]
    branches: list[_Branch]
    reductions: list[Step]  # selection and PCA, between the columns and the model
    model: Model
    classes: np.ndarray | None  # None for a regressor

    def predict(self, batch: Batch) -> Prediction:
        """Score every row of `batch`; a missing column is treated as all missing."""
        n = batch_rows(batch)
        if n == 0:
            if self.classes is None:
                return Prediction(labels=np.empty(0))
            return Prediction(labels=self.classes[:0], proba=np.empty((0, len(self.classes))))
        return self.predict_coerced(self.coerce(batch, n))

    def coerce(self, batch: Batch, n: int) -> list[np.ndarray]:
        """The batch's feature columns as the coercer makes them (what the members of a vote share)."""
        return [coerce_column(batch.get(name), kind, n) for name, kind in self.features.items()]

    def predict_coerced(self, coerced: list[np.ndarray]) -> Prediction:
        """Score coerced columns (at least one row)."""
        X = np.hstack([branch.transform(coerced) for branch in self.branches])
        for reduce in self.reductions:
            X = reduce(X)
        return self.model(np.ascontiguousarray(X, dtype=np.float64))
