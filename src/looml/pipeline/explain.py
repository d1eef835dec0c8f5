"""The explanations step: the registered model's explanations on the holdout split, beside its
drift reference, whose permutation importance it reuses (`learn.explanations`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from looml.data.validate import ValidationReport
from looml.pipeline.model import rows_of


def make_explanations(fitted: Any, frame: pl.DataFrame, indices: np.ndarray, report: ValidationReport,
                      reference: str, seed: int) -> str:
    """The explanations' JSON: SHAP values or contributions on the holdout rows, and the
    permutation importance the reference (`reference`, its JSON) computed there."""
    from threadpoolctl import threadpool_limits

    from looml.learn.explanations import summarise_explanations

    X, _ = rows_of(frame, indices, report, "test")
    importance = json.loads(reference).get("importance") or {}
    with threadpool_limits(limits=1, user_api="openmp"):  # no spinning OpenMP threads on a busy machine
        explained = summarise_explanations(fitted, X, report.features, importance, seed) if len(X) else {
            "permutation_importance": importance, "method": None, "reason": "no holdout rows"}
    return json.dumps(explained, separators=(",", ":"))
