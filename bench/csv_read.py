"""CSV read benchmark: looml's file source against the plain `pl.read_csv` it wraps.

Both sides read the same seeded 1,000,000-row CSV in the same process, alternating, and the
minimum of each is compared (absolute times drift on a shared machine; the ratio is the result):

* baseline: `pl.read_csv(path, try_parse_dates=True, null_values=[...])`, which is exactly what
            looml's file source did before it reported bad lines (and still does first);
* looml:    `read_files(FileSource(path=...))`: the read plus the checks for malformed lines
            and the note about mostly-numeric text columns.

Three files: a clean one (no missing value in the last column: one read, nothing else), the
same with 2 % missing values in the last column (a short line pads the last column with nulls,
so looml scans the file for field counts: the cost of that scan), and one with 20 malformed
lines read with `skip_bad_lines: true` (scan, filter, read again; the baseline there is
`pl.read_csv` of the same file with the bad lines already removed).

Usage: .venv/bin/python bench/csv_read.py [--rows N] [--repeats K] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from looml.data.sources.files import read_files
from looml.spec import FileSource

NULLS = ["", "NA", "N/A", "NaN", "null"]


def make_frame(rows: int, seed: int = 42) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01")
    return pl.DataFrame({
        "id": np.arange(rows),
        "x1": rng.normal(size=rows).round(6),
        "x2": rng.lognormal(size=rows).round(4),
        "count": rng.integers(0, 1000, rows),
        "colour": rng.choice(["red", "green", "blue", "amber"], rows),
        "day": (start + rng.integers(0, 700, rows).astype("timedelta64[D]")).astype(str),
        "label": rng.choice(["yes", "no"], rows),
    })


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def compare(name: str, baseline: Callable[[], object], looml: Callable[[], object], repeats: int) -> None:
    baseline(), looml()  # warm the page cache and Polars' thread pool
    base = looml_s = float("inf")
    for _ in range(repeats):  # alternate, so drift hits both sides alike
        base = min(base, best_of(baseline, 1))
        looml_s = min(looml_s, best_of(looml, 1))
    print(f"{name:<34} baseline {base:6.3f} s   looml {looml_s:6.3f} s   ratio {looml_s / base:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/out/csv_read"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    frame = make_frame(args.rows)
    clean = args.out / "clean.csv"
    frame.write_csv(clean)
    holes = args.out / "missing-last.csv"
    frame.with_columns(pl.when(pl.col("id") % 50 == 7).then(None).otherwise(pl.col("label")).alias("label")) \
        .write_csv(holes)
    lines = clean.read_bytes().split(b"\n")
    bad_rows = set(np.random.default_rng(1).choice(np.arange(1, args.rows), 20, replace=False).tolist())
    ragged = args.out / "ragged.csv"
    ragged.write_bytes(b"\n".join(line + b",extra" if i in bad_rows else line
                                  for i, line in enumerate(lines)))
    fixed = args.out / "ragged-fixed.csv"
    fixed.write_bytes(b"\n".join(line for i, line in enumerate(lines) if i not in bad_rows))
    print(f"{args.rows:,} rows, {clean.stat().st_size / 1e6:.1f} MB; best of {args.repeats}")

    def plain(path: Path) -> Callable[[], object]:
        return lambda: pl.read_csv(path, try_parse_dates=True, null_values=NULLS)

    def looml(path: Path, **options: object) -> Callable[[], object]:
        return lambda: read_files(FileSource(path=str(path), **options), Path.cwd())

    compare("clean", plain(clean), looml(clean), args.repeats)
    compare("2% missing in the last column", plain(holes), looml(holes), args.repeats)
    compare("20 bad lines, skip_bad_lines", plain(fixed), looml(ragged, skip_bad_lines=True), args.repeats)


if __name__ == "__main__":
    main()
