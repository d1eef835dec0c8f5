"""Row-level training work around the model: duplicates, outlier rows, class imbalance, target transform.

`wrap_model` puts the model inside `TrainingRows` (rows dropped or resampled before each fit,
so inside training folds only; predictions are the inner model's) and, for a regression target
transform, inside a `TransformedTargetRegressor`. After the final fit `finalize` replaces
`TrainingRows` by its fitted model, which predicts identically.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import skew
from sklearn.base import BaseEstimator, MetaEstimatorMixin, TransformerMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PowerTransformer
from sklearn.utils import get_tags
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, has_fit_parameter, validate_data

from looml.errors import Problem, SpecError
from looml.spec import PreprocessingSpec

__all__ = ["TargetTransform", "TrainingRows", "finalize", "takes_sample_weight", "wrap_model"]

_SKEWED = 0.75  # |sample skewness| above which `auto` transforms a regression target


def wrap_model(estimator: BaseEstimator, preprocessing: PreprocessingSpec, task: str,
               seed: int) -> BaseEstimator:
    """The model step with the spec's row-level training work; `estimator` itself when none applies."""
    imbalance = preprocessing.imbalance if task == "classification" else "none"
    weights = False
    if imbalance == "class_weight":
        if "class_weight" in estimator.get_params(deep=False):
            estimator = clone(estimator).set_params(class_weight="balanced")
        elif _takes_sample_weight(estimator):
            weights = True
        else:
            raise SpecError(Problem(
                loc="preprocessing.imbalance", value="class_weight",
                message=f"{type(estimator).__name__} takes neither class weights nor sample weights",
                fix="use imbalance: oversample or undersample with this model"))
    resample = imbalance if imbalance in ("oversample", "undersample") else "none"
    if preprocessing.drop_duplicates or preprocessing.outlier_rows != "none" or resample != "none" or weights:
        estimator = TrainingRows(estimator, drop_duplicates=preprocessing.drop_duplicates,
                                 outlier_rows=preprocessing.outlier_rows, resample=resample,
                                 balanced_weights=weights, random_state=seed)
    if task == "regression" and preprocessing.target_transform != "none":
        estimator = TransformedTargetRegressor(
            regressor=estimator, transformer=TargetTransform(preprocessing.target_transform),
            check_inverse=False)
    return estimator


def _takes_sample_weight(estimator: BaseEstimator) -> bool:
    """`fit` names `sample_weight`, or passes keyword arguments on (as XGBLabelClassifier does)."""
    parameters = inspect.signature(estimator.fit).parameters.values()
    return has_fit_parameter(estimator, "sample_weight") or any(p.kind == p.VAR_KEYWORD for p in parameters)


def takes_sample_weight(model: BaseEstimator) -> bool:
    """Whether the model step (through looml's wrappers) passes `sample_weight` to a model whose
    fit takes it: rows are weighted there, and left unweighted by a model that cannot."""
    if isinstance(model, TransformedTargetRegressor):
        return takes_sample_weight(model.regressor)
    if isinstance(model, TrainingRows):
        return takes_sample_weight(model.estimator)
    return _takes_sample_weight(model)


def finalize(pipeline: Pipeline) -> Pipeline:
    """Replace a fitted `TrainingRows` model step by its fitted inner model (in place); return the pipeline.

    The target-transform wrapper stays: it is part of how predictions are made.
    """
    name, model = pipeline.steps[-1]
    if isinstance(model, TrainingRows):
        pipeline.steps[-1] = (name, model.estimator_)
    elif isinstance(model, TransformedTargetRegressor) and isinstance(model.regressor_, TrainingRows):
        model.regressor_ = model.regressor_.estimator_
        model.regressor = model.regressor.estimator
    return pipeline


def _inner_has(method: str) -> Any:
    return lambda self: hasattr(self.estimator, method)


