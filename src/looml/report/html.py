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

__all__ = ["render_report"]

_DASH = "—"
_MAX_POINTS = 1000
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def render_report(context: dict[str, Any]) -> str:
    """Render the report context of one run as a self-contained HTML page.

    `context` holds JSON-able values (title, task, data profile, leaderboard, test metrics,
    gate, plot data and stage records). User-provided text is escaped; missing or NaN
    numbers show as an em dash.
    """
    primary = context.get("primary_metric", "")
    return _env().get_template("report.html").render(
        ctx=context,
        primary=primary,
        leaderboard=_leaderboard(context.get("leaderboard") or [], primary),
        test_metrics=_ordered(context.get("test_metrics") or {}, primary),
        plots=_plots(context.get("task", ""), context.get("plots") or {}),
        lower_is_better=LOWER_IS_BETTER,
    )


@cache
def _env() -> Environment:
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


def _leaderboard(rows: list[dict[str, Any]], primary: str) -> dict[str, Any]:
    names: list[str] = []
    for row in rows:
        names += [m for m in row.get("mean") or {} if m not in names]
    names.sort(key=lambda m: m != primary)
    out, rank = [], 0
    for row in rows:
        error = row.get("error") or ""
        rank += 0 if error else 1
        mean, std = row.get("mean") or {}, row.get("std") or {}
        cells = []
        for m in names:
            value, spread = _fmt(mean.get(m)), _fmt(std.get(m))
            cells.append((value, "" if _DASH in (value, spread) else spread))
        out.append({"rank": _DASH if error else rank, "name": row.get("name", ""),
                    "cells": cells, "fit": _fmt(row.get("fit_seconds")), "error": error})
    return {"metrics": names, "rows": out}


def _plots(task: str, plots: dict[str, Any]) -> list[tuple[str, Markup]]:
    if task == "regression":
        actual = np.asarray(plots.get("actual") or [], dtype=float)
        predicted = np.asarray(plots.get("predicted") or [], dtype=float)
        if actual.size == 0 or actual.shape != predicted.shape:
            return []
        ok = np.isfinite(actual) & np.isfinite(predicted)
        actual, predicted = _thin(actual[ok], predicted[ok], _MAX_POINTS)
        return [("Predicted vs actual", _scatter_svg(actual, predicted)),
                ("Residuals", _residual_svg(actual, predicted))]
    out = []
    if plots.get("roc"):
        out.append(("ROC curve", _roc_svg(plots["roc"])))
    labels = plots.get("labels") or []
    if labels and np.shape(plots.get("confusion") or []) == (len(labels), len(labels)):
        out.append(("Confusion matrix", _confusion_svg(labels, plots["confusion"])))
    return out


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
