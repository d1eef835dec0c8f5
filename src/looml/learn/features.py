"""Preprocessing as scikit-learn estimators: one ColumnTransformer by column kind.

`build_preprocessor` assembles the feature steps of the one pipeline from the spec's
`preprocessing` and `features` sections; the custom transformers live in
`looml.learn.transformers`, the selection steps in `looml.learn.selection` and the row-level
training work around the model in `looml.learn.rows`.

`SchemaCoercer` comes first in every pipeline, so the fitted pipeline takes raw rows
(strings for numbers, None for missing, extra columns) exactly as training saw them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (makes IterativeImputer importable)
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    RobustScaler,
    StandardScaler,
    TargetEncoder,
)
from sklearn.utils.validation import check_array, check_is_fitted

from looml.learn.rows import finalize, wrap_model
from looml.learn.selection import selection_steps
from looml.learn.transformers import (
    CardinalitySelector,
    CyclicParts,
    DerivedColumns,
    OutlierClipper,
    TextTfidf,
    date_part,
)
from looml.spec import CategoricalSpec, DatetimeSpec, FeaturesSpec, NumericSpec, PreprocessingSpec

__all__ = ["DatetimeParts", "SchemaCoercer", "ambiguous_date", "build_preprocessor", "category_text",
           "finalize", "iso_stamps", "wrap_model"]

MISSING_CATEGORY = "(missing)"


class SchemaCoercer(TransformerMixin, BaseEstimator):
    """Select the feature columns and coerce each to its training kind.

    Parameters
    ----------
    columns : dict of column name -> "numeric" | "categorical" | "datetime" | "text"
        Text is coerced as categorical values are (strings; None stays missing).
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
    return text.map(category_text, na_action="ignore").astype(object)


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?")
_RANGE = (np.datetime64("1678-01-01"), np.datetime64("2262-01-01"))  # where pandas' parse never overflows


def iso_stamps(values: list[Any]) -> np.ndarray | None:
    """Naive ISO 8601 dates and times (and None) parsed by numpy, as the coercer reads them (naive
    = UTC); None for anything else (offsets, other formats, impossible dates: the exact path)."""
    if not all(v is None or (type(v) is str and _ISO.fullmatch(v)) for v in values):
        return None
    try:
        stamps = np.array(["NaT" if v is None else v for v in values], dtype="datetime64[us]")
    except ValueError:  # 2024-02-30: pandas makes it NaT
        return None
    present = stamps[~np.isnat(stamps)]
    if present.size and (present.min() < _RANGE[0] or present.max() >= _RANGE[1]):
        return None
    return stamps


_NUMERIC_DATE = re.compile(r"\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T].*)?")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def ambiguous_date(text: str) -> tuple[str, str] | None:
    """The two readings of a numeric date whose day and month can be swapped ("01/02/2023": 2
    January month first, 1 February day first), else None. pandas reads such text month first
    where it can and day first where it must, so one column could mix both readings."""
    found = _NUMERIC_DATE.fullmatch(text)
    if found is None:
        return None
    first, second = int(found[1]), int(found[3])
    if first == second or not (1 <= first <= 12 and 1 <= second <= 12):
        return None
    return f"{second} {_MONTHS[first - 1]}", f"{first} {_MONTHS[second - 1]}"


