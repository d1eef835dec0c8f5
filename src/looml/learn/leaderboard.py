"""The leaderboard: one row per trial, and their ranking.

    trial_row(number, name, family, params, outcome) -> TrialRow
    rank(rows, primary) -> rows, complete trials best first

A row is what the report, the tracker and the ensemble read of a trial; its params and
choices are JSON-able.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from looml.learn.metrics import better

__all__ = ["TrialRow", "rank", "trial_row"]


@dataclass(frozen=True)
class TrialRow:
    """One leaderboard row. `state` is complete / pruned / failed / over budget / skipped;
    `error` says why a trial has no scores."""

    trial: int
    name: str
    family: str
    params: dict[str, Any]
    choices: dict[str, Any] = field(default_factory=dict)
    state: str = "complete"
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0  # the whole trial, every fold
    timings: dict[str, float] = field(default_factory=dict)  # fold_fit_seconds, predict_ms_per_1000
    size_bytes: int = 0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)


def trial_row(number: int, name: str, family: str, params: dict[str, Any], outcome: dict[str, Any],
              choices: dict[str, Any] | None = None) -> TrialRow:
    """A leaderboard row from a trial's outcome (see `looml.learn.trial.run_trial`)."""
    timings = {k: round(outcome[k], 4) for k in ("fold_fit_seconds", "predict_ms_per_1000") if k in outcome}
    return TrialRow(
        trial=number, name=name, family=family, params={k: _jsonable(v) for k, v in params.items()},
        choices={k: _jsonable(v) for k, v in (choices or {}).items()}, state=outcome["state"],
        mean=outcome.get("mean", {}), std=outcome.get("std", {}),
        fit_seconds=round(outcome.get("seconds", 0.0), 4), timings=timings,
        size_bytes=outcome.get("size_bytes", 0), error=outcome.get("error", ""))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def rank(rows: list[TrialRow], primary: str, lower: bool | None = None) -> list[TrialRow]:
    """Complete trials best first (ties keep trial order; an undefined score ranks last), then the rest.
    `lower`: smaller is better (default: by the built-in metric's direction)."""
    scored = [r for r in rows if r.state == "complete" and r.mean.get(primary) == r.mean.get(primary)]
    ranked: list[TrialRow] = []
    for row in sorted(scored, key=lambda r: r.trial):
        i = 0
        while i < len(ranked) and not better(primary, row.mean[primary], ranked[i].mean[primary], lower):
            i += 1
        ranked.insert(i, row)
    rest = [r for r in rows if r not in ranked]
    return ranked + sorted(rest, key=lambda r: (r.state != "complete", r.trial))
