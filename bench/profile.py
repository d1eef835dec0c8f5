"""Profile benchmark: `looml.data.profile.profile` against Polars' own summaries of the same frame.

The frame: 1,000,000 rows x 20 columns, 15 float64 (normal, log-normal and uniform, built from
three latent factors so that correlations are real, 1-3 % nulls) and 5 string columns with 10,
30, 100, 300 and 1,000 Zipf-distributed levels (1 % nulls). The 10-level column `segment`
depends on a latent factor, and is the target looml is given (as the pipeline gives the spec's
target), so the profile includes mutual information.

Time, side by side in this process: the baseline is `frame.describe()` + `frame.null_count()` +
`value_counts()` of each string column; looml is `profile(frame, target, seed)`, and separately
`validate(...)` on that profile. Both sides are run once untimed (imports, warm caches), then
`--repeats` times in alternating order; the ratio compares the minimum of each side, and the
median of the paired ratios is printed too.

Memory, in a fresh subprocess per measurement (3 per side): the frame is read, the peak-RSS
counter is reset (`/proc/self/clear_refs`), the side runs once, and the growth of the peak RSS
(VmHWM) over the RSS before is compared with `frame.estimated_size()`; where the counter cannot
be reset, the growth of `ru_maxrss` is used instead.

Targets: time ratio <= 2.0, peak memory <= 2x the frame's size. Exit status 0 when both pass.

Usage: .venv/bin/python bench/profile.py [--rows N] [--repeats K] [--target NAME|none]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
SEED = 7
CATEGORIES = {"segment": 10, "region": 30, "product": 100, "store": 300, "city": 1000}
TIME_TARGET = 2.0
MEMORY_TARGET = 2.0


def make_frame(rows: int, seed: int = SEED) -> pl.DataFrame:
    """The benchmark frame: 15 float64 columns and 5 string columns, with some nulls in each."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(rows, 3))
    columns: dict[str, pl.Series] = {}
    for i in range(15):
        weights = rng.normal(size=3) * (i % 4 != 3)  # every fourth column is pure noise
        base = latent @ weights + rng.normal(size=rows)
        values = (np.exp(base / 2) if i % 3 == 1 else
                  rng.uniform(0, 100, rows) + base if i % 3 == 2 else 50 + 10 * base)
        columns[f"x{i:02d}"] = _with_nulls(pl.Series(f"x{i:02d}", values), rng, 0.01 + 0.01 * (i % 3))
    for name, levels in CATEGORIES.items():
        if name == "segment":  # driven by the first latent factor
            edges = np.quantile(latent[:, 0], np.linspace(0, 1, levels + 1)[1:-1])
            codes = np.searchsorted(edges, latent[:, 0] + rng.normal(scale=0.5, size=rows))
        else:
            weights = 1 / np.arange(1, levels + 1)
            codes = rng.choice(levels, rows, p=weights / weights.sum())
        labels = np.array([f"{name}_{k:04d}" for k in range(levels)])
        columns[name] = _with_nulls(pl.Series(name, labels[codes]), rng, 0.01)
    return pl.DataFrame(columns)


def _with_nulls(series: pl.Series, rng: np.random.Generator, share: float) -> pl.Series:
    return series.scatter(np.flatnonzero(rng.random(len(series)) < share), None)


def baseline(frame: pl.DataFrame) -> None:
    """Polars' own summary: describe, null counts, and the value counts of each string column."""
    frame.describe()
    frame.null_count()
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            frame.get_column(name).value_counts()


def looml_profile(frame: pl.DataFrame, target: str | None) -> Any:
    """looml's profile, as the pipeline calls it."""
    from looml.data.profile import profile

    return profile(frame, target=target, seed=SEED)


def looml_validate(result: Any, target: str) -> Any:
    """looml's validation of that profile (what follows profiling in the pipeline)."""
    from looml.data.validate import validate
    from looml.spec import DataSpec, PreprocessingSpec, SplitSpec

    return validate(result, DataSpec(source="bench.parquet", target=target), SplitSpec(),
                    PreprocessingSpec())


def _data_file(rows: int, out: Path) -> Path:
    path = out / f"frame-{rows}.parquet"
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        make_frame(rows).write_parquet(path)
    return path


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset this process's peak-RSS counter (VmHWM) to its current RSS, where Linux allows it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_memory(side: str, path: Path, target: str | None) -> dict[str, Any]:
    """Run one side once in this (fresh) process; report its peak RSS growth and the frame size.

    With the counter reset, the growth is VmHWM after minus VmRSS before. `ru_maxrss` is not
    used then: it also keeps the peak of threads that exited before the reset (reading the
    Parquet file), which can hide the measured step's own peak. Without a reset it is the
    fallback: the growth of `ru_maxrss` over the run.
    """
    frame = pl.read_parquet(path)
    if side == "looml":  # imports are not the profile's memory
        import sklearn.feature_selection  # noqa: F401

        import looml.data.profile  # noqa: F401
    reset = _reset_peak()
    before = _status_kb("VmRSS") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if side == "looml":
        looml_profile(frame, target)
    else:
        baseline(frame)
    peak = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"side": side, "peak_growth": (peak - before) * 1024, "frame_size": frame.estimated_size(),
            "reset": reset}


