"""Fairness: per-group holdout metrics of each sensitive column (fairlearn's `MetricFrame`), and
the disparity measures a gate can bound.

Binary tasks get selection rate, true and false positive rate and accuracy per group, and
demographic parity (difference, ratio), equalized odds (difference, ratio) and the accuracy
difference; multiclass tasks accuracy; regression the mean absolute and root mean squared error
per group and their differences. Disparities are taken between the groups with at least
`min_rows` rows: a smaller group is shown, flagged, and left out, since a handful of rows would
decide the gate by chance. Each disparity names the two groups it is between.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from looml.learn.slices import group_labels

__all__ = ["fairness"]

_LABELS = {"selection_rate": "selection rate", "true_positive_rate": "true positive rate",
           "false_positive_rate": "false positive rate", "accuracy": "accuracy",
           "mae": "mean absolute error", "rmse": "root mean squared error"}


def fairness(task: str, classes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
             columns: dict[str, Any], *, min_rows: int, positive: int = 1,
             sample_weight: np.ndarray | None = None) -> dict[str, Any]:
    """Per-group metrics and disparities for each sensitive column (values aligned with the rows).

    Returns {"columns": {column: [group rows]}, "disparities": {column: {measure: {value, between,
    detail}}}, "positive": the positive class (binary), "min_rows": min_rows}. `positive` is the
    index of the positive class in `classes`; `sample_weight` weighs the rows in every metric but
    the group's row count.
    """
    from fairlearn.metrics import MetricFrame

    kind = "regression" if task == "regression" else "binary" if len(classes) == 2 else "multiclass"
    metrics, y_t, y_p = _metrics(kind, classes, y_true, y_pred, positive)
    params = None
    if sample_weight is not None:
        weight = np.asarray(sample_weight, dtype=float)
        params = {m: {"sample_weight": weight} for m in metrics if m != "count"}
    tables: dict[str, list[dict[str, Any]]] = {}
    disparities: dict[str, dict[str, Any]] = {}
    for column, values in columns.items():
        groups = pd.Series(group_labels(values), name=column)
        frame = MetricFrame(metrics=metrics, y_true=y_t, y_pred=y_p, sensitive_features=groups,
                            sample_params=params)
        by_group = frame.by_group
        table = []
        for name, row in by_group.iterrows():
            rows = int(row["count"])
            table.append({"group": str(name), "rows": rows, "small": rows < min_rows,
                          "metrics": {m: _finite(row[m]) for m in metrics if m != "count"}})
        tables[column] = sorted(table, key=lambda g: -g["rows"])
        counted = by_group[by_group["count"] >= min_rows]
        disparities[column] = _disparities(kind, counted)
    out: dict[str, Any] = {"kind": kind, "columns": tables, "disparities": disparities, "min_rows": min_rows}
    if kind == "binary":
        out["positive"] = str(classes[positive])
    return out


def _metrics(kind: str, classes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
             positive: int) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    from fairlearn.metrics import count, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, mean_absolute_error, root_mean_squared_error

    if kind == "regression":
        return ({"count": count, "mae": mean_absolute_error, "rmse": root_mean_squared_error},
                np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float))
    if kind == "multiclass":
        return {"count": count, "accuracy": accuracy_score}, np.asarray(y_true), np.asarray(y_pred)
    label = classes[positive]
    y_t, y_p = (np.asarray(y_true) == label).astype(int), (np.asarray(y_pred) == label).astype(int)
    return ({"count": count, "selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
             "false_positive_rate": false_positive_rate, "accuracy": accuracy_score}, y_t, y_p)


def _disparities(kind: str, by_group: pd.DataFrame) -> dict[str, Any]:
    """fairlearn's between-groups difference (largest - smallest) and ratio (smallest / largest)."""
    if len(by_group) < 2:
        return {}
    if kind == "regression":
        return {"mae_difference": _gap(by_group, "mae", "difference"),
                "rmse_difference": _gap(by_group, "rmse", "difference")}
    out = {"accuracy_difference": _gap(by_group, "accuracy", "difference")}
    if kind == "binary":
        out["demographic_parity_difference"] = _gap(by_group, "selection_rate", "difference")
        out["demographic_parity_ratio"] = _gap(by_group, "selection_rate", "ratio")
        # Equalized odds: the worse of the true and false positive rates' disparities.
        tpr, fpr = (_gap(by_group, m, "difference") for m in ("true_positive_rate", "false_positive_rate"))
        out["equalized_odds_difference"] = max(tpr, fpr, key=_value)
        tpr, fpr = (_gap(by_group, m, "ratio") for m in ("true_positive_rate", "false_positive_rate"))
        out["equalized_odds_ratio"] = min(tpr, fpr, key=lambda g: _value(g, np.inf))
    return out


def _value(gap: dict[str, Any], missing: float = -np.inf) -> float:
    """A gap's value for ordering; a gap without one counts as `missing`."""
    return missing if gap["value"] is None else gap["value"]


def _gap(by_group: pd.DataFrame, metric: str, how: str) -> dict[str, Any]:
    values = by_group[metric].astype(float).dropna()
    if len(values) < 2:
        return {"value": None, "metric": metric, "between": "",
                "detail": "fewer than two groups with a value"}
    high, low = values.idxmax(), values.idxmin()
    top, bottom = float(values[high]), float(values[low])
    if how == "difference":
        value = top - bottom
    else:
        value = bottom / top if top > 0 else (1.0 if bottom == top else 0.0)
    label = _LABELS[metric]
    return {"value": value, "metric": metric, "between": f"{high!s} and {low!s}",
            "detail": f"{label} {top:.3g} for {str(high)!r} vs {bottom:.3g} for {str(low)!r}"}


def _finite(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value
