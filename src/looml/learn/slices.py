"""Slices: holdout metrics per value of chosen columns, and the slices where the model is worst.

A slice column need not be a feature: its holdout values travel beside the model's inputs,
never into them. Numeric columns with many values are cut into quantile bins; categorical
ones keep their most frequent values and pool the rest as "(other)".
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from looml.learn.intervals import intervals, weighted_metrics
from looml.spec import LOWER_IS_BETTER

__all__ = ["MISSING", "OTHER", "group_labels", "slice_metrics"]

BINS = 4  # quantile bins of a numeric column (quartiles)
MAX_LEVELS = 20  # values of a categorical column shown on their own; the rest are pooled
DISCRETE = 10  # a numeric column with at most this many values is sliced by value
WORST = 5  # worst slices listed
MISSING, OTHER = "(missing)", "(other)"


def group_labels(values: Any) -> np.ndarray:
    """Each row's slice: a value, a pooled "(other)", "(missing)", or a quantile bin "[a, b)"."""
    series = pd.Series(values).reset_index(drop=True)
    missing = series.isna().to_numpy()
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    dated = pd.api.types.is_datetime64_any_dtype(series)
    if (numeric or dated) and series.nunique() > DISCRETE:
        # Dates are cut like numbers (their instants) and named by day.
        if dated:
            naive = series.dt.tz_localize(None) if series.dt.tz is not None else series
            x = (naive - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            x = series.to_numpy(dtype=np.float64, na_value=np.nan)
        edges = np.unique(np.nanquantile(x, np.linspace(0, 1, BINS + 1)))
        inner = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        show = (lambda v: str(pd.Timestamp(v, unit="s").date())) if dated else _num
        names = [f"[{show(a)}, {show(b)}{']' if i == len(edges) - 2 else ')'}"
                 for i, (a, b) in enumerate(itertools.pairwise(edges))]
        labels = np.asarray(names, dtype=object)[inner]
    else:
        text = series.astype(str).to_numpy(dtype=object)
        counts = pd.Series(text[~missing]).value_counts()
        keep = set(counts.index[:MAX_LEVELS])
        labels = np.asarray([v if v in keep else OTHER for v in text], dtype=object)
    labels[missing] = MISSING
    return labels


def _num(value: float) -> str:
    return f"{value:.4g}"


def slice_metrics(task: str, classes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                  proba: np.ndarray | None, columns: dict[str, Any], *, primary: str, min_rows: int,
                  confidence: float, seed: int, positive: int = 1,
                  sample_weight: np.ndarray | None = None) -> dict[str, Any]:
    """Every metric per slice of each column, and the worst slices by the primary metric.

    A worst slice has at least `min_rows` rows (and is not the whole holdout); its drop is how
    much worse its primary metric is than the whole's, with a bootstrap interval of its value.
    `sample_weight` weighs the rows in every metric (rows are still counted as rows).
    """
    weight = np.ones(len(y_true)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    whole = weighted_metrics(task, classes, y_true, y_pred, proba, weight[None, :], positive)
    overall = float(whole[primary][0])
    sign = -1.0 if primary in LOWER_IS_BETTER else 1.0
    tables: dict[str, list[dict[str, Any]]] = {}
    candidates = []
    labelled = {}
    for column, values in columns.items():
        labels = labelled[column] = group_labels(values)
        names, codes = np.unique(labels, return_inverse=True)
        W = np.zeros((len(names), len(labels)))
        W[codes, np.arange(len(labels))] = 1.0
        rows = W.sum(axis=1).astype(int)
        found = weighted_metrics(task, classes, y_true, y_pred, proba, W * weight, positive)
        table = []
        for i, name in enumerate(names):
            entry = {"slice": str(name), "rows": int(rows[i]), "small": bool(rows[i] < min_rows),
                     "metrics": {m: _finite(v[i]) for m, v in found.items()}}
            table.append(entry)
            value = found[primary][i]
            if rows[i] >= min_rows and rows[i] < len(labels) and not np.isnan(value):
                candidates.append((sign * (overall - value), column, i, entry))
        tables[column] = sorted(table, key=_order)
    worst = []
    for drop, column, _, entry in sorted(candidates, key=lambda c: -c[0])[:WORST]:
        if drop <= 0:
            break
        mask = labelled[column] == entry["slice"]
        low, high = intervals(task, classes, y_true[mask], y_pred[mask],
                              None if proba is None else proba[mask], confidence=confidence,
                              seed=seed, positive=positive, only=frozenset({primary}),
                              sample_weight=None if sample_weight is None else weight[mask])[primary]
        worst.append({"column": column, "slice": entry["slice"], "rows": entry["rows"],
                      "value": entry["metrics"][primary], "overall": overall, "drop": float(drop),
                      "low": _finite(low), "high": _finite(high)})
    return {"primary_metric": primary, "overall": overall, "min_rows": min_rows, "columns": tables,
            "worst": worst}


def _order(entry: dict[str, Any]) -> tuple:
    """Quantile bins by their lower edge, values by their rows (most first); (missing) last."""
    name = entry["slice"]
    if name == MISSING:
        return (2, 0.0, "")
    if name.startswith("[") and "," in name:
        low = name[1:name.index(",")]
        try:
            return (0, float(low), "")
        except ValueError:
            return (0, 0.0, low)  # a day, which sorts as text
    return (1, -float(entry["rows"]), name)


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined metric (one class in a slice) is None."""
    value = float(value)
    return None if np.isnan(value) else value