def category_text(value: Any) -> str:
    """The text a category value is known by, the one rule for the coercer, the server's fast
    path and checks, the prediction log and the schema's domains: strings as they are, booleans
    as true / false, a whole number without a decimal point whatever its type (pandas reads an
    integer column with a gap as floats: 1 and 1.0 are both "1"), other numbers as Python writes
    them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer() and abs(value) < 2**63:
        return str(int(value))
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
                blocks.append(date_part(stamps, part))
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
_CYCLIC = ("month", "dayofweek", "dayofyear", "hour", "minute")


def build_preprocessor(features: dict[str, str], preprocessing: PreprocessingSpec,
                       engineering: FeaturesSpec | None = None, task: str = "classification",
                       seed: int = 0) -> Pipeline:
    """Every feature step of the one pipeline, before the model.

    `coerce` (SchemaCoercer) first, then `derived` (when the spec has derived columns), then
    `columns`: a ColumnTransformer with one branch per column kind (and per group of columns
    sharing overridden options), plus polynomial and binning branches; then the selection and
    PCA steps. `features` maps each column to numeric | categorical | datetime | text.
    """
    engineering = engineering or FeaturesSpec()
    numeric_like = {**features, **{d.name: "numeric" for d in engineering.derived}}
    branches: list[tuple[str, Any, Any]] = []
    for kind, options, columns in _groups(numeric_like, preprocessing):
        name = kind if options is None else f"{kind}_{len(branches)}"
        branches += _branches(name, kind, options or {}, columns, preprocessing, task, seed)
    branches += _engineered(engineering, preprocessing.numeric.scale, seed)
    columns = ColumnTransformer([b for b in branches if _selects(b[2])], remainder="drop",
                                sparse_threshold=0.0)
    steps: list[tuple[str, Any]] = [("coerce", SchemaCoercer(columns=dict(features)))]
    if engineering.derived:
        steps.append(("derived", DerivedColumns(tuple((d.name, d.expr) for d in engineering.derived))))
    steps.append(("columns", columns))
    return Pipeline([*steps, *selection_steps(engineering, task, seed)])


def _groups(features: dict[str, str], preprocessing: PreprocessingSpec) -> list[tuple[str, Any, list[str]]]:
    """(kind, overridden options or None, columns): the default groups first, in kind order."""
    groups: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
    for column, kind in features.items():
        override = preprocessing.columns.get(column)
        options = override.options(kind) if override is not None else {}
        groups.setdefault((kind, json.dumps(options, sort_keys=True)), (options, []))[1].append(column)
    order = ("numeric", "categorical", "datetime", "text")
    ranked = sorted(groups.items(), key=lambda item: (bool(item[1][0]), order.index(item[0][0])))
    return [(kind, options or None, columns) for (kind, _), (options, columns) in ranked]


def _selects(columns: Any) -> bool:
    return callable(columns) or bool(len(columns))


def _branches(name: str, kind: str, options: dict[str, Any], columns: list[str],
              preprocessing: PreprocessingSpec, task: str, seed: int) -> list[tuple[str, Any, Any]]:
    if kind == "numeric":
        return [(name, _numeric(preprocessing.numeric.model_copy(update=options), seed), columns)]
    if kind == "categorical":
        return _categorical(name, preprocessing.categorical.model_copy(update=options), columns, task, seed)
    if kind == "text":
        text = preprocessing.text
        return [(name, TextTfidf(max_features=text.max_features, ngram_max=text.ngram_max,
                                 min_df=text.min_df, components=text.components, random_state=seed),
                 columns)]
    return _datetime(name, preprocessing.datetime, preprocessing.numeric.scale, columns)


def _numeric(spec: NumericSpec, seed: int) -> Pipeline:
    """clip -> impute -> power -> scale, each as configured."""
    steps: list[tuple[str, Any]] = []
    if spec.clip != "none":
        steps.append(("clip", OutlierClipper(method=spec.clip, threshold=spec.clip_threshold)))
    steps.append(("impute", _imputer(spec, seed)))
    if spec.power == "yeo-johnson":
        steps.append(("power", PowerTransformer(method="yeo-johnson", standardize=False)))
    if spec.scale != "none":
        steps.append(("scale", _SCALERS[spec.scale]()))
    return Pipeline(steps)


def _imputer(spec: NumericSpec, seed: int) -> Any:
    indicator = spec.missing_indicator
    if spec.impute == "iterative":
        # keep_empty_features=True fails on read-only input in scikit-learn 1.9 (it writes into X)
        return IterativeImputer(random_state=seed, add_indicator=indicator)
    if spec.impute == "knn":
        return KNNImputer(add_indicator=indicator, keep_empty_features=True)
    fill = {"fill_value": spec.fill_value} if spec.impute == "constant" else {}
    return SimpleImputer(strategy=spec.impute, add_indicator=indicator, keep_empty_features=True, **fill)


def _categorical(name: str, spec: CategoricalSpec, columns: list[str], task: str,
                 seed: int) -> list[tuple[str, Any, Any]]:
    """One-hot, ordinal or target encoding; `auto` splits the columns by distinct values when fitted."""
    impute = ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY))
    onehot = Pipeline([impute, ("onehot", OneHotEncoder(
        handle_unknown="infrequent_if_exist", min_frequency=spec.min_frequency,
        max_categories=spec.max_categories, sparse_output=False, dtype=np.float32))])
    # Cross-fitted in fit_transform; plain (seeded) folds fit every target type. A regression
    # target is continuous even when its values are integers (grams, counts): scikit-learn's
    # 'auto' reads those as multiclass and writes one column per feature and distinct value.
    target_type = "continuous" if task == "regression" else "auto"
    target = Pipeline([impute, ("target", TargetEncoder(target_type=target_type,
                                                        cv=KFold(5, shuffle=True, random_state=seed)))])
    if spec.encoding == "onehot":
        return [(name, onehot, columns)]
    if spec.encoding == "target":
        return [(name, target, columns)]
    if spec.encoding == "ordinal":
        return [(name, Pipeline([impute, ("ordinal", OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, min_frequency=spec.min_frequency,
            max_categories=spec.max_categories, dtype=np.float32))]), columns)]
    return [(name, onehot, CardinalitySelector(columns, spec.high_cardinality)),
            (f"{name}_target", target, CardinalitySelector(columns, spec.high_cardinality, many=True))]


def _datetime(name: str, spec: DatetimeSpec, scale: str, columns: list[str]) -> list[tuple[str, Any, Any]]:
    scaler = [("scale", _SCALERS[scale]())] if scale != "none" else []
    branches = [(name, Pipeline([("parts", DatetimeParts(parts=tuple(spec.parts))),
                                 ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                                 *scaler]), columns)]
    cyclic = tuple(p for p in spec.parts if p in _CYCLIC)
    if spec.cyclic and cyclic:
        branches.append((f"{name}_cyclic", Pipeline([
            ("cyclic", CyclicParts(parts=cyclic)),
            ("impute", SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True)),
        ]), columns))
    return branches


def _engineered(engineering: FeaturesSpec, scale: str, seed: int) -> list[tuple[str, Any, Any]]:
    """The polynomial and binning branches (next to the columns' own branches)."""
    branches: list[tuple[str, Any, Any]] = []
    median = ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
    if engineering.polynomial is not None:
        poly = engineering.polynomial
        branches.append(("polynomial", Pipeline([
            median,
            ("polynomial", PolynomialFeatures(degree=poly.degree, interaction_only=poly.interaction_only,
                                              include_bias=False)),
            *([("scale", _SCALERS[scale]())] if scale != "none" else []),
        ]), list(poly.columns)))
    if engineering.binning is not None:
        bins = engineering.binning
        branches.append(("binning", Pipeline([
            median,
            ("bins", KBinsDiscretizer(n_bins=bins.bins, encode="onehot-dense", strategy=bins.strategy,
                                      quantile_method="averaged_inverted_cdf", random_state=seed)),
        ]), list(bins.columns)))
    return branches
