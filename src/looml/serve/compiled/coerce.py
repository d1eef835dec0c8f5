"""SchemaCoercer's rules on raw Batch columns, without a DataFrame."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from looml.learn.features import category_text

__all__ = ["coerce_column"]


def coerce_column(values: Any, kind: str, n: int) -> np.ndarray:
    """One column as SchemaCoercer leaves it: float64, object (None = missing) or datetime64.

    The common shapes (numbers and None; strings and None) are converted here; any other mix
    goes through the coercer's own rule on the column pandas would build, so odd inputs are
    exact by construction.
    """
    if values is None:
        values = [None] * n
    if isinstance(values, np.ndarray):
        if kind == "numeric" and values.dtype.kind in "iuf":
            return values.astype(np.float64, copy=False)  # read-only from here on
        if kind == "categorical" and values.dtype.kind in "iufU":
            values = values.tolist()
    if kind == "datetime" and isinstance(values, list):
        stamps = _iso_stamps(values)
        if stamps is not None:
            return stamps
    if kind != "datetime" and not isinstance(values, np.ndarray):
        types = set(map(type, values))
        if kind == "numeric":
            if types <= {int, float, type(None)}:
                return np.array(values, dtype=np.float64)
            if types <= {str, int, float, type(None)}:
                column = np.array(values, dtype=object)
                column[pd.isna(column)] = np.nan
                return pd.to_numeric(column, errors="coerce").astype(np.float64)
        elif types <= {str, type(None)}:
            return np.array(values, dtype=object)
        elif types == {int}:
            return np.array([str(v) for v in values], dtype=object)
        elif types <= {int, float, type(None)} and (int not in types or all(
                -2**63 <= v < 2**63 for v in values if type(v) is int)):
            # pandas reads int64s with a None or a float as a float column (1 and 1.0 are both "1",
            # and an int past 2**53 is rounded as pandas rounds it)
            return np.array([None if v is None or v != v else category_text(float(v)) for v in values],
                            dtype=object)
    return _coerce_exact(values, kind)


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?")
_RANGE = (np.datetime64("1678-01-01"), np.datetime64("2262-01-01"))  # where pandas' parse never overflows


def _iso_stamps(values: list[Any]) -> np.ndarray | None:
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


def _coerce_exact(values: Any, kind: str) -> np.ndarray:
    """SchemaCoercer's own rule, on the column pandas builds from `values` (the reference's path)."""
    from looml.learn.features import _coerce  # the same rule, so the uncommon inputs cannot drift

    column = _coerce(pd.DataFrame({"c": values})["c"], kind)
    if kind == "numeric":
        return column.to_numpy(dtype=np.float64)
    if kind == "datetime":
        return column.to_numpy()
    out = np.array(column, dtype=object)  # a copy: pandas hands out read-only views
    out[pd.isna(out)] = None
    return out
