"""Durations and schedules: 'every 6h' and 5-field cron in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from looml.schedule import parse_duration, parse_schedule


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)  # 2026-11-21 is a Saturday


@pytest.mark.parametrize(("text", "seconds"), [(90, 90.0), ("90s", 90.0), ("30m", 1800.0), ("6h", 21600.0),
                                               ("7d", 604800.0), ("2w", 1209600.0), ("1.5h", 5400.0)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


HOW = r"write seconds, or a number with s, m, h, d or w \(e\.g\. '30m', '6h', '7d'\)$"


@pytest.mark.parametrize(("bad", "match"), [
    ("6 hours", rf"^'6 hours' is not a duration: {HOW}"),
    ("", rf"^'' is not a duration: {HOW}"),
    ("-1h", rf"^'-1h' is not a duration: {HOW}"),
    (0, r"^a duration must be more than 0 seconds$"),
    (True, r"^expected seconds or a duration such as '30m', '6h', '7d'$"),  # not 1 second
])
def test_bad_durations_say_how_to_write_one(bad: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_duration(bad)  # type: ignore[arg-type]


def test_cron_next_times() -> None:
    assert parse_schedule("0 3 * * *").next_after(at(23, 4)) == at(24, 3)
    assert parse_schedule("*/15 9-17 * * 1-5").next_after(at(21, 12)) == at(23, 9)  # Saturday -> Monday
    assert parse_schedule("30 8 1 * *").next_after(at(23, 0)) == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert parse_schedule("0 0 * * 7").next_after(at(23, 0)) == at(29, 0)  # 7 is Sunday too
    # both day fields restricted: either matches, as in cron
    assert parse_schedule("0 6 25 * 0").next_after(at(23, 7)) == at(25, 6)


def test_due() -> None:
    nightly = parse_schedule("0 3 * * *")
    assert nightly.due(at(23, 2), at(23, 4))
    assert not nightly.due(at(23, 3, 30), at(23, 10))
    every = parse_schedule("every 6h")
    assert every.due(None, at(23, 0)) and every.due(at(23, 0), at(23, 6))
    assert not every.due(at(23, 0), at(23, 5, 59))


@pytest.mark.parametrize(("text", "named"), [("61 3 * * *", "minute"), ("0 3 * *", "5 fields"),
                                             ("0 3 32 * *", "day of month"), ("0 3 * * mon", "day of week"),
                                             ("*/0 * * * *", "step")])
def test_bad_schedules_name_the_field(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_schedule(text)
