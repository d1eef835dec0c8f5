"""The run report: one self-contained HTML page."""

from looml.report.html import render_report

__all__ = ["render_report"]
