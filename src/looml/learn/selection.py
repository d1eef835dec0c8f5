"""Feature selection and dimensionality reduction after encoding, from `features.selection` / `pca`.

Order: variance threshold, correlation filter, mutual-information top-k, RFE / RFECV,
model importance, then PCA. Each is fitted inside the pipeline, so on training folds only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.feature_selection import (
    RFE,
    RFECV,
    SelectFromModel,
    SelectorMixin,
    VarianceThreshold,
    mutual_info_classif,
    mutual_info_regression,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.validation import check_is_fitted, validate_data

from looml.spec import FeaturesSpec

__all__ = ["CorrelationFilter", "MutualInfoSelector", "selection_steps"]


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Drop the later feature of each pair whose absolute Pearson correlation exceeds `threshold`.

    Parameters
    ----------
    threshold : float
        In (0, 1]; constant features (undefined correlation) are kept.
    """

    def __init__(self, threshold: float = 0.95) -> None:
        self.threshold = threshold

    def fit(self, X: Any, y: Any = None) -> CorrelationFilter:
        """Learn `support_`, the mask of kept features."""
        X = validate_data(self, X, dtype="float64")
        with np.errstate(all="ignore"):
            r = np.abs(np.corrcoef(X, rowvar=False)) if X.shape[0] > 1 else np.zeros((X.shape[1],) * 2)
        r = np.nan_to_num(np.atleast_2d(r), nan=0.0)
        keep = np.ones(X.shape[1], dtype=bool)
        for j in range(X.shape[1]):
            if keep[j]:
                later = np.arange(X.shape[1]) > j
                keep[later & (r[j] > self.threshold)] = False
        self.support_ = keep
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_


class MutualInfoSelector(SelectorMixin, BaseEstimator):
    """Keep the `k` features of highest mutual information with the target (seeded estimate).

    Parameters
    ----------
    k : int
        Features kept (all when there are fewer).
    task : {"classification", "regression"}
    random_state : int
    """

    def __init__(self, k: int = 10, task: str = "classification", random_state: int = 0) -> None:
        self.k = k
        self.task = task
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> MutualInfoSelector:
        """Learn `scores_` and the kept `support_`."""
        X, y = validate_data(self, X, y, dtype="float64", ensure_min_samples=2)
        estimate = mutual_info_classif if self.task == "classification" else mutual_info_regression
        self.scores_ = estimate(X, y, random_state=self.random_state)
        keep = np.zeros(X.shape[1], dtype=bool)
        keep[np.argsort(-self.scores_, kind="stable")[:self.k]] = True
        self.support_ = keep
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


def selection_steps(engineering: FeaturesSpec, task: str, seed: int) -> list[tuple[str, Any]]:
    """The pipeline steps for `features.selection` and `features.pca`, in order (none by default)."""
    chosen = engineering.selection
    classify = task == "classification"
    steps: list[tuple[str, Any]] = []
    if chosen.variance_threshold is not None:
        steps.append(("variance", VarianceThreshold(chosen.variance_threshold)))
    if chosen.correlation_threshold is not None:
        steps.append(("correlation", CorrelationFilter(chosen.correlation_threshold)))
    if chosen.mutual_info_k is not None:
        steps.append(("mutual_info", MutualInfoSelector(chosen.mutual_info_k, task, seed)))
    if chosen.rfe is not None:
        linear = LogisticRegression(max_iter=1000) if classify else Ridge()
        rfe = (RFECV(linear, step=0.1, min_features_to_select=chosen.rfe.n_features, cv=3)
               if chosen.rfe.cv else RFE(linear, n_features_to_select=chosen.rfe.n_features, step=0.1))
        steps.append(("rfe", rfe))
    if chosen.model_importance is not None:
        trees = (ExtraTreesClassifier if classify else ExtraTreesRegressor)(
            n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1)
        steps.append(("importance", SelectFromModel(trees, threshold=chosen.model_importance.threshold)))
    if engineering.pca is not None:
        steps.append(("pca", PCA(n_components=engineering.pca.components, random_state=seed)))
    return steps
