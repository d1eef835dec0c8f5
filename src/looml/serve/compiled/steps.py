"""The fitted ColumnTransformer's branches as numpy steps: clipping, imputers, the power
transform, scalers, polynomial terms, bins, one-hot and target-encoding tables, TF-IDF text
features, datetime parts and their cyclic sin / cos."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from looml.learn.transformers import PERIODS
from looml.serve.compiled.base import Step, Unsupported, _Branch
from looml.serve.compiled.text import SharedText

__all__ = ["compile_branches"]


def compile_branches(columns: Any, features: dict[str, str]) -> list[_Branch]:
    from sklearn.pipeline import Pipeline

    if getattr(columns, "sparse_output_", False):
        raise Unsupported("the ColumnTransformer returns a sparse matrix")
    names = list(features)
    branches = []
    for name, transformer, selected in columns.transformers_:
        selected = list(selected)
        if not selected:  # the remainder, when the branches take every column
            continue
        if isinstance(transformer, str):
            if transformer == "drop":
                continue
            raise Unsupported(f"ColumnTransformer branch {name!r} is {transformer!r}")
        if not all(isinstance(c, str) and c in features for c in selected):
            raise Unsupported(f"ColumnTransformer branch {name!r} does not select feature columns by name")
        kinds = {features[c] for c in selected}
        if len(kinds) != 1:
            raise Unsupported(f"ColumnTransformer branch {name!r} mixes column kinds {sorted(kinds)}")
        kind = kinds.pop()
        fitted = [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
        steps, data = [], kind
        for step in fitted:
            compiled, data = _step(step, data, selected)
            steps.append(compiled)
        if data != "numeric":
            raise Unsupported(f"ColumnTransformer branch {name!r} does not end in numbers")
        branches.append(_Branch(columns=[names.index(c) for c in selected], kind=kind, steps=steps))
    return branches


def _step(step: Any, data: str, columns: list[str]) -> tuple[Step, str]:
    """The compiled step and the kind of data it returns, for a step fed `data`."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import (
        KBinsDiscretizer,
        MinMaxScaler,
        OneHotEncoder,
        PolynomialFeatures,
        PowerTransformer,
        RobustScaler,
        StandardScaler,
        TargetEncoder,
    )

    from looml.learn.features import DatetimeParts
    from looml.learn.transformers import CyclicParts, OutlierClipper, TextTfidf

    if isinstance(step, DatetimeParts | CyclicParts) and data == "datetime":
        if list(step.columns_) != columns:
            raise Unsupported(f"{type(step).__name__} was fitted on other columns")
        if isinstance(step, CyclicParts):
            return _cyclic_parts(tuple(step.parts)), "numeric"
        return _datetime_parts(tuple(step.parts)), "numeric"
    if isinstance(step, SimpleImputer) and data in ("numeric", "categorical"):
        return _imputer(step, data), data
    # fitted step type -> (the data kind it takes, its compiled form); every one returns numbers
    forms: list[tuple[Any, str, Callable[[Any], Step]]] = [
        (StandardScaler | RobustScaler | MinMaxScaler, "numeric", _scaler),
        (OutlierClipper, "numeric", lambda clip: lambda X: np.clip(X, clip.lower_, clip.upper_)),
        (PowerTransformer, "numeric", _power), (PolynomialFeatures, "numeric", _polynomial),
        (KBinsDiscretizer, "numeric", _bins), (OneHotEncoder, "categorical", _one_hot),
        (TargetEncoder, "categorical", _target_encoder), (TextTfidf, "text", SharedText),
    ]
    for kind, takes, form in forms:
        if isinstance(step, kind) and data == takes:
            return form(step), "numeric"
    raise Unsupported(f"no compiled form of {type(step).__name__} on {data} columns")


def _imputer(imputer: Any, data: str) -> Step:
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise Unsupported(f"SimpleImputer with missing_values={missing!r}")
    statistics = imputer.statistics_
    if data == "numeric" and np.isnan(statistics.astype(np.float64)).any():
        raise Unsupported("SimpleImputer that drops an all-missing column")
    if data == "categorical" and pd.isna(statistics).any():
        raise Unsupported("SimpleImputer that drops an all-missing column")
    if imputer.add_indicator and data != "numeric":
        raise Unsupported("SimpleImputer with missing indicators on categorical columns")
    indicator = imputer.indicator_.features_ if imputer.add_indicator else None

    def impute(X: np.ndarray) -> np.ndarray:
        if data == "numeric":
            mask = np.isnan(X)
            if np.isinf(X).any():  # as SimpleImputer's input check refuses it
                raise ValueError("Input X contains infinity or a value too large for dtype('float64').")
            X = np.where(mask, statistics, X)
        else:
            mask = pd.isna(X)
            X = np.where(mask, statistics, X)
        if indicator is None:
            return X
        return np.hstack([X, mask[:, indicator].astype(np.float64)])

    return impute


