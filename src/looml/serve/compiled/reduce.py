"""The steps between the ColumnTransformer and the model: feature selection as a column mask,
PCA as its fitted projection."""

from __future__ import annotations

from typing import Any

import numpy as np

from looml.serve.compiled.base import Step, Unsupported

__all__ = ["compile_reduction"]


def compile_reduction(step: Any, width: int) -> tuple[Step, int]:
    """The compiled step for a fitted selector or PCA fed `width` columns, and its output width."""
    from sklearn.decomposition import PCA
    from sklearn.feature_selection import SelectorMixin

    if getattr(step, "n_features_in_", width) != width:
        raise Unsupported(f"{type(step).__name__} takes {step.n_features_in_} columns; it is fed {width}")
    if isinstance(step, SelectorMixin):
        kept = np.flatnonzero(step.get_support())
        return (lambda X: X[:, kept]), len(kept)
    if isinstance(step, PCA):
        return _pca(step), int(step.n_components_)
    raise Unsupported(f"no compiled form of {type(step).__name__} after the ColumnTransformer")


def _pca(pca: Any) -> Step:
    """`X @ components.T - mean @ components.T`, whitened if fitted so, as `PCA.transform` computes it."""
    components = np.asarray(pca.components_, dtype=np.float64)
    shift = np.asarray(pca.mean_, dtype=np.float64).reshape(1, -1) @ components.T
    scale = np.sqrt(pca.explained_variance_) if pca.whiten else None

    def project(X: np.ndarray) -> np.ndarray:
        out = X @ components.T - shift
        return out / scale if scale is not None else out

    return project
