"""Render a run's report as one self-contained HTML page.

The page opens offline: CSS is inline and the plots are inline SVG drawn here, so a report
copied out of the artifact store still shows everything it shows in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from looml.spec import LOWER_IS_BETTER

__all__ = ["render_report", "template_env"]

_DASH = "—"
_MAX_POINTS = 1000
_MAX_PROFILE_ROWS = 100  # columns listed in the data profile; wider tables say which were left out
_MAX_MATRIX = 30  # columns drawn in a heatmap
_MAX_BARS = 30  # features in the mutual-information chart
_TOP_BARS = 5  # values drawn for a categorical column
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


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
    env.filters["num"] = _fmt
    env.filters["pct"] = _pct
    return env


def _fmt(value: Any) -> str:
    if value is None:
        return _DASH
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return _DASH
    if 1e4 <= abs(value) < 1e9:  # plain digits read better than 1.235e+05 here
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _pct(rate: float | None) -> str:
    if rate is None or math.isnan(rate):
        return _DASH
    return "0%" if rate == 0 else f"{rate * 100:.3g}%"


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
            value, spread = _fmt(mean.get(m)), _fmt(std.get(m))
            cells.append((value, "" if _DASH in (value, spread) else spread))
        timings = row.get("timings") or {}
        size = row.get("size_bytes")
        out.append({"rank": _DASH if row.get("error") else rank, "trial": _fmt(row.get("trial")),
                    "name": row.get("name", ""), "state": row.get("state") or ("failed" if row.get("error")
                                                                               else "complete"),
                    "params": _params(row.get("params") or {}, row.get("choices") or {}),
                    "cells": cells, "fit": _fmt(row.get("fit_seconds")),
                    "predict": _fmt(timings.get("predict_ms_per_1000")),
                    "size": _fmt(round(size / 1024, 1)) if size else _DASH, "error": row.get("error") or ""})
    return {"metrics": names, "rows": out, "hidden": len(rows) - len(shown)}


def _params(params: dict[str, Any], choices: dict[str, Any]) -> str:
    """`name=value` pairs, numbers to 4 significant digits, then the preprocessing choices."""
    parts = [f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in params.items()]
    parts += [f"{k.removeprefix('preprocessing.')}={v}" for k, v in choices.items()]
    return ", ".join(parts)


def _plots(task: str, plots: dict[str, Any]) -> list[tuple[str, Markup]]:
    if task == "regression":
        actual = np.asarray(plots.get("actual") or [], dtype=float)
        predicted = np.asarray(plots.get("predicted") or [], dtype=float)
        if actual.size == 0 or actual.shape != predicted.shape:
            return []
        ok = np.isfinite(actual) & np.isfinite(predicted)
        actual, predicted = _thin(actual[ok], predicted[ok], _MAX_POINTS)
        out = [("Predicted vs actual", _scatter_svg(actual, predicted)),
               ("Residuals", _residual_svg(actual, predicted))]
        spread = plots.get("residuals") or {}
        if spread.get("counts") and len(spread.get("edges") or []) == len(spread["counts"]) + 1:
            out.append(("Residual distribution", _residual_histogram_svg(spread["edges"], spread["counts"])))
        return out
    out = []
    if plots.get("roc"):
        out.append(("ROC curve", _roc_svg(plots["roc"])))
    labels = plots.get("labels") or []
    if labels and np.shape(plots.get("confusion") or []) == (len(labels), len(labels)):
        out.append(("Confusion matrix", _confusion_svg(labels, plots["confusion"])))
    pr, gain, calibration = plots.get("pr"), plots.get("gain"), plots.get("calibration")
    if pr and pr.get("recall"):
        out.append(("Precision-recall", _pr_svg(pr)))
    if gain and gain.get("population"):
        out.append(("Cumulative gain", _gain_svg(gain)))
    if calibration and calibration.get("predicted"):
        out.append(("Calibration", _calibration_svg(calibration)))
    return out


def _pr_svg(pr: dict[str, Any]) -> Markup:
    f = _Frame(0.0, 1.0, 0.0, 1.0)
    body = _axes(f, "recall", "precision")
    base = float(pr.get("prevalence") or 0.0)
    body.append(_line(f, [0, 1], [base, base], 'stroke="#999" stroke-dasharray="4 4"'))
    recall = np.asarray(pr["recall"], dtype=float)
    precision = np.asarray(pr["precision"], dtype=float)
    body.append(_line(f, *_thin(recall, precision, _MAX_POINTS), f'stroke="{_PALETTE[0]}" stroke-width="2"'))
    return _svg(f.w, f.h, "Precision against recall of the positive class; dashed: its share", body)


def _gain_svg(gain: dict[str, Any]) -> Markup:
    f = _Frame(0.0, 1.0, 0.0, 1.0)
    body = _axes(f, "share of rows, highest scores first", "share of positives found")
    body.append(_line(f, [0, 1], [0, 1], 'stroke="#999" stroke-dasharray="4 4"'))
    x = np.asarray(gain["population"], dtype=float)
    y = np.asarray(gain["captured"], dtype=float)
    body.append(_line(f, x, y, f'stroke="{_PALETTE[0]}" stroke-width="2"'))
    tenth = int(np.searchsorted(x, 0.1))
    if 0 < tenth < len(x) and x[tenth] > 0:
        lift = y[tenth] / x[tenth]
        body.append(f'<text x="{_r(f.px(0.55))}" y="{_r(f.py(0.12))}">lift in the top '
                    f'{x[tenth]:.0%}: {lift:.2f}</text>')
    return _svg(f.w, f.h, "Cumulative gain; dashed: random order", body)


def _calibration_svg(cal: dict[str, Any]) -> Markup:
    f = _Frame(0.0, 1.0, 0.0, 1.0)
    body = _axes(f, "mean predicted probability", "observed share of positives")
    body.append(_line(f, [0, 1], [0, 1], 'stroke="#999" stroke-dasharray="4 4"'))
    x = np.asarray(cal["predicted"], dtype=float)
    y = np.asarray(cal["observed"], dtype=float)
    body.append(_line(f, x, y, f'stroke="{_PALETTE[0]}" stroke-width="2"'))
    dots = "".join(f'<circle cx="{_r(f.px(a))}" cy="{_r(f.py(b))}" r="3.5"><title>{n:,} rows: predicted '
                   f'{a:.3f}, observed {b:.3f}</title></circle>'
                   for a, b, n in zip(x, y, cal.get("count") or [0] * len(x), strict=True))
    body.append(f'<g fill="{_PALETTE[0]}">{dots}</g>')
    body.append(f'<text x="{_r(f.px(0.04))}" y="{_r(f.py(0.93))}">Brier score {cal["brier"]:.4f}</text>')
    return _svg(f.w, f.h, "Reliability: observed against predicted, per bin; dashed: perfect", body)


def _residual_histogram_svg(edges: Sequence[float], counts: Sequence[int]) -> Markup:
    e = np.asarray(edges, dtype=float)
    c = np.asarray(counts, dtype=float)
    right = float(e[-1]) if e[-1] > e[0] else float(e[0]) + 1.0
    f = _Frame(float(e[0]), right, 0.0, max(float(c.max()), 1.0) * 1.05)
    body = _axes(f, "residual (actual - predicted)", "rows")
    bars = "".join(
        f'<rect x="{_r(f.px(a))}" y="{_r(f.py(n))}" width="{_r(max(f.px(b) - f.px(a) - 1, 0.5))}" '
        f'height="{_r(f.py(0) - f.py(n))}"><title>{a:.4g} to {b:.4g}: {int(n):,} rows</title></rect>'
        for a, b, n in zip(e[:-1], e[1:], c, strict=True) if n > 0)
    body.append(f'<g fill="{_PALETTE[0]}" fill-opacity="0.8">{bars}</g>')
    if f.x0 < 0 < f.x1:
        body.append(_line(f, [0, 0], [0, f.y1], 'stroke="#d62728" stroke-dasharray="5 4"'))
    return _svg(f.w, f.h, "Distribution of the residuals, with the zero line", body)


@dataclass(frozen=True)
class _Frame:
    """A plot area mapping data coordinates to SVG pixels."""

    x0: float
    x1: float
    y0: float
    y1: float
    w: int = 460
    h: int = 380
    left: int = 62
    right: int = 16
    top: int = 16
    bottom: int = 50

    def px(self, v: float) -> float:
        return self.left + (v - self.x0) / (self.x1 - self.x0) * (self.w - self.left - self.right)

    def py(self, v: float) -> float:
        return self.h - self.bottom - (v - self.y0) / (self.y1 - self.y0) * (
            self.h - self.top - self.bottom)


def _r(v: float) -> str:
    return f"{v:.1f}".removesuffix(".0")


def _svg(width: float, height: float, label: str, body: Sequence[str]) -> Markup:
    text = escape(label)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_r(width)} {_r(height)}" '
        f'width="{_r(width)}" height="{_r(height)}" role="img" aria-label="{text}" '
        f'font-size="12" font-family="inherit"><title>{text}</title>{"".join(body)}</svg>')


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * 0.999)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _axes(f: _Frame, xlabel: str, ylabel: str) -> list[str]:
    out = []
    for t in _ticks(f.x0, f.x1):
        x = _r(f.px(t))
        out.append(f'<line x1="{x}" x2="{x}" y1="{f.top}" y2="{f.h - f.bottom}" class="grid"/>'
                   f'<text x="{x}" y="{f.h - f.bottom + 16}" text-anchor="middle">{t:.4g}</text>')
    for t in _ticks(f.y0, f.y1):
        y = _r(f.py(t))
        out.append(f'<line x1="{f.left}" x2="{f.w - f.right}" y1="{y}" y2="{y}" class="grid"/>'
                   f'<text x="{f.left - 6}" y="{y}" text-anchor="end" dy="4">{t:.4g}</text>')
    cx, cy = (f.left + f.w - f.right) / 2, (f.top + f.h - f.bottom) / 2
    out.append(f'<rect x="{f.left}" y="{f.top}" width="{f.w - f.left - f.right}" '
               f'height="{f.h - f.top - f.bottom}" fill="none" stroke="#555"/>'
               f'<text x="{_r(cx)}" y="{f.h - 12}" text-anchor="middle" class="axis">'
               f'{escape(xlabel)}</text><text transform="translate(16 {_r(cy)}) rotate(-90)" '
               f'text-anchor="middle" class="axis">{escape(ylabel)}</text>')
    return out


def _thin(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= limit:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, limit).round().astype(int))
    return x[keep], y[keep]


def _line(f: _Frame, x: Sequence[float], y: Sequence[float], style: str) -> str:
    pts = " ".join(f"{_r(f.px(a))},{_r(f.py(b))}" for a, b in zip(x, y, strict=True))
    return f'<polyline points="{pts}" fill="none" {style}/>'


def _roc_svg(roc: dict[str, dict[str, list[float]]]) -> Markup:
    f = _Frame(0.0, 1.0, 0.0, 1.0)
    per_curve = max(50, _MAX_POINTS // len(roc))
    body = _axes(f, "false positive rate", "true positive rate")
    body.append(_line(f, [0, 1], [0, 1], 'stroke="#999" stroke-dasharray="4 4"'))
    legend = []
    for i, (label, curve) in enumerate(roc.items()):
        fpr = np.asarray(curve.get("fpr") or [], dtype=float)
        tpr = np.asarray(curve.get("tpr") or [], dtype=float)
        if fpr.size == 0 or fpr.shape != tpr.shape:
            continue
        auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        color = _PALETTE[i % len(_PALETTE)]
        # Past ten classes colours repeat, so the dash pattern tells the curves apart.
        dash = ("", ' stroke-dasharray="6 3"', ' stroke-dasharray="2 2"')[i // len(_PALETTE) % 3]
        style = f'stroke="{color}" stroke-width="2"{dash}'
        body.append(_line(f, *_thin(fpr, tpr, per_curve), style))
        y = f.top + 8 + 18 * len(legend)
        legend.append(f'<line x1="{f.w + 4}" x2="{f.w + 28}" y1="{y}" y2="{y}" {style}/>'
                      f'<text x="{f.w + 34}" y="{y}" dy="4">{escape(str(label)[:16])} '
                      f'(AUC {auc:.3f})</text>')
    height = max(f.h, f.top + 18 * len(legend) + 8)
    return _svg(f.w + 190, height, "ROC curve, one line per class", body + legend)


def _blue(t: float) -> str:
    lo, hi = (247, 251, 255), (8, 48, 107)
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(lo, hi, strict=True))


def _confusion_svg(labels: Sequence[Any], matrix: Sequence[Sequence[int]]) -> Markup:
    counts = np.asarray(matrix, dtype=float)
    n = len(labels)
    names = [str(s) if len(str(s)) <= 12 else str(s)[:11] + "…" for s in labels]
    cell = min(80, max(14, 440 // n))
    longest = max(len(s) for s in names)
    rotate = n > 6 or longest * 7 > cell
    left = 40 + 7 * longest
    top = 12
    size = cell * n
    bottom = 44 + (int(longest * 5.2) if rotate else 0)
    peak = counts.max() if counts.size and counts.max() > 0 else 1.0
    font = max(6.0, min(14.0, cell * 0.36))
    body = []
    for i in range(n):
        for j in range(n):
            c = counts[i, j]
            x, y = left + j * cell, top + i * cell
            digits = f"{c:.0f}"
            size_ = min(font, cell * 1.7 / max(len(digits), 1))
            ink = "#fff" if c / peak > 0.5 else "#222" if c else "#b0b7bf"
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_blue(c / peak)}" '
                f'stroke="#fff"><title>actual {escape(labels[i])}, predicted '
                f'{escape(labels[j])}: {digits}</title></rect><text x="{_r(x + cell / 2)}" '
                f'y="{_r(y + cell / 2)}" dy="0.35em" text-anchor="middle" fill="{ink}" '
                f'font-size="{_r(size_)}">{digits}</text>')
    label_font = _r(min(12.0, max(8.0, cell * 0.6)))
    for k, name in enumerate(names):
        mid = k * cell + cell / 2
        body.append(f'<text x="{left - 6}" y="{_r(top + mid)}" dy="0.35em" '
                    f'text-anchor="end" font-size="{label_font}">{escape(name)}</text>')
        x, y = _r(left + mid), top + size + 14
        turn = f' transform="rotate(-45 {x} {y - 4})"' if rotate else ""
        anchor = "end" if rotate else "middle"
        body.append(f'<text x="{x}" y="{y}" text-anchor="{anchor}" font-size="{label_font}"'
                    f'{turn}>{escape(name)}</text>')
    width, height = left + size + 16, top + size + bottom
    body.append(f'<text x="{_r(left + size / 2)}" y="{height - 10}" text-anchor="middle" '
                f'class="axis">predicted</text><text transform="translate(14 '
                f'{_r(top + size / 2)}) rotate(-90)" text-anchor="middle" class="axis">'
                f'actual</text>')
    return _svg(width, height, "Confusion matrix, actual by predicted", body)


def _span(*arrays: np.ndarray, symmetric: bool = False) -> tuple[float, float]:
    lo = min(float(a.min()) for a in arrays)
    hi = max(float(a.max()) for a in arrays)
    if symmetric:
        lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
    pad = (hi - lo) * 0.05 or max(abs(hi) * 0.1, 1.0)
    return lo - pad, hi + pad


def _dots(f: _Frame, x: np.ndarray, y: np.ndarray) -> str:
    dots = "".join(f'<circle cx="{_r(f.px(a))}" cy="{_r(f.py(b))}" r="2.2"/>'
                   for a, b in zip(x, y, strict=True))
    return f'<g fill="{_PALETTE[0]}" fill-opacity="0.5">{dots}</g>'


def _scatter_svg(actual: np.ndarray, predicted: np.ndarray) -> Markup:
    if actual.size == 0:
        return _svg(460, 60, "no finite predictions", ['<text x="10" y="30">no data</text>'])
    lo, hi = _span(actual, predicted)
    f = _Frame(lo, hi, lo, hi)
    body = _axes(f, "actual", "predicted")
    body.append(_line(f, [lo, hi], [lo, hi], 'stroke="#d62728" stroke-dasharray="5 4"'))
    body.append(_dots(f, actual, predicted))
    return _svg(f.w, f.h, "Predicted against actual, with the line y = x", body)


def _residual_svg(actual: np.ndarray, predicted: np.ndarray) -> Markup:
    if actual.size == 0:
        return _svg(460, 60, "no finite predictions", ['<text x="10" y="30">no data</text>'])
    residual = actual - predicted
    f = _Frame(*_span(predicted), *_span(residual, symmetric=True))
    body = _axes(f, "predicted", "residual (actual - predicted)")
    body.append(_line(f, [f.x0, f.x1], [0, 0], 'stroke="#d62728" stroke-dasharray="5 4"'))
    body.append(_dots(f, predicted, residual))
    return _svg(f.w, f.h, "Residuals against predicted, with the zero line", body)


# --- data profile --------------------------------------------------------------------------


def _short(text: Any, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
            matrices.append({"title": title, "svg": _heatmap_svg(names[:n], values, diverging, title),
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
                   "svg": _mi_svg(dict(list(scores.items())[:_MAX_BARS])),
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
            chart = _histogram_svg(name, hist["edges"], hist["counts"])
        if quantiles:
            lines.append(" · ".join(f"{k} {_fmt(quantiles.get(k))}" for k in ("p5", "p50", "p95")))
        if col.get("mean") is not None:
            lines.append(f"mean {_fmt(col.get('mean'))} ± {_fmt(col.get('std'))}")
        counts = [(col.get("zeros"), "zero"), (col.get("negatives"), "negative"),
                  (col.get("infinite"), "infinite"), (col.get("nans"), "NaN")]
        notes = [f"{_fmt(n)} {label}" for n, label in counts if n]
        if notes:
            lines.append(" · ".join(notes))
    elif kind in ("string", "boolean"):
        frequent = col.get("frequent") or col.get("top_values") or {}
        if frequent and present > 0:
            chart = _bars_svg(name, dict(list(frequent.items())[:_TOP_BARS]), present)
        if col.get("frequent_share") is not None and (col.get("n_unique") or 0) > len(frequent):
            lines.append(f"top {len(frequent)} cover {_pct(col['frequent_share'])}")
        if col.get("length_min") is not None and col["length_min"] == col.get("length_max"):
            lines.append(f"length {_fmt(col['length_min'])}")
        elif col.get("length_min") is not None:
            lines.append(f"length {_fmt(col['length_min'])} to {_fmt(col.get('length_max'))} "
                         f"(mean {_fmt(col.get('length_mean'))})")
    elif kind == "datetime":
        if col.get("earliest"):
            lines.append(f"{col['earliest']} → {col.get('latest')}")
        if quantiles.get("p50"):
            lines.append(f"median {quantiles['p50']}")
    return {"name": name, "kind": kind, "dtype": col.get("dtype", ""), "missing": missing,
            "missing_rate": missing / rows if rows else None, "n_unique": col.get("n_unique"),
            "chart": chart, "lines": lines}


def _histogram_svg(name: str, edges: Sequence[float], counts: Sequence[int]) -> Markup:
    """A small bar chart of the bins; the outer bins (beyond the edges) are grey at the ends."""
    width, height, outer = 150, 34, 6
    inner = list(counts[1:-1])
    peak = max(max(counts), 1)
    slot = (width - 2 * (outer + 2)) / max(len(inner), 1)
    bars = []

    def bar(x: float, w: float, count: int, colour: str) -> str:
        h = max(1.0, (height - 2) * count / peak) if count else 0.0
        return f'<rect x="{_r(x)}" y="{_r(height - h)}" width="{_r(w)}" height="{_r(h)}" fill="{colour}"/>'

    bars.append(bar(0, outer, counts[0], "#9aa5b1"))
    for i, count in enumerate(inner):
        bars.append(bar(outer + 2 + i * slot, max(slot - 1, 0.5), count, _PALETTE[0]))
    bars.append(bar(width - outer, outer, counts[-1], "#9aa5b1"))
    label = (f"{name}: {len(inner)} bins from {_fmt(edges[0])} to {_fmt(edges[-1])}; "
             f"{_fmt(counts[0])} below, {_fmt(counts[-1])} at or above")
    return _svg(width, height, label, bars)


def _bars_svg(name: str, counts: dict[str, int], present: int) -> Markup:
    """Horizontal bars of a column's most frequent values, as shares of its present values."""
    row, label_w, bar_w = 14, 100, 70
    peak = max(counts.values()) / present
    body = []
    for i, (value, count) in enumerate(counts.items()):
        share = count / present
        w = bar_w * share / peak
        y = i * row
        body.append(f'<text x="{label_w - 4}" y="{y + 10}" text-anchor="end" font-size="11">'
                    f'{escape(_short(value, 16))}</text>'
                    f'<rect x="{label_w}" y="{y + 2}" width="{_r(max(0.5, w))}" height="10" '
                    f'fill="{_PALETTE[0]}"><title>{escape(value)}: {count:,}</title></rect>'
                    f'<text x="{_r(label_w + w + 4)}" y="{y + 11}" font-size="10" '
                    f'class="axis">{_pct(share)}</text>')
    label = f"{name}: most frequent values and their share of present rows"
    return _svg(label_w + bar_w + 44, row * len(counts) + 2, label, body)


