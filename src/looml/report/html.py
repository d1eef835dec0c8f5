"""Render a run's report as one self-contained HTML page.

The page opens offline: CSS is inline and the plots are inline SVG drawn here, so a report
copied out of the artifact store still shows everything it shows in place.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from looml.report.charts import (
    bars_svg,
    calibration_svg,
    confusion_svg,
    gain_svg,
    heatmap_svg,
    histogram_svg,
    mi_svg,
    pr_svg,
    residual_histogram_svg,
    residual_svg,
    roc_svg,
    scatter_svg,
    thin,
)
from looml.report.text import DASH, fmt, pct
from looml.spec import LOWER_IS_BETTER

__all__ = ["render_report", "template_env"]

_MAX_POINTS = 1000
_MAX_PROFILE_ROWS = 100  # columns listed in the data profile; wider tables say which were left out
_MAX_MATRIX = 30  # columns drawn in a heatmap
_MAX_BARS = 30  # features in the mutual-information chart
_TOP_BARS = 5  # values drawn for a categorical column


def render_report(context: dict[str, Any]) -> str:
    """Render the report context of one run as a self-contained HTML page.

    `context` holds JSON-able values (title, task, data summary, the data profile's
    `Profile.to_dict()`, leaderboard, test metrics, gate, plot data and stage records).
    User-provided text is escaped; missing or NaN numbers show as an em dash; a key an older
    run lacks (such as the profile) leaves its part of the page out.
    """
    primary = context.get("primary_metric", "")
    return template_env().get_template("report.html").render(
        ctx=context,
        primary=primary,
        leaderboard=_leaderboard(context.get("leaderboard") or [], primary, context.get("top_k") or 10),
        test_metrics=_ordered(context.get("test_metrics") or {}, primary),
        plots=_plots(context.get("task", ""), context.get("plots") or {}),
        profile=_profile(context.get("profile")),
        lower_is_better=LOWER_IS_BETTER,
    )


@cache
def template_env() -> Environment:
    """The Jinja environment of looml's HTML pages (autoescaped; `num` and `pct` filters)."""
    env = Environment(loader=PackageLoader("looml.report", "templates"),
                      autoescape=select_autoescape(["html"]))
    env.filters["num"] = fmt
    env.filters["pct"] = pct
    return env


def _ordered(metrics: dict[str, Any], primary: str) -> list[tuple[str, Any]]:
    return sorted(metrics.items(), key=lambda kv: kv[0] != primary)


def _leaderboard(rows: list[dict[str, Any]], primary: str, top_k: int) -> dict[str, Any]:
    """The top-k scored trials, then up to k trials without scores (pruned, failed, over budget,
    skipped) with the reason; `hidden` counts the rows left out."""
    names: list[str] = []
    for row in rows:
        names += [m for m in row.get("mean") or {} if m not in names]
    names.sort(key=lambda m: m != primary)
    scored = [r for r in rows if not r.get("error")]
    unscored = [r for r in rows if r.get("error")]
    shown = scored[:top_k] + unscored[:top_k]
    out = []
    for rank, row in enumerate(shown, 1):
        mean, std = row.get("mean") or {}, row.get("std") or {}
        cells = []
        for m in names:
            value, spread = fmt(mean.get(m)), fmt(std.get(m))
            cells.append((value, "" if DASH in (value, spread) else spread))
        timings = row.get("timings") or {}
        size = row.get("size_bytes")
        out.append({"rank": DASH if row.get("error") else rank, "trial": fmt(row.get("trial")),
                    "name": row.get("name", ""), "state": row.get("state") or ("failed" if row.get("error")
                                                                               else "complete"),
                    "params": _params(row.get("params") or {}, row.get("choices") or {}),
                    "cells": cells, "fit": fmt(row.get("fit_seconds")),
                    "predict": fmt(timings.get("predict_ms_per_1000")),
                    "size": fmt(round(size / 1024, 1)) if size else DASH, "error": row.get("error") or ""})
    return {"metrics": names, "rows": out, "hidden": len(rows) - len(shown)}


def _params(params: dict[str, Any], choices: dict[str, Any]) -> str:
    """`name=value` pairs, numbers to 4 significant digits, then the preprocessing choices."""
    parts = [f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in params.items()]
    parts += [f"{k.removeprefix('preprocessing.')}={v}" for k, v in choices.items()]
    return ", ".join(parts)


