"""How numbers and names read on the report's page and in its charts."""

from __future__ import annotations

import math
from typing import Any

DASH = "—"  # what a missing value reads as


def fmt(value: Any) -> str:
    """A number as the page shows it: thousands separated, 4 significant digits, DASH for none."""
    if value is None:
        return DASH
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return DASH
    if 1e4 <= abs(value) < 1e9:  # plain digits read better than 1.235e+05 here
        return f"{value:,.0f}"
    return f"{value:.4g}"


def pct(rate: float | None) -> str:
    """A share as a percentage, DASH for none."""
    if rate is None or math.isnan(rate):
        return DASH
    return "0%" if rate == 0 else f"{rate * 100:.3g}%"


def short(text: Any, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
