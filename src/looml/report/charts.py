"""The report's charts: inline SVG drawn from aggregated points (curves, bins, counts), never rows.

Each function returns markup the page embeds as is; the page needs no script and no network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from looml.report.text import fmt, pct, short

_MAX_POINTS = 1000  # points drawn per curve at most
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def pr_svg(pr: dict[str, Any]) -> Markup:
    """The precision-recall curve, with its average precision."""
    f = _Frame(0.0, 1.0, 0.0, 1.0)
    body = _axes(f, "recall", "precision")
    base = float(pr.get("prevalence") or 0.0)
    body.append(_line(f, [0, 1], [base, base], 'stroke="#999" stroke-dasharray="4 4"'))
    recall = np.asarray(pr["recall"], dtype=float)
    precision = np.asarray(pr["precision"], dtype=float)
    body.append(_line(f, *thin(recall, precision, _MAX_POINTS), f'stroke="{_PALETTE[0]}" stroke-width="2"'))
    return _svg(f.w, f.h, "Precision against recall of the positive class; dashed: its share", body)


def gain_svg(gain: dict[str, Any]) -> Markup:
    """The cumulative gain curve against random ordering (the lift it shows)."""
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


def calibration_svg(cal: dict[str, Any]) -> Markup:
    """The reliability curve: mean predicted against observed rate per bin, with the Brier score."""
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


def residual_histogram_svg(edges: Sequence[float], counts: Sequence[int]) -> Markup:
    """The distribution of the holdout residuals."""
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


def thin(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` points of a curve, evenly spaced, ends kept."""
    if len(x) <= limit:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, limit).round().astype(int))
    return x[keep], y[keep]


def _line(f: _Frame, x: Sequence[float], y: Sequence[float], style: str) -> str:
    pts = " ".join(f"{_r(f.px(a))},{_r(f.py(b))}" for a, b in zip(x, y, strict=True))
    return f'<polyline points="{pts}" fill="none" {style}/>'


def roc_svg(roc: dict[str, dict[str, list[float]]]) -> Markup:
    """The ROC curve of each class (one for a binary task)."""
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
        body.append(_line(f, *thin(fpr, tpr, per_curve), style))
        y = f.top + 8 + 18 * len(legend)
        legend.append(f'<line x1="{f.w + 4}" x2="{f.w + 28}" y1="{y}" y2="{y}" {style}/>'
                      f'<text x="{f.w + 34}" y="{y}" dy="4">{escape(str(label)[:16])} '
                      f'(AUC {auc:.3f})</text>')
    height = max(f.h, f.top + 18 * len(legend) + 8)
    return _svg(f.w + 190, height, "ROC curve, one line per class", body + legend)


def _blue(t: float) -> str:
    lo, hi = (247, 251, 255), (8, 48, 107)
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(lo, hi, strict=True))


def confusion_svg(labels: Sequence[Any], matrix: Sequence[Sequence[int]]) -> Markup:
    """The confusion matrix as a heatmap, counts in the cells."""
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


def scatter_svg(actual: np.ndarray, predicted: np.ndarray) -> Markup:
    """Predicted against actual, with the diagonal."""
    if actual.size == 0:
        return _svg(460, 60, "no finite predictions", ['<text x="10" y="30">no data</text>'])
    lo, hi = _span(actual, predicted)
    f = _Frame(lo, hi, lo, hi)
    body = _axes(f, "actual", "predicted")
    body.append(_line(f, [lo, hi], [lo, hi], 'stroke="#d62728" stroke-dasharray="5 4"'))
    body.append(_dots(f, actual, predicted))
    return _svg(f.w, f.h, "Predicted against actual, with the line y = x", body)


def residual_svg(actual: np.ndarray, predicted: np.ndarray) -> Markup:
    """Residuals against predicted."""
    if actual.size == 0:
        return _svg(460, 60, "no finite predictions", ['<text x="10" y="30">no data</text>'])
    residual = actual - predicted
    f = _Frame(*_span(predicted), *_span(residual, symmetric=True))
    body = _axes(f, "predicted", "residual (actual - predicted)")
    body.append(_line(f, [f.x0, f.x1], [0, 0], 'stroke="#d62728" stroke-dasharray="5 4"'))
    body.append(_dots(f, predicted, residual))
    return _svg(f.w, f.h, "Residuals against predicted, with the zero line", body)


# --- data profile --------------------------------------------------------------------------


def histogram_svg(name: str, edges: Sequence[float], counts: Sequence[int]) -> Markup:
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
    label = (f"{name}: {len(inner)} bins from {fmt(edges[0])} to {fmt(edges[-1])}; "
             f"{fmt(counts[0])} below, {fmt(counts[-1])} at or above")
    return _svg(width, height, label, bars)


def bars_svg(name: str, counts: dict[str, int], present: int) -> Markup:
    """Horizontal bars of a column's most frequent values, as shares of its present values."""
    row, label_w, bar_w = 14, 100, 70
    peak = max(counts.values()) / present
    body = []
    for i, (value, count) in enumerate(counts.items()):
        share = count / present
        w = bar_w * share / peak
        y = i * row
        body.append(f'<text x="{label_w - 4}" y="{y + 10}" text-anchor="end" font-size="11">'
                    f'{escape(short(value, 16))}</text>'
                    f'<rect x="{label_w}" y="{y + 2}" width="{_r(max(0.5, w))}" height="10" '
                    f'fill="{_PALETTE[0]}"><title>{escape(value)}: {count:,}</title></rect>'
                    f'<text x="{_r(label_w + w + 4)}" y="{y + 11}" font-size="10" '
                    f'class="axis">{pct(share)}</text>')
    label = f"{name}: most frequent values and their share of present rows"
    return _svg(label_w + bar_w + 44, row * len(counts) + 2, label, body)


def _diverging(value: float) -> str:
    """White at 0, red towards +1 and blue towards -1."""
    end = (178, 24, 43) if value > 0 else (33, 102, 172)
    t = min(abs(value), 1.0)
    return "#" + "".join(f"{round(255 + (e - 255) * t):02x}" for e in end)


def heatmap_svg(names: Sequence[str], values: Sequence[Sequence[float | None]], diverging: bool,
                 title: str) -> Markup:
    """A column-by-column association matrix (correlation or Cramér's V)."""
    """A matrix of a pair-wise statistic; grey where it is undefined, the value in each tooltip."""
    n = len(names)
    labels = [short(s, 14) for s in names]
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


def mi_svg(scores: dict[str, float]) -> Markup:
    """Features' mutual information with the target, highest first, as horizontal bars."""
    row, label_w, bar_w = 18, 150, 300
    peak = max([v for v in scores.values() if isinstance(v, int | float)] + [1e-12])
    body = []
    for i, (name, value) in enumerate(scores.items()):
        y = i * row
        w = bar_w * max(float(value), 0.0) / peak
        body.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(short(name, 22))}'
                    f'<title>{escape(name)}</title></text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{_r(max(w, 0.5))}" height="12" '
                    f'fill="{_PALETTE[2]}"/>'
                    f'<text x="{_r(label_w + w + 5)}" y="{y + 13}" class="axis">{fmt(float(value))}</text>')
    return _svg(label_w + bar_w + 70, row * len(scores) + 4,
                "Mutual information of each feature with the target, highest first", body)
