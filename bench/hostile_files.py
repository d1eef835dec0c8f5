"""Hostile files at full size: the two corruptions the CI test runs small (tests/hostile).

A corpus table cut to 30 rows and 4 features, then (1) widened with 10,000 numeric columns and
(2) given one 10 MB field, each through `looml.check` (what `looml validate` runs) in a fresh
project, timed. Before issue 16 the 10,000-column case ran past 120 s (Polars' `frame.schema`
built once per column, and a `select` per column on the whole frame); target: under 60 s on
the shared 2-core machine. With `--cases N` it also runs the first N small cases and counts
their outcomes, as the CI test does.

Usage: .venv/bin/python bench/hostile_files.py [--cases N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "hostile"))

from corruptions import CASES_SEED, case

from looml.errors import DataError
from looml.pipeline import check


def timed(c: object) -> tuple[str, float]:
    """The outcome ('ok', 'DataError' or the exception's name) and seconds of one case."""
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = c.write(Path(folder))  # type: ignore[attr-defined]
        start = time.perf_counter()
        try:
            check(spec)
            outcome = "ok"
        except DataError:
            outcome = "DataError"
        except Exception as exc:
            outcome = f"CRASH {type(exc).__name__}: {exc}"
        return outcome, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=0)
    args = parser.parse_args()
    timed(case(1))  # imports and warm caches, untimed
    failed = False
    for kind in ("wide", "huge_field"):
        number = next(n for n in range(1000) if case(n).corruptions[0] == kind)
        c = case(number, CASES_SEED, small=False)
        outcome, seconds = timed(c)
        failed |= outcome.startswith("CRASH") or seconds > 60
        print(f"{c} ({len(c.data) / 2**20:.1f} MB file): {outcome} in {seconds:.1f} s")
    if args.cases:
        outcomes: Counter[str] = Counter()
        start = time.perf_counter()
        for n in range(args.cases):
            outcome, _ = timed(case(n))
            outcomes[outcome.split(":")[0]] += 1
        failed |= any(k.startswith("CRASH") for k in outcomes)
        print(f"{args.cases} small cases in {time.perf_counter() - start:.1f} s: {dict(outcomes)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