class TrainingRows(MetaEstimatorMixin, BaseEstimator):
    """Fit `estimator` on cleaned or resampled training rows; predict with it unchanged.

    Parameters
    ----------
    estimator : estimator
        The model.
    drop_duplicates : bool
        Drop rows equal to an earlier row in features and target.
    outlier_rows : {"none", "isolation_forest"}
        Drop the rows an isolation forest (fitted on these rows) calls outliers.
    resample : {"none", "oversample", "undersample"}
        Randomly repeat rows of the smaller classes up to the largest class, or keep a random
        subset of each class as large as the smallest class.
    balanced_weights : bool
        Pass `sample_weight` inversely proportional to class frequency.
    random_state : int
    """

    def __init__(self, estimator: Any, drop_duplicates: bool = False, outlier_rows: str = "none",
                 resample: str = "none", balanced_weights: bool = False, random_state: int = 0) -> None:
        self.estimator = estimator
        self.drop_duplicates = drop_duplicates
        self.outlier_rows = outlier_rows
        self.resample = resample
        self.balanced_weights = balanced_weights
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TrainingRows:
        """Choose the rows (`n_rows_used_`), then fit a clone of the model (`estimator_`), with the
        chosen rows' `sample_weight` (times the balanced class weights, if those are asked for)."""
        X, y = validate_data(self, X, y, ensure_all_finite=self._finite(), dtype="numeric",
                             multi_output=get_tags(self.estimator).target_tags.multi_output)
        rows = np.arange(len(X))
        if self.drop_duplicates:
            rows = rows[~pd.DataFrame(X).assign(_y=list(map(str, y))).duplicated().to_numpy()]
        if self.outlier_rows == "isolation_forest" and len(rows) > 2:
            forest = IsolationForest(random_state=self.random_state, n_jobs=1).fit(X[rows])
            inliers = rows[forest.predict(X[rows]) == 1]
            rows = inliers if len(inliers) else rows
        if self.resample != "none":
            rows = _resample(rows, y, self.resample, np.random.default_rng(self.random_state))
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, X)[rows]
        if self.balanced_weights:
            balanced = compute_sample_weight("balanced", y[rows])
            weights = balanced if weights is None else weights * balanced
        fit_params = {} if weights is None else {"sample_weight": weights}
        self.estimator_ = clone(self.estimator).fit(X[rows], y[rows], **fit_params)
        self.n_rows_used_ = len(rows)
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The fitted model's predictions."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(
            validate_data(self, X, ensure_all_finite=self._finite(), dtype="numeric", reset=False))

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """The fitted model's class probabilities."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(
            validate_data(self, X, ensure_all_finite=self._finite(), dtype="numeric", reset=False))

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """The fitted model's decision function."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(
            validate_data(self, X, ensure_all_finite=self._finite(), dtype="numeric", reset=False))

    def score(self, X: Any, y: Any) -> float:
        """The fitted model's default score."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.score(validate_data(self, X, ensure_all_finite=self._finite(),
                                                   dtype="numeric", reset=False), y)

    def _finite(self) -> bool | str:
        """NaN is let through when the model takes it and no isolation forest is fitted on the rows."""
        return "allow-nan" if self.__sklearn_tags__().input_tags.allow_nan else True

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.target_tags = inner.target_tags
        tags.input_tags.allow_nan = inner.input_tags.allow_nan and self.outlier_rows == "none"
        return tags


def _resample(rows: np.ndarray, y: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    labels = np.asarray(y)[rows]
    classes, counts = np.unique(labels, return_counts=True)
    size = counts.max() if how == "oversample" else counts.min()
    picked = []
    for label, count in zip(classes, counts, strict=True):
        members = rows[labels == label]
        if how == "oversample":
            extra = rng.choice(members, size=size - count, replace=True) if size > count else members[:0]
            picked.append(np.concatenate([members, extra]))
        else:
            picked.append(rng.choice(members, size=size, replace=False))
    return np.sort(np.concatenate(picked))


class TargetTransform(TransformerMixin, BaseEstimator):
    """A regression target's transform, for `TransformedTargetRegressor`.

    Parameters
    ----------
    method : {"log", "yeo-johnson", "auto"}
        log: log1p (values must be > -1); auto: log1p for a right-skewed target above -1,
        Yeo-Johnson for another skewed target, none when |skewness| <= 0.75.
    """

    def __init__(self, method: str = "auto") -> None:
        self.method = method

    def fit(self, X: Any, y: Any = None) -> TargetTransform:
        """Choose `method_` ("log", "yeo-johnson" or "none") and fit it."""
        X = validate_data(self, X, dtype="float64")
        method = self.method
        if method == "auto":
            shape = float(np.nan_to_num(skew(X[:, 0]))) if len(X) > 2 else 0.0
            method = ("none" if abs(shape) <= _SKEWED else
                      "log" if shape > 0 and X.min() > -1 else "yeo-johnson")
        if method == "log" and X.min() <= -1:
            raise ValueError(f"a log target transform needs values > -1; the smallest is {X.min():g}")
        if method not in ("log", "yeo-johnson", "none"):
            raise ValueError(f"method must be 'log', 'yeo-johnson' or 'auto'; got {self.method!r}")
        self.method_ = method
        self.power_ = PowerTransformer(method="yeo-johnson").fit(X) if method == "yeo-johnson" else None
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The transformed values."""
        check_is_fitted(self, "method_")
        X = validate_data(self, X, dtype="float64", reset=False)
        if self.method_ == "log":
            return np.log1p(X)
        return self.power_.transform(X) if self.power_ is not None else X

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Back to the target's scale."""
        check_is_fitted(self, "method_")
        X = validate_data(self, X, dtype="float64", reset=False)
        if self.method_ == "log":
            return np.expm1(X)
        return self.power_.inverse_transform(X) if self.power_ is not None else X

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The input names (one target column)."""
        check_is_fitted(self, "method_")
        return np.asarray(input_features if input_features is not None
                          else [f"x{i}" for i in range(self.n_features_in_)], dtype=object)
