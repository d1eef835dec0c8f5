"""The drift report as one self-contained HTML page: inline CSS and SVG, no script, no CDN.

Each column is drawn from the report's bucket shares (at most about 21 bars a side), never
from rows, so the page is a few kilobytes a column however many rows were compared.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from markupsafe import Markup, escape

from looml.monitor.drift import ColumnDrift, DriftReport
from looml.report.html import template_env

__all__ = ["render_drift"]

_REFERENCE, _CURRENT = "#1f77b4", "#ff7f0e"
_LABEL_CHARS = 18
_WIDTH, _HEIGHT, _LEFT, _BOTTOM = 520, 170, 40, 58


def render_drift(report: DriftReport, meta: dict[str, str], performance: Any = None) -> str:
    """The page for `report`; `meta` (model, current, reference) is shown in the header, and the
    live-performance verdict (a `LivePerformance`) when there is one."""
    return template_env().get_template("drift.html").render(
        report=report, meta=meta, performance=performance,
        columns=[_column(c) for c in report.columns], predictions=[_column(c) for c in report.predictions],
    )


def _column(c: ColumnDrift) -> dict[str, Any]:
    return {**asdict(c), "plot": _bars(c.column, c.bins) if c.bins else None}


def _bars(name: str, bins: dict[str, list[Any]]) -> Markup:
    """Reference and current shares side by side, one pair of bars per bucket."""
    labels, ref, cur = bins["labels"], bins["reference"], bins["current"]
    top = max([*ref, *cur, 1e-9])
    plot_w, plot_h = _WIDTH - _LEFT - 8, _HEIGHT - _BOTTOM - 10
    slot = plot_w / max(len(labels), 1)
    bar = max(slot * 0.4, 0.5)
    parts = [f'<line x1="{_LEFT}" y1="{10 + plot_h}" x2="{_WIDTH - 8}" y2="{10 + plot_h}" stroke="#999"/>',
             f'<text x="{_LEFT - 4}" y="14" text-anchor="end" font-size="10">{top:.0%}</text>']
    for i, label in enumerate(labels):
        x = _LEFT + i * slot + slot * 0.1
        for j, (share, colour) in enumerate(((ref[i], _REFERENCE), (cur[i], _CURRENT))):
            h = plot_h * share / top
            parts.append(f'<rect x="{x + j * bar:.1f}" y="{10 + plot_h - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{escape(label)}: '
                         f'{"reference" if j == 0 else "current"} {share:.2%}</title></rect>')
        short = label if len(label) <= _LABEL_CHARS else label[:_LABEL_CHARS - 1] + "…"
        cx, cy = x + bar, 14 + plot_h
        parts.append(f'<text x="{cx:.1f}" y="{cy:.1f}" font-size="9" text-anchor="end" '
                     f'transform="rotate(-45 {cx:.1f} {cy:.1f})">{escape(short)}</text>')
    return Markup(f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" width="{_WIDTH}" height="{_HEIGHT}" role="img" '
                  f'aria-label="{escape(name)}: reference and current shares">{"".join(parts)}</svg>')