def _scaler(scaler: Any) -> Step:
    from sklearn.preprocessing import MinMaxScaler, RobustScaler

    if isinstance(scaler, MinMaxScaler):
        scale, low, clip, bounds = scaler.scale_, scaler.min_, scaler.clip, scaler.feature_range

        def minmax(X: np.ndarray) -> np.ndarray:
            X = X * scale + low
            return np.clip(X, bounds[0], bounds[1]) if clip else X

        return minmax
    if isinstance(scaler, RobustScaler):
        center = scaler.center_ if scaler.with_centering else None
        divide = scaler.scale_ if scaler.with_scaling else None
    else:
        center = scaler.mean_ if scaler.with_mean else None
        divide = scaler.scale_ if scaler.with_std else None

    def standardize(X: np.ndarray) -> np.ndarray:
        if center is not None:
            X = X - center
        return X / divide if divide is not None else X

    return standardize


def _power(power: Any) -> Step:
    """Yeo-Johnson with the fitted lambdas, then its standardizing scaler if any; NaN stays NaN."""
    if power.method != "yeo-johnson":
        raise Unsupported(f"PowerTransformer with method={power.method!r}")
    lambdas = np.asarray(power.lambdas_, dtype=np.float64)
    scaler = _scaler(power._scaler) if power.standardize else None
    tiny = np.spacing(1.0)

    def yeo_johnson(X: np.ndarray) -> np.ndarray:
        out = np.full_like(X, np.nan)
        with np.errstate(all="ignore"):
            for j, lam in enumerate(lambdas):
                x = X[:, j]
                pos, neg = x >= 0, x < 0
                out[pos, j] = np.log1p(x[pos]) if abs(lam) < tiny else (np.power(x[pos] + 1, lam) - 1) / lam
                out[neg, j] = (-np.log1p(-x[neg]) if abs(lam - 2) <= tiny
                               else -(np.power(-x[neg] + 1, 2 - lam) - 1) / (2 - lam))
        return scaler(out) if scaler is not None else out

    return yeo_johnson


def _polynomial(poly: Any) -> Step:
    """Each output column the product of the inputs raised to its row of `powers_`."""
    powers = np.asarray(poly.powers_)

    def polynomial(X: np.ndarray) -> np.ndarray:
        out = np.ones((X.shape[0], len(powers)))
        for i, row in enumerate(powers):
            for j in np.flatnonzero(row):
                for _ in range(int(row[j])):
                    out[:, i] *= X[:, j]
        return out

    return polynomial


def _bins(bins: Any) -> Step:
    """KBinsDiscretizer: the bin by its inner edges (`searchsorted`, right), one-hot or ordinal."""
    if bins.encode not in ("onehot-dense", "ordinal"):
        raise Unsupported(f"KBinsDiscretizer with encode={bins.encode!r}")
    edges = [np.asarray(e, dtype=np.float64)[1:-1] for e in bins.bin_edges_]
    counts = np.asarray(bins.n_bins_, dtype=np.intp)
    offsets = np.cumsum([0, *counts])
    onehot = bins.encode == "onehot-dense"

    def discretize(X: np.ndarray) -> np.ndarray:
        index = np.column_stack([np.searchsorted(e, X[:, j], side="right") for j, e in enumerate(edges)])
        if not onehot:
            return index.astype(np.float64)
        out = np.zeros((X.shape[0], offsets[-1]))
        rows = np.arange(X.shape[0])
        for j in range(len(edges)):
            out[rows, offsets[j] + index[:, j]] = 1.0
        return out

    return discretize


