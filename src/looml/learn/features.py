"""Preprocessing as scikit-learn estimators: one ColumnTransformer by column kind.

`SchemaCoercer` comes first in every pipeline, so the fitted pipeline takes raw rows
(strings for numbers, None for missing, extra columns) exactly as training saw them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted

from looml.spec import PreprocessingSpec

__all__ = ["DatetimeParts", "SchemaCoercer", "build_preprocessor"]

MISSING_CATEGORY = "(missing)"


class SchemaCoercer(TransformerMixin, BaseEstimator):
    """Select the feature columns and coerce each to its training kind.

    Parameters
    ----------
    columns : dict of column name -> "numeric" | "categorical" | "datetime"
    """

    def __init__(self, columns: dict[str, str] | None = None) -> None:
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: Any = None) -> SchemaCoercer:
        """Remember the column kinds (learned state: `columns_`)."""
        X = _frame(X)
        if X.shape[0] == 0:
            raise ValueError(f"SchemaCoercer needs at least one row; got shape {X.shape}")
        self.columns_ = dict(self.columns) if self.columns is not None else {
            c: "numeric" if pd.api.types.is_numeric_dtype(X[c]) else "categorical" for c in X.columns
        }
        self.n_features_in_ = X.shape[1]
        if isinstance(X.columns[0], str):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return a new frame with exactly the feature columns, each coerced.

        A DataFrame may carry extra columns (they are ignored); an unnamed array must
        have exactly the training columns, in order.
        """
        check_is_fitted(self, "columns_")
        named = isinstance(X, pd.DataFrame)
        X = _frame(X)
        if not named and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but SchemaCoercer is expecting "
                             f"{self.n_features_in_} features as input")
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise ValueError(f"input is missing feature column(s): {', '.join(map(repr, missing))}")
        out = {}
        for name, kind in self.columns_.items():
            out[name] = _coerce(X[name], kind)
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The feature column names, in training order."""
        check_is_fitted(self, "columns_")
        return np.asarray(list(self.columns_), dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []  # returns a mixed-type DataFrame
        return tags


def _frame(X: Any) -> pd.DataFrame:
    """A DataFrame as it is; anything else checked as a dense 2D table (rows x columns)."""
    if isinstance(X, pd.DataFrame):
        return X
    return pd.DataFrame(check_array(X, dtype=None, ensure_all_finite=False, accept_sparse=False))


def _coerce(values: pd.Series, kind: str) -> pd.Series:
    if kind == "numeric":
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            values = pd.to_numeric(values.astype(object).where(values.notna(), np.nan), errors="coerce")
        return values.astype("float64")
    if kind == "datetime":
        if not pd.api.types.is_datetime64_any_dtype(values):
            # utc=True: times with different offsets (a daylight-saving change) in one column
            # become UTC instant by instant; naive times are read as UTC, as before.
            values = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return values
    text = values.astype(object).where(values.notna(), np.nan)
    if pd.api.types.infer_dtype(text, skipna=True) in ("string", "empty"):
        return text  # the common case, without a Python call per value
    return text.map(_category, na_action="ignore").astype(object)


def _category(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


class DatetimeParts(TransformerMixin, BaseEstimator):
    """Turn datetime columns into numeric parts (year, month, day, ...); NaT becomes NaN.

    Parameters
    ----------
    parts : list of str
        Any of year, month, day, dayofweek, dayofyear, hour, minute.
    """

    def __init__(self, parts: tuple[str, ...] = ("year", "month", "day", "dayofweek", "hour")) -> None:
        self.parts = parts

    def fit(self, X: pd.DataFrame, y: Any = None) -> DatetimeParts:
        """Remember the input columns."""
        frame = _frame(X)
        if frame.shape[0] == 0:
            raise ValueError(f"DatetimeParts needs at least one row; got shape {frame.shape}")
        self.columns_ = list(frame.columns)
        self.n_features_in_ = frame.shape[1]
        if frame.shape[1] and isinstance(frame.columns[0], str):
            self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """A float array with one column per (input column, part)."""
        check_is_fitted(self, "columns_")
        frame = _frame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {frame.shape[1]} features, but DatetimeParts is expecting "
                             f"{self.n_features_in_} features as input")
        blocks = []
        for name in frame.columns:
            stamps = pd.to_datetime(frame[name], errors="coerce")
            for part in self.parts:
                blocks.append(getattr(stamps.dt, part).astype("float64").to_numpy())
        return np.column_stack(blocks) if blocks else np.empty((len(frame), 0))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaT and unparsable values become NaN parts
        tags.input_tags.string = True  # date strings are parsed
        return tags

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """`column_part` for each output column."""
        check_is_fitted(self, "columns_")
        return np.asarray([f"{c}_{p}" for c in self.columns_ for p in self.parts], dtype=object)


_SCALERS = {"standard": StandardScaler, "robust": RobustScaler, "minmax": MinMaxScaler}


def build_preprocessor(features: dict[str, str], spec: PreprocessingSpec) -> Pipeline:
    """`SchemaCoercer` followed by one ColumnTransformer branch per column kind."""
    by_kind = {kind: [c for c, k in features.items() if k == kind]
               for kind in ("numeric", "categorical", "datetime")}
    numeric_steps: list[tuple[str, Any]] = [
        ("impute", SimpleImputer(strategy=spec.numeric.impute,
                                 add_indicator=spec.numeric.missing_indicator, keep_empty_features=True)),
    ]
    if spec.numeric.scale != "none":
        numeric_steps.append(("scale", _SCALERS[spec.numeric.scale]()))
    branches = [
        ("numeric", Pipeline(numeric_steps), by_kind["numeric"]),
        ("categorical", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
            ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                     min_frequency=spec.categorical.min_frequency,
                                     max_categories=spec.categorical.max_categories,
                                     sparse_output=False, dtype=np.float32)),
        ]), by_kind["categorical"]),
        ("datetime", Pipeline([
            ("parts", DatetimeParts(parts=tuple(spec.datetime.parts))),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            *([("scale", _SCALERS[spec.numeric.scale]())] if spec.numeric.scale != "none" else []),
        ]), by_kind["datetime"]),
    ]
    columns = ColumnTransformer([b for b in branches if b[2]], remainder="drop", sparse_threshold=0.0)
    return Pipeline([("coerce", SchemaCoercer(columns=dict(features))), ("columns", columns)])
