"""The explanations logged with every model version (`explain/explanations.json`) and shown in the report.

    summarise_explanations(pipeline, X_holdout, features, importance, seed) -> dict

- `permutation_importance`: each user column's share of the permutation importance on the
  holdout, through the whole pipeline. It is the drift reference's (`monitor.reference`), passed
  in, not computed a second time.
- `shap` (tree models and votes of them) or `contributions` (linear models): on up to 2,000
  holdout rows (fewer, down to 50, where TreeSHAP of the model would take over `_SECONDS`; a
  bagged forest that still would is explained by its first trees, and `note` says so), each
  user column's mean |contribution| (encoded parts summed back to their column, `learn.explain`),
  and for the top columns their dependence: the mean contribution per
  value (categories) or per quantile bin (numbers), with the bin's mean value and row count, so
  no holdout row is stored.
- `coefficients` (linear models): each user column's coefficients by encoded feature.
- `reason`: why a model has no contributions (k-NN, SVM, MLP, stacking, PCA...).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from looml.learn.explain import Contributions, Explainer, NoExplanation, explainer_for

__all__ = ["EXPLANATIONS_ARTIFACT", "summarise_explanations"]

EXPLANATIONS_ARTIFACT = "explain/explanations.json"
_ROWS = 2000  # holdout rows explained
_MIN_ROWS = 200  # rows kept before a forest is cut to fewer trees
_FLOOR_ROWS = 50  # rows explained at least
_SECONDS = 10.0  # what explaining a model version may take, estimated from its trees (`learn.treecost`)
_PROBE_ROWS = (4, 64)  # rows timed, at least and at most, to correct the estimate near `_SECONDS`
_PROBE_SECONDS = 0.3  # ... for about this long
_ROW_STEPS = (2000, 1500, 1000, 750, 500, 300, 200, 100, 50)  # row counts a plan rounds down to
_TOP = 5  # columns with dependence data
_BINS = 10  # quantile bins of a numeric column's dependence
_CATEGORIES = 12  # most frequent categories of a categorical column's dependence


def summarise_explanations(pipeline: Any, X: pd.DataFrame, features: dict[str, str],
                           importance: dict[str, float] | None, seed: int) -> dict[str, Any]:
    """The explanations of a fitted pipeline on holdout rows `X` (see the module docstring)."""
    out: dict[str, Any] = {"model": type(pipeline.steps[-1][1]).__name__,
                           "permutation_importance": _ranked(importance or {})}
    try:
        explainer = explainer_for(pipeline)
    except NoExplanation as exc:
        return {**out, "method": None, "reason": str(exc)}
    available = len(X)
    order = np.random.default_rng(seed).permutation(len(X))  # any head of it is a random sample
    scale = _scale(explainer, X.iloc[order[:_PROBE_ROWS[1]]], min(available, _ROWS))
    explainer, rows = _within_time(pipeline, explainer, available, scale)
    X = X.iloc[np.sort(order[:rows])].reset_index(drop=True)
    found = explainer.explain(X)
    magnitude = np.abs(found.values).mean(axis=(0, 1))  # over rows and outputs
    summary = {"rows": len(X), "outputs": found.outputs, "base": found.base.round(6).tolist(),
               "mean_abs": _ranked(dict(zip(found.columns, magnitude, strict=True)), share=False)}
    top = [c for c in summary["mean_abs"] if features.get(c) in ("numeric", "categorical")][:_TOP]
    summary["dependence"] = {c: _dependence(X[c], found, c, features[c]) for c in top}
    method = "tree_shap" if explainer.kind in ("tree", "voting") else "linear"
    out = {**out, "method": method, "output": found.outputs, "reason": None,
           ("shap" if method == "tree_shap" else "contributions"): summary}
    note = "; ".join(n for n in (_fewer_rows(len(X), available), explainer.note) if n)
    if note:
        out["note"] = note[0].upper() + note[1:]
    if explainer.kind == "linear":
        out["coefficients"] = _coefficients(pipeline, explainer, found.outputs)
    return out


def _within_time(pipeline: Any, explainer: Explainer, available: int, scale: float) -> tuple[Explainer, int]:
    """The explainer and the rows to explain so that it takes about `_SECONDS` at most: all rows up
    to `_ROWS`, fewer rows down to `_MIN_ROWS`, then a forest's first trees, then down to `_FLOOR_ROWS`.
    `scale`: the measured cost over the trees' estimate (`_scale`); row counts are rounded down to
    `_ROW_STEPS`, so a plan moves only when the cost moves by a step."""
    rows = min(available, _ROWS)
    rate = explainer.seconds_per_row * scale
    if rate * rows <= _SECONDS:
        return explainer, rows
    rows = min(rows, max(_MIN_ROWS, _step(_SECONDS / rate)))
    if rate * rows > _SECONDS:
        explainer = explainer_for(pipeline, max_seconds_per_row=_SECONDS / rows / scale)
        rate = explainer.seconds_per_row * scale
    if rate * rows > _SECONDS:
        rows = max(min(rows, _FLOOR_ROWS), _step(_SECONDS / rate))
    return explainer, rows


def _scale(explainer: Explainer, X: pd.DataFrame, rows: int) -> float:
    """The measured cost of explaining a few of `X`'s first rows over the trees' estimate
    (`learn.treecost`, within about 3x either way: repeated features along the paths and the
    outputs per leaf move it); 1 without measuring where the estimate for `rows` is far below
    `_SECONDS`. The probe is about `_PROBE_SECONDS` of rows, so the fixed cost of a call counts little."""
    rate = explainer.seconds_per_row
    if rate <= 0 or rate * rows <= _SECONDS / 4:
        return 1.0
    probe = X.iloc[:int(np.clip(_PROBE_SECONDS / rate, *_PROBE_ROWS))].reset_index(drop=True)
    started = time.perf_counter()
    explainer.explain(probe)
    return max(time.perf_counter() - started, 1e-9) / (rate * len(probe))


def _step(rows: float) -> int:
    """`rows` rounded down to the nearest of `_ROW_STEPS` (below the last, itself)."""
    return next((s for s in _ROW_STEPS if s <= rows), int(rows))


def _fewer_rows(rows: int, available: int) -> str:
    if rows >= min(available, _ROWS):
        return ""
    return (f"explained on {rows:,} of the {available:,} holdout rows, to keep TreeSHAP of this model "
            f"near {_SECONDS:g} s")


def _ranked(values: dict[str, float], share: bool = True) -> dict[str, float]:
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return {str(k): round(float(v), 6 if share else 8) for k, v in ranked}


def _dependence(values: pd.Series, found: Contributions, column: str, kind: str) -> dict[str, Any]:
    """Mean contribution of `column` (averaged over outputs) per category or per quantile bin."""
    contribution = found.values[:, :, found.columns.index(column)].mean(axis=1)
    if kind == "numeric":
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        present = np.isfinite(x)
        edges = np.unique(np.quantile(x[present], np.linspace(0, 1, _BINS + 1))) if present.any() else []
        points = []
        if len(edges) > 1:
            which = np.clip(np.searchsorted(edges, x[present], side="right") - 1, 0, len(edges) - 2)
            for b in range(len(edges) - 1):
                rows = which == b
                if rows.any():
                    points.append({"x": round(float(x[present][rows].mean()), 6),
                                   "low": float(f"{edges[b]:.6g}"), "high": float(f"{edges[b + 1]:.6g}"),
                                   "contribution": round(float(contribution[present][rows].mean()), 6),
                                   "rows": int(rows.sum())})
        if (~present).any():
            points.append({"x": None, "contribution": round(float(contribution[~present].mean()), 6),
                           "rows": int((~present).sum())})
        return {"kind": "numeric", "points": points}
    labels = values.astype("string").fillna("(missing)").to_numpy()
    counts = pd.Series(labels).value_counts()
    points = [{"x": str(label), "contribution": round(float(contribution[labels == label].mean()), 6),
               "rows": int(n)} for label, n in counts.head(_CATEGORIES).items()]
    return {"kind": "categorical", "points": points, "other_categories": max(0, len(counts) - _CATEGORIES)}


def _coefficients(pipeline: Any, explainer: Explainer, outputs: list[str]) -> dict[str, Any]:
    """Per user column, each of its encoded features' coefficient (one per output)."""
    model = pipeline.steps[-1][1]
    if type(model).__name__ == "DecisionModel":  # calibration and threshold around the linear model
        model = model.estimator_
    model = getattr(model, "regressor_", model)
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))[-len(outputs):]
    table: dict[str, list[dict[str, Any]]] = {}
    for i, feature in enumerate(explainer.map.features):
        for j in np.flatnonzero(explainer.map.matrix[i]):
            values = coef[:, i].round(8).tolist()
            table.setdefault(explainer.columns[j], []).append(
                {"feature": feature, "coefficient": values[0] if len(values) == 1 else values})
    return table