def _diverging(value: float) -> str:
    """White at 0, red towards +1 and blue towards -1."""
    end = (178, 24, 43) if value > 0 else (33, 102, 172)
    t = min(abs(value), 1.0)
    return "#" + "".join(f"{round(255 + (e - 255) * t):02x}" for e in end)


def _heatmap_svg(names: Sequence[str], values: Sequence[Sequence[float | None]], diverging: bool,
                 title: str) -> Markup:
    """A matrix of a pair-wise statistic; grey where it is undefined, the value in each tooltip."""
    n = len(names)
    labels = [_short(s, 14) for s in names]
    cell = min(40, max(12, 420 // n))
    left = 12 + 6 * max(len(s) for s in labels)
    top = 8
    size = cell * n
    bottom = 12 + int(4.4 * max(len(s) for s in labels))
    font = _r(min(11.0, max(7.0, cell * 0.32)))
    body = []
    for i in range(n):
        for j in range(n):
            v = values[i][j] if j < len(values[i]) else None
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            fill = (_diverging(v) if diverging else _blue(min(max(v, 0.0), 1.0))) if ok else "#e9ecef"
            x, y = left + j * cell, top + i * cell
            text = f"{v:.2f}" if ok else "undefined"
            body.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#fff">'
                        f'<title>{escape(names[i])} and {escape(names[j])}: {text}</title></rect>')
            if ok and cell >= 30:
                ink = "#fff" if abs(v) > 0.6 else "#222"
                body.append(f'<text x="{_r(x + cell / 2)}" y="{_r(y + cell / 2)}" dy="0.35em" '
                            f'text-anchor="middle" fill="{ink}" font-size="{font}">{v:.2f}</text>')
    for k, name in enumerate(labels):
        mid = k * cell + cell / 2
        body.append(f'<text x="{left - 4}" y="{_r(top + mid)}" dy="0.35em" text-anchor="end" '
                    f'font-size="10">{escape(name)}</text>')
        x, y = _r(left + mid), top + size + 10
        body.append(f'<text x="{x}" y="{y}" text-anchor="end" font-size="10" '
                    f'transform="rotate(-45 {x} {y - 4})">{escape(name)}</text>')
    legend_y = top + size + bottom
    steps = [-1 + k * 0.25 for k in range(9)] if diverging else [k / 8 for k in range(9)]
    for k, v in enumerate(steps):
        fill = _diverging(v) if diverging else _blue(v)
        body.append(f'<rect x="{left + 14 * k}" y="{legend_y}" width="14" height="10" fill="{fill}"/>')
    body.append(f'<text x="{left - 4}" y="{legend_y + 9}" text-anchor="end" font-size="10">'
                f'{steps[0]:g}</text><text x="{left + 14 * 9 + 4}" y="{legend_y + 9}" font-size="10">'
                f'{steps[-1]:g}</text><text x="{left + 14 * 9 + 24}" y="{legend_y + 9}" font-size="10" '
                f'class="axis">grey: undefined</text>')
    return _svg(max(left + size + 12, left + 14 * 9 + 120), legend_y + 16, title, body)


def _mi_svg(scores: dict[str, float]) -> Markup:
    """Features' mutual information with the target, highest first, as horizontal bars."""
    row, label_w, bar_w = 18, 150, 300
    peak = max([v for v in scores.values() if isinstance(v, int | float)] + [1e-12])
    body = []
    for i, (name, value) in enumerate(scores.items()):
        y = i * row
        w = bar_w * max(float(value), 0.0) / peak
        body.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(_short(name, 22))}'
                    f'<title>{escape(name)}</title></text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{_r(max(w, 0.5))}" height="12" '
                    f'fill="{_PALETTE[2]}"/>'
                    f'<text x="{_r(label_w + w + 5)}" y="{y + 13}" class="axis">{_fmt(float(value))}</text>')
    return _svg(label_w + bar_w + 70, row * len(scores) + 4,
                "Mutual information of each feature with the target, highest first", body)
