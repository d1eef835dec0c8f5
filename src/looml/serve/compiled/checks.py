"""Validation rows: seeded, messy, from the schema and the training profile; a compiled scorer
is used only when it matches the pipeline on every batch."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from looml.data.schema import Schema
from looml.serve.scoring import Batch

__all__ = ["validation_batches"]

_SEED = 0


def validation_batches(features: dict[str, str], schema: Schema | None,
                        profile: dict[str, Any] | None) -> list[tuple[str, Batch]]:
    """About 1,900 rows in the shapes a server receives: typed and messy lists, numpy arrays,
    single rows and uniform columns (pandas types a column by all its values), gaps, absent columns."""
    rng = np.random.default_rng(_SEED)
    stats = {c["name"]: c for c in (profile or {}).get("columns", [])}
    columns = schema.columns if schema is not None else {}
    domains = {name: list(getattr(columns.get(name), "categories", None)
                          or stats.get(name, {}).get("top_values") or stats.get(name, {}).get("frequent")
                          or ["a", "b", "c"]) for name in features}

    def draw(name: str, n: int, messy: bool) -> list[Any]:
        if features[name] == "numeric":
            return _numbers(rng, n, messy, stats.get(name, {}), columns.get(name))
        if features[name] == "datetime":
            return _dates(rng, n, messy, stats.get(name, {}))
        if features[name] == "text":
            return _sentences(rng, n, messy, domains[name])
        return _categories(rng, n, messy, domains[name])

    clean = {name: draw(name, 800, False) for name in features}
    messy = {name: draw(name, 800, True) for name in features}
    batches: list[tuple[str, Batch]] = [("typed", clean), ("messy", messy)]
    batches.append(("numpy arrays", {name: _as_array(values[:200], features[name])
                                     for name, values in clean.items()}))
    for i in range(12):
        batches.append(("one typed row", {name: values[i:i + 1] for name, values in clean.items()}))
        batches.append(("one messy row", {name: values[i:i + 1] for name, values in messy.items()}))
    batches.append(("all missing", {name: [None] for name in features}))
    first = next(iter(features))
    batches.append(("absent columns", {first: clean[first][:3]}))
    codes = {name: _integers(domains[name]) or [0, 1, 2, 3] for name in features}
    for label, value in (("ints", lambda c, i: c[i % len(c)]), ("ints and gaps", lambda c, i: c[i % len(c)]
                                                                if i % 3 else None),
                         ("bools", lambda c, i: i % 2 == 0), ("floats", lambda c, i: float(c[i % len(c)]))):
        batches.append((f"all {label}", {name: [value(codes[name], i) for i in range(8)]
                                         if kind != "datetime" else clean[name][:8]
                                         for name, kind in features.items()}))
    return batches


def _sentences(rng: np.random.Generator, n: int, messy: bool, domain: list[Any]) -> list:
    """Free text: 1-12 words drawn from the column's frequent values (and unseen words), with
    gaps, empty texts and numbers in the messy batch."""
    words = " ".join(str(v) for v in domain).split() or ["a", "b", "c"]
    words += ["unseen", "WORDS", "état", "42"]
    out: list[Any] = [" ".join(rng.choice(words, int(rng.integers(1, 13)))) for _ in range(n)]
    if messy:
        for i in range(0, n, 7):
            out[i] = [None, "", "   ", 3.5, float("nan")][(i // 7) % 5]
    return out


def _integers(domain: list[Any]) -> list[int]:
    """The categories that are whole numbers ("3" may arrive as 3, or as 3.0 next to a gap)."""
    found = []
    for value in domain:
        with contextlib.suppress(TypeError, ValueError):
            found.append(int(value))
    return found


def _numbers(rng: np.random.Generator, n: int, messy: bool, stats: dict[str, Any], column: Any) -> list:
    low = stats.get("min") if stats.get("min") is not None else getattr(column, "min", None)
    high = stats.get("max") if stats.get("max") is not None else getattr(column, "max", None)
    if low is None or high is None or not np.isfinite([low, high, high - low]).all():
        low, high = -10.0, 10.0  # an infinite draw would make both scorers refuse the whole batch
    span = (high - low) or 1.0
    quantiles = [q for q in (stats.get("quantiles") or {}).values() if q is not None]
    points = np.array([low, high, *quantiles], dtype=np.float64)
    pick = rng.random(n)
    x = np.where(pick < 0.2, rng.choice(points, n), rng.uniform(low, high, n))
    x = np.where((pick >= 0.2) & (pick < 0.3), rng.uniform(low - span, high + span, n), x)
    if stats.get("integral"):
        x = np.round(x)
    out: list[Any] = [None if p > 0.9 else (int(v) if stats.get("integral") else float(v))
                      for p, v in zip(pick, x, strict=True)]
    if messy:
        forms: list[Callable[[Any], Any]] = [str, lambda v: f" {v} ", lambda v: "not a number", lambda v: "",
                                              lambda v: float("nan"), lambda v: True, lambda v: round(v)]
        for i in np.flatnonzero(rng.random(n) < 0.4):
            if out[i] is not None:
                out[i] = forms[int(rng.integers(len(forms)))](out[i])
    return out


def _categories(rng: np.random.Generator, n: int, messy: bool, domain: list[Any]) -> list:
    odd: list[Any] = ["unseen-1", "unseen-2", "(missing)", None]
    if messy:
        odd += ["", 1, 2.5, 0, True, False, float("nan")]
        odd += [f(v) for v in _integers(domain) for f in (int, float)]
    pick = rng.random(n)
    return [domain[int(rng.integers(len(domain)))] if p < 0.8 else odd[int(rng.integers(len(odd)))]
            for p in pick]


def _dates(rng: np.random.Generator, n: int, messy: bool, stats: dict[str, Any]) -> list:
    try:
        low, high = pd.Timestamp(stats["earliest"]).value, pd.Timestamp(stats["latest"]).value
    except (KeyError, TypeError, ValueError):
        low, high = pd.Timestamp("2015-01-01").value, pd.Timestamp("2025-01-01").value
    stamps = [pd.Timestamp(int(v)).to_pydatetime() for v in rng.integers(low, high + 1, n) // 1000 * 1000]
    out: list[Any] = [None if p > 0.9 else s.strftime("%Y-%m-%dT%H:%M:%S")
                      for p, s in zip(rng.random(n), stamps, strict=True)]
    if messy:
        forms: list[Callable[[dt.datetime], Any]] = [
            lambda s: s.strftime("%Y-%m-%d"), lambda s: s.strftime("%Y-%m-%d %H:%M:%S.%f"), lambda s: s,
            lambda s: "not a date", lambda s: "", lambda s: None, lambda s: "1965-07-04 13:45:00"]
        for i in np.flatnonzero(rng.random(n) < 0.5):
            out[i] = forms[int(rng.integers(len(forms)))](stamps[i])
    return out


def _as_array(values: list, kind: str) -> np.ndarray:
    if kind == "numeric":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if kind == "datetime":
        return np.array(values, dtype="datetime64[s]")
    return np.array(["(missing)" if v is None else v for v in values], dtype=str)