def _plots(task: str, plots: dict[str, Any]) -> list[tuple[str, Markup]]:
    if task == "regression":
        actual = np.asarray(plots.get("actual") or [], dtype=float)
        predicted = np.asarray(plots.get("predicted") or [], dtype=float)
        if actual.size == 0 or actual.shape != predicted.shape:
            return []
        ok = np.isfinite(actual) & np.isfinite(predicted)
        actual, predicted = thin(actual[ok], predicted[ok], _MAX_POINTS)
        out = [("Predicted vs actual", scatter_svg(actual, predicted)),
               ("Residuals", residual_svg(actual, predicted))]
        spread = plots.get("residuals") or {}
        if spread.get("counts") and len(spread.get("edges") or []) == len(spread["counts"]) + 1:
            out.append(("Residual distribution", residual_histogram_svg(spread["edges"], spread["counts"])))
        return out
    out = []
    if plots.get("roc"):
        out.append(("ROC curve", roc_svg(plots["roc"])))
    labels = plots.get("labels") or []
    if labels and np.shape(plots.get("confusion") or []) == (len(labels), len(labels)):
        out.append(("Confusion matrix", confusion_svg(labels, plots["confusion"])))
    pr, gain, calibration = plots.get("pr"), plots.get("gain"), plots.get("calibration")
    if pr and pr.get("recall"):
        out.append(("Precision-recall", pr_svg(pr)))
    if gain and gain.get("population"):
        out.append(("Cumulative gain", gain_svg(gain)))
    if calibration and calibration.get("predicted"):
        out.append(("Calibration", calibration_svg(calibration)))
    return out


def _profile(profile: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the "Data profile" section shows, from `Profile.to_dict()`; None without a profile."""
    if not isinstance(profile, dict) or not profile.get("columns"):
        return None
    rows = profile.get("rows") or 0
    columns = profile["columns"]
    matrices = []
    for key, title, diverging in (("pearson", "Pearson correlation", True),
                                  ("spearman", "Spearman rank correlation", True),
                                  ("cramers_v", "Cramér's V (categorical association)", False)):
        matrix = profile.get(key) or {}
        if len(matrix.get("columns") or []) >= 2:
            names = matrix["columns"]
            hidden = names[_MAX_MATRIX:] + list(matrix.get("left_out") or [])
            n = min(len(names), _MAX_MATRIX)
            values = [list(row[:n]) for row in (matrix.get("values") or [])[:n]]
            values += [[] for _ in range(n - len(values))]  # a malformed matrix draws as undefined
            matrices.append({"title": title, "svg": heatmap_svg(names[:n], values, diverging, title),
                             "hidden": hidden})
    target = profile.get("target") or {}
    scores = target.get("mutual_information") or {}
    return {
        "rows": rows, "duplicates": profile.get("duplicates"),
        "duplicate_rate": (profile.get("duplicates") or 0) / rows if rows else None,
        "pairwise_rows": profile.get("pairwise_rows"),
        "columns": [_profile_row(c, rows) for c in columns[:_MAX_PROFILE_ROWS]],
        "hidden": [c.get("name", "") for c in columns[_MAX_PROFILE_ROWS:]],
        "matrices": matrices,
        "target": {"name": target.get("target"), "task": target.get("task"), "rows": target.get("rows"),
                   "svg": mi_svg(dict(list(scores.items())[:_MAX_BARS])),
                   "hidden": max(0, len(scores) - _MAX_BARS)} if scores else None,
    }


def _profile_row(col: dict[str, Any], rows: int) -> dict[str, Any]:
    """One column's line: its chart and a few summary lines, all plain text or escaped SVG."""
    kind, name = col.get("kind", ""), col.get("name", "")
    missing = col.get("missing") or 0
    present = rows - missing
    quantiles = col.get("quantiles") or {}
    chart: Markup | str = ""
    lines: list[str] = []
    if kind == "numeric":
        hist = col.get("histogram") or {}
        if hist.get("edges") and len(hist.get("counts") or []) == len(hist["edges"]) + 1:
            chart = histogram_svg(name, hist["edges"], hist["counts"])
        if quantiles:
            lines.append(" · ".join(f"{k} {fmt(quantiles.get(k))}" for k in ("p5", "p50", "p95")))
        if col.get("mean") is not None:
            lines.append(f"mean {fmt(col.get('mean'))} ± {fmt(col.get('std'))}")
        counts = [(col.get("zeros"), "zero"), (col.get("negatives"), "negative"),
                  (col.get("infinite"), "infinite"), (col.get("nans"), "NaN")]
        notes = [f"{fmt(n)} {label}" for n, label in counts if n]
        if notes:
            lines.append(" · ".join(notes))
    elif kind in ("string", "boolean"):
        frequent = col.get("frequent") or col.get("top_values") or {}
        if frequent and present > 0:
            chart = bars_svg(name, dict(list(frequent.items())[:_TOP_BARS]), present)
        if col.get("frequent_share") is not None and (col.get("n_unique") or 0) > len(frequent):
            lines.append(f"top {len(frequent)} cover {pct(col['frequent_share'])}")
        if col.get("length_min") is not None and col["length_min"] == col.get("length_max"):
            lines.append(f"length {fmt(col['length_min'])}")
        elif col.get("length_min") is not None:
            lines.append(f"length {fmt(col['length_min'])} to {fmt(col.get('length_max'))} "
                         f"(mean {fmt(col.get('length_mean'))})")
    elif kind == "datetime":
        if col.get("earliest"):
            lines.append(f"{col['earliest']} → {col.get('latest')}")
        if quantiles.get("p50"):
            lines.append(f"median {quantiles['p50']}")
    return {"name": name, "kind": kind, "dtype": col.get("dtype", ""), "missing": missing,
            "missing_rate": missing / rows if rows else None, "n_unique": col.get("n_unique"),
            "chart": chart, "lines": lines}