def _memory(side: str, path: Path, target: str | None, repeats: int) -> list[int]:
    """Peak RSS growth (bytes) of `repeats` fresh subprocesses running one side once each."""
    args = [sys.executable, __file__, "--measure-memory", side, "--data", str(path),
            "--target", target or "none"]
    peaks = []
    for _ in range(repeats):
        done = subprocess.run(args, check=True, capture_output=True, text=True)
        peaks.append(json.loads(done.stdout.strip().splitlines()[-1])["peak_growth"])
    return peaks


def _time(fn: Any, cpu: list[float]) -> float:
    """Wall seconds of `fn()`; its CPU seconds (all threads of this process) go to `cpu`."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    cpu.append(time.process_time() - start_cpu)
    return time.perf_counter() - start


def main() -> int:
    """Run the benchmark; print times, ratios and peak memory; 0 when both targets pass."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-repeats", type=int, default=3, help="fresh processes per side")
    parser.add_argument("--target", default="segment", help="a column of the frame, or 'none'")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "profile")
    parser.add_argument("--measure-memory", choices=["looml", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    target = None if args.target == "none" else args.target
    if args.measure_memory:
        print(json.dumps(measure_memory(args.measure_memory, args.data, target)))
        return 0

    path = _data_file(args.rows, args.out)
    frame = pl.read_parquet(path)
    print(f"frame: {frame.height:,} rows x {frame.width} columns, estimated size "
          f"{frame.estimated_size() / 2**20:.1f} MiB ({path})")
    result = looml_profile(frame, target)  # untimed: imports scikit-learn, warms caches
    baseline(frame)
    times: dict[str, list[float]] = {"baseline": [], "looml": [], "validate": []}
    cpu: dict[str, list[float]] = {"baseline": [], "looml": [], "validate": []}
    for repeat in range(args.repeats):
        sides = ["baseline", "looml"] if repeat % 2 == 0 else ["looml", "baseline"]
        for side in sides:
            if side == "baseline":
                times["baseline"].append(_time(lambda: baseline(frame), cpu["baseline"]))
            else:
                times["looml"].append(_time(lambda: looml_profile(frame, target), cpu["looml"]))
        if target:
            times["validate"].append(_time(lambda: looml_validate(result, target), cpu["validate"]))
    paired = [lo / ba for lo, ba in zip(times["looml"], times["baseline"], strict=True)]
    ratio = min(times["looml"]) / min(times["baseline"])
    cpu_ratio = min(cpu["looml"]) / min(cpu["baseline"])
    memory = {side: _memory(side, path, target, args.memory_repeats) for side in ("baseline", "looml")}
    size = frame.estimated_size()
    mem_ratio = max(memory["looml"]) / size  # the worst of the fresh processes

    print(f"target: {target}; pair-wise sample {result.pairwise_rows:,} rows; mutual information on "
          f"{result.target.rows if result.target else 0:,} rows")
    print(f"{'measure':<34}{'value':>12}  target")
    print(f"{'baseline (describe+nulls+counts)':<34}{min(times['baseline']):>10.3f} s")
    print(f"{'looml profile':<34}{min(times['looml']):>10.3f} s")
    if times["validate"]:
        print(f"{'looml validate (on the profile)':<34}{min(times['validate']) * 1000:>10.2f} ms")
    print(f"{'time ratio (min / min)':<34}{ratio:>12.3f}  <= {TIME_TARGET}  "
          f"{'PASS' if ratio <= TIME_TARGET else 'FAIL'}")
    print(f"{'time ratio (median of pairs)':<34}{statistics.median(paired):>12.3f}")
    print(f"{'CPU-seconds ratio (min / min)':<34}{cpu_ratio:>12.3f}  "
          f"(baseline {min(cpu['baseline']):.3f} s, looml {min(cpu['looml']):.3f} s)")
    for side in ("baseline", "looml"):
        peaks = ", ".join(f"{p / 2**20:.0f}" for p in memory[side])
        print(f"{'peak RSS growth, ' + side:<34}{max(memory[side]) / 2**20:>8.1f} MiB  (max of {peaks})")
    print(f"{'looml peak (max) / frame size':<34}{mem_ratio:>12.3f}  <= {MEMORY_TARGET}  "
          f"{'PASS' if mem_ratio <= MEMORY_TARGET else 'FAIL'}")
    print("raw seconds: " + "; ".join(f"{k} {', '.join(f'{t:.3f}' for t in v)}"
                                      for k, v in times.items() if v))
    return 0 if ratio <= TIME_TARGET and mem_ratio <= MEMORY_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
