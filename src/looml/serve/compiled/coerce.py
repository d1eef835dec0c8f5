"""SchemaCoercer's rules on raw Batch columns, without a DataFrame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from looml.learn.features import category_text, iso_stamps

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
        stamps = iso_stamps(values)
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
