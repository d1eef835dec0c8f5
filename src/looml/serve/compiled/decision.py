"""Calibration and the decision threshold of a `DecisionModel`, over any compiled scorer: the
inner model's probabilities through the same calibration arrays (`apply_calibration`), the labels
cut at the same threshold (`decide`), so the compiled labels are the pipeline's `predict`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from looml.learn.decision import apply_calibration, decide
from looml.serve.scoring import Batch, Prediction, Scorer

__all__ = ["CompiledDecision"]


@dataclass
class CompiledDecision:
    """A compiled scorer of the inner model, then calibration and the threshold."""

    inner: Scorer
    calibrators: list[tuple[str, np.ndarray]]
    threshold: float | None
    positive: int
    classes: np.ndarray
    name: str = field(init=False)

    def __post_init__(self) -> None:
        parts = [self.inner.name]
        if self.calibrators:
            parts.append(self.calibrators[0][0])
        if self.threshold is not None:
            parts.append("threshold")
        self.name = "+".join(parts)

    def predict(self, batch: Batch) -> Prediction:
        """Score `batch` with the inner scorer; calibrate; decide."""
        raw = self.inner.predict(batch)
        if raw.proba is None or len(raw.proba) == 0:
            return raw
        proba = apply_calibration(raw.proba, self.calibrators)
        return Prediction(labels=decide(proba, self.classes, self.threshold, self.positive), proba=proba)
