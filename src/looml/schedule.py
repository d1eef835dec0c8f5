"""Durations ("30m", "6h", "7d") and schedules ("every 6h", or a 5-field cron expression).

Cron fields are minute, hour, day of month, month, day of week (0 or 7 = Sunday), each `*`,
a number, a range `a-b`, a list `a,b`, and an optional step `/n`; as in cron, when both day
fields are restricted, a day matching either one matches. Times are UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Schedule", "parse_duration", "parse_schedule"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))


def parse_duration(value: str | float | int) -> float:
    """Seconds, from a number of seconds or a text such as '90s', '30m', '6h', '7d', '2w'."""
    if isinstance(value, bool):
        raise ValueError("expected seconds or a duration such as '30m', '6h', '7d'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        found = _DURATION.match(str(value))
        if not found:
            raise ValueError(f"{value!r} is not a duration: write seconds, or a number with s, m, h, d or w "
                             "(e.g. '30m', '6h', '7d')")
        seconds = float(found.group(1)) * _UNITS[found.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be more than 0 seconds")
    return seconds


@dataclass(frozen=True)
class Schedule:
    """When retraining is due: every `every` seconds, or at the minutes a cron expression names."""

    text: str
    every: float | None = None
    fields: tuple[frozenset[int], ...] = ()
    restricted_days: tuple[bool, bool] = (False, False)  # day of month, day of week

    def due(self, last: datetime | None, now: datetime) -> bool:
        """True when a scheduled time falls in (last, now]; with no `last`, when one is in the past day."""
        start = last if last is not None else now - timedelta(days=1)
        if self.every is not None:
            return last is None or (now - last).total_seconds() >= self.every
        return self.next_after(start) <= now

    def next_after(self, moment: datetime) -> datetime:
        """The first scheduled minute strictly after `moment` (UTC)."""
        t = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        minutes, hours, mdays, months, wdays = self.fields
        for _ in range(366 * 24 * 60):  # at most a year of minutes; whole days and hours are skipped
            if t.month not in months or not self._day_matches(t, mdays, wdays):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute in minutes:
                return t
            t += timedelta(minutes=1)
        raise ValueError(f"the schedule {self.text!r} names no time within a year")

    def _day_matches(self, t: datetime, mdays: frozenset[int], wdays: frozenset[int]) -> bool:
        in_month, in_week = t.day in mdays, (t.isoweekday() % 7) in wdays
        by_month, by_week = self.restricted_days
        if by_month and by_week:
            return in_month or in_week
        return in_month and in_week


def parse_schedule(text: str) -> Schedule:
    """'every 6h' (any duration), or a 5-field cron expression such as '0 3 * * 1-5'."""
    text = text.strip()
    if text.startswith("every "):
        return Schedule(text=text, every=parse_duration(text.removeprefix("every ")))
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"{text!r} is neither 'every <duration>' nor a cron expression of 5 fields "
                         "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'")
    fields = []
    problems = []
    for part, (name, low, high) in zip(parts, _FIELDS, strict=True):
        try:
            values = _cron_field(part, low, high)
        except ValueError as exc:
            problems.append(f"{name} {part!r}: {exc}")
            continue
        if name == "day of week" and 7 in values:
            values = (values - {7}) | {0}
        fields.append(frozenset(values))
    if problems:
        raise ValueError("; ".join(problems))
    return Schedule(text=text, fields=tuple(fields), restricted_days=(parts[2] != "*", parts[4] != "*"))


def _cron_field(part: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for item in part.split(","):
        body, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() else None
        if step_text and (step is None or step < 1):
            raise ValueError(f"step {step_text!r} must be a whole number >= 1")
        if body == "*":
            start, stop = low, high
        elif re.fullmatch(r"\d+-\d+", body):
            start, stop = map(int, body.split("-"))
        elif body.isdigit():
            start = stop = int(body)
            if step is not None:
                stop = high
        else:
            raise ValueError(f"expected *, a number, or a range a-b between {low} and {high}")
        if not (low <= start <= stop <= high):
            raise ValueError(f"values must lie between {low} and {high}, low before high")
        values.update(range(start, stop + 1, step or 1))
    return values