def _one_hot(encoder: Any) -> Step:
    if encoder.drop_idx_ is not None or encoder.sparse_output:
        raise Unsupported("OneHotEncoder with drop= or sparse output")
    if encoder.handle_unknown not in ("ignore", "infrequent_if_exist", "warn"):
        raise Unsupported(f"OneHotEncoder with handle_unknown={encoder.handle_unknown!r}")
    infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(encoder.categories_)
    tables, widths = [], []
    for categories, rare in zip(encoder.categories_, infrequent, strict=True):
        if categories.dtype != object or not all(isinstance(c, str) for c in categories):
            raise Unsupported("OneHotEncoder fitted on values that are not strings")
        rare = set() if rare is None else set(rare)
        frequent = [c for c in categories if c not in rare]
        table = {c: i for i, c in enumerate(frequent)}
        other = len(frequent) if rare else -1
        table.update({c: other for c in rare})
        unknown = -1 if encoder.handle_unknown == "ignore" else other  # "warn" encodes as infrequent_if_exist
        tables.append((table, unknown))
        widths.append(len(frequent) + (1 if rare else 0))
    offsets = np.cumsum([0, *widths])

    def one_hot(X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        out = np.zeros((n, offsets[-1]))
        rows = np.arange(n)
        for j, (table, unknown) in enumerate(tables):
            index = np.fromiter((table.get(v, unknown) for v in X[:, j]), dtype=np.intp, count=n)
            hit = index >= 0
            out[rows[hit], offsets[j] + index[hit]] = 1.0
        return out

    return one_hot


def _target_encoder(encoder: Any) -> Step:
    """The fitted per-category values as a lookup: one column per feature (binary, continuous)
    or one per feature and class, feature-major (multiclass); an unseen category gets the target
    mean, as `TargetEncoder.transform` gives it."""
    k = len(encoder.classes_) if encoder.target_type_ == "multiclass" else 1
    mean = np.atleast_1d(np.asarray(encoder.target_mean_, dtype=np.float64))
    tables = []
    for j, categories in enumerate(encoder.categories_):
        if categories.dtype != object or not all(isinstance(c, str) for c in categories):
            raise Unsupported("TargetEncoder fitted on values that are not strings")
        values = np.column_stack([encoder.encodings_[j * k + c] for c in range(k)]).astype(np.float64)
        tables.append(({c: i for i, c in enumerate(categories)}, np.vstack([values, mean])))

    def target_encode(X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        blocks = []
        for j, (table, values) in enumerate(tables):
            unseen = len(values) - 1  # the last row holds the target mean
            index = np.fromiter((table.get(v, unseen) for v in X[:, j]), dtype=np.intp, count=n)
            blocks.append(values[index])
        return np.hstack(blocks) if blocks else np.empty((n, 0))

    return target_encode


def _fields(stamps: np.ndarray, parts: tuple[str, ...]) -> list[np.ndarray]:
    """Calendar parts of datetime64 values as floats, NaN for NaT (pandas' fields, in numpy units)."""
    days = stamps.astype("M8[D]")
    day_number = days.astype(np.int64)
    months = stamps.astype("M8[M]")
    computed = {
        "year": lambda: stamps.astype("M8[Y]").astype(np.int64) + 1970,
        "month": lambda: months.astype(np.int64) % 12 + 1,
        "day": lambda: (days - months).astype(np.int64) + 1,
        "dayofweek": lambda: (day_number + 3) % 7,  # 1970-01-01 was a Thursday; Monday is 0
        "dayofyear": lambda: (days - stamps.astype("M8[Y]")).astype(np.int64) + 1,
        "hour": lambda: (stamps - days).astype("m8[h]").astype(np.int64),
        "minute": lambda: (stamps - stamps.astype("M8[h]")).astype("m8[m]").astype(np.int64),
    }
    missing = np.isnat(stamps)
    return [np.where(missing, np.nan, computed[p]().astype(np.float64)) for p in parts]


def _datetime_parts(parts: tuple[str, ...]) -> Step:
    """DatetimeParts on datetime64 arrays."""
    def datetime_parts(columns: list[np.ndarray]) -> np.ndarray:
        return np.column_stack([f for stamps in columns for f in _fields(stamps, parts)])

    return datetime_parts




def _cyclic_parts(parts: tuple[str, ...]) -> Step:
    """CyclicParts: per column and part, sin and cos of 2 pi part / period (NaT: NaN)."""
    def cyclic_parts(columns: list[np.ndarray]) -> np.ndarray:
        blocks = []
        for stamps in columns:
            for part, values in zip(parts, _fields(stamps, parts), strict=True):
                angle = 2 * np.pi * values / PERIODS[part]
                blocks += [np.sin(angle), np.cos(angle)]
        return np.column_stack(blocks)

    return cyclic_parts
