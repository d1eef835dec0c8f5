"""Hostile files: corrupted corpus tables end in a run or a named `DataError`, never a traceback.

500 seeded cases (tests/hostile/corruptions.py) go through `looml.check` in-process, the reading
and checking code `looml validate` and the start of `looml run` share; the two costly corruptions
run at full size (10,000 columns, a 10 MB field) in bench/hostile_files.py, and 20 cases go
through a whole `looml.run`. A failure names the case number, which `corruptions.case(n)` rebuilds.
"""

from __future__ import annotations

import traceback
import warnings
from collections import Counter
from pathlib import Path

import pytest

from looml.errors import DataError
from looml.pipeline import check, run

from .corruptions import CORRUPTIONS, Case, case, clear, tables

CASES = 500
CHUNKS = 10
RUNS = 20

pytestmark = pytest.mark.skipif(not tables() and not __import__("os").environ.get("CI"),
                                reason="the corpus (../shared/corpus) is not here")


def _outcome(c: Case, folder: Path, call: object = check) -> str:
    """'ok', 'DataError', or a failure line naming the case and the traceback's last lines."""
    spec = c.write(folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(spec)  # type: ignore[operator]
    except DataError as exc:
        assert exc.problems and all(p.message for p in exc.problems), str(c)
        return "DataError"
    except Exception as exc:  # what the test exists to catch: anything but a named data error
        tail = "".join(traceback.format_exception(exc)[-3:])
        return f"{c}: {type(exc).__name__}\n{tail}"
    return "ok"


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_corrupted_files_end_in_a_run_or_a_data_error(chunk: int, tmp_path: Path) -> None:
    outcomes: Counter[str] = Counter()
    failures = []
    for number in range(chunk * CASES // CHUNKS, (chunk + 1) * CASES // CHUNKS):
        c = case(number)
        folder = tmp_path / str(number)
        folder.mkdir()
        result = _outcome(c, folder)
        outcomes[f"{c.corruptions[0]}: {result if result in ('ok', 'DataError') else 'FAILED'}"] += 1
        if result not in ("ok", "DataError"):
            failures.append(result)
    assert not failures, "\n".join(failures)
    assert sum(outcomes.values()) == CASES // CHUNKS


def test_every_corruption_is_generated() -> None:
    made = Counter(name for n in range(CASES) for name in case(n).corruptions[:1])
    assert set(made) == set(CORRUPTIONS) and min(made.values()) >= 30


@pytest.mark.parametrize("number", range(0, RUNS * 25, 25))
def test_corrupted_files_through_a_whole_run(number: int, shared_project: Path) -> None:
    clear(shared_project)
    result = _outcome(case(number), shared_project, run)
    assert result in ("ok", "DataError"), result
