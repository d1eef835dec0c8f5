"""Drift benchmark: `looml.monitor.drift.detect` against a bare numpy/scipy computation and
against Evidently's default data drift report, on the same frames in the same run.

The frames: a reference of 1,000,000 rows x 20 columns (15 float64: normal, log-normal and
uniform, 1-3 % nulls; 5 strings with 10, 30, 100, 300 and 1,000 Zipf-distributed levels, 1 %
nulls) and a current window of 1,000,000 rows of the same make, with 4 numeric columns shifted
and 1 categorical column's mix changed.

Sides, each run once untimed and then `--repeats` times in alternating order (minimum kept):

- looml: `detect(reference_summary, current, DriftSpec())`. The reference is summarised once
  beforehand, as training does (`summarise`); that time is printed on its own line, not counted.
- baseline: per numeric column `scipy.stats.ks_2samp(ref, cur)`, per string column a chi-square
  test of the two value-count vectors (`scipy.stats.chi2_contingency`), and a PSI on 10 decile
  buckets per column computed with Polars (`qcut` edges of the reference, `cut` of both).
- Evidently 0.7.23 (`Report([DataDriftPreset()]).run(current, reference)`), in its own
  virtualenv (bench/out/evidently-venv, pandas < 3) as a subprocess on the Parquet files, run
  `--evidently-repeats` times; its time excludes reading the files. Skipped when the venv is absent.

Memory, in a fresh subprocess per measurement: the current frame and the summary are loaded, the
peak-RSS counter is reset (`/proc/self/clear_refs`), `detect` runs once, and the growth of the
peak RSS (VmHWM) over the RSS before is compared with `current.estimated_size()`.

Targets: looml >= 20x faster than Evidently, no slower than the baseline, peak memory <= 2x the
current frame's size. Exit status 0 when the targets that could be measured pass.

Usage: .venv/bin/python bench/drift.py [--rows N] [--repeats K] [--evidently-repeats K]
Set up Evidently with:  python3 -m venv bench/out/evidently-venv &&
    DO_NOT_TRACK=true bench/out/evidently-venv/bin/pip install evidently==0.7.23 "pandas<3" pyarrow
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "drift"
EVIDENTLY_PYTHON = HERE / "out" / "evidently-venv" / "bin" / "python"
CATEGORIES = {"segment": 10, "region": 30, "product": 100, "store": 300, "city": 1000}
SPEED_TARGET, MEMORY_TARGET = 20.0, 2.0

EVIDENTLY_SCRIPT = """
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
result = snapshot.dict()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
drifted = [m for m in result["metrics"] if m.get("metric_name", "").startswith("DriftedColumnsCount")]
print(json.dumps({"seconds": seconds, "peak_growth": (peak - before) * 1024,
                  "drifted": drifted[0]["value"] if drifted else None}))
"""


def make_frame(rows: int, seed: int, shifted: bool = False) -> pl.DataFrame:
    """15 float64 and 5 string columns with nulls; `shifted` moves x00, x04, x08 (mean) and x12
    (scale), and changes the mix of `region`."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pl.Series] = {}
    for i in range(15):
        base = rng.normal(size=rows)
        if shifted and i in (0, 4, 8):
            base = base + 0.5
        if shifted and i == 12:
            base = base * 1.5
        values = (np.exp(base / 2) if i % 3 == 1 else
                  rng.uniform(0, 100, rows) + base if i % 3 == 2 else 50 + 10 * base)
        columns[f"x{i:02d}"] = _with_nulls(pl.Series(f"x{i:02d}", values), rng, 0.01 + 0.01 * (i % 3))
    for name, levels in CATEGORIES.items():
        weights = 1 / np.arange(1, levels + 1) ** (0.3 if shifted and name == "region" else 1.0)
        codes = rng.choice(levels, rows, p=weights / weights.sum())
        labels = np.array([f"{name}_{k:04d}" for k in range(levels)])
        columns[name] = _with_nulls(pl.Series(name, labels[codes]), rng, 0.01)
    return pl.DataFrame(columns)


def _with_nulls(series: pl.Series, rng: np.random.Generator, share: float) -> pl.Series:
    return series.scatter(np.flatnonzero(rng.random(len(series)) < share), None)


def kinds(frame: pl.DataFrame) -> dict[str, str]:
    """Each column's feature kind, as validation would give it."""
    return {n: "categorical" if t == pl.String else "numeric" for n, t in frame.schema.items()}


def baseline(reference: pl.DataFrame, current: pl.DataFrame) -> dict[str, float]:
    """Bare per-column tests: KS p-values, chi-square p-values and a Polars PSI on deciles."""
    out: dict[str, float] = {}
    for name, dtype in reference.schema.items():
        ref, cur = reference.get_column(name).drop_nulls(), current.get_column(name).drop_nulls()
        if dtype == pl.String:
            counts = (pl.concat([ref.value_counts(name="n").with_columns(side=pl.lit("ref")),
                                 cur.value_counts(name="n").with_columns(side=pl.lit("cur"))])
                      .pivot(on="side", index=name, values="n").fill_null(0))
            out[name] = stats.chi2_contingency(counts.select("ref", "cur").to_numpy().T)[1]
            out[f"psi:{name}"] = _psi(*(counts.get_column(side).to_numpy() for side in ("ref", "cur")))
        else:
            ref_values = ref.to_numpy()
            out[name] = stats.ks_2samp(ref_values, cur.to_numpy()).pvalue
            cuts = np.unique(np.quantile(ref_values, np.linspace(0, 1, 11)[1:-1]))
            ref_bins = ref.cut(list(cuts)).value_counts(name="n").sort(ref.name)
            cur_bins = cur.cut(list(cuts)).value_counts(name="n").sort(cur.name)
            joined = ref_bins.join(cur_bins, on=ref.name, how="full", coalesce=True, suffix="_cur")
            out[f"psi:{name}"] = _psi(*(joined.get_column(c).fill_null(0).to_numpy() for c in ("n", "n_cur")))
    return out


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    p, q = np.clip(ref / ref.sum(), 1e-4, None), np.clip(cur / cur.sum(), 1e-4, None)
    return float(np.sum((q - p) * np.log(q / p)))


def looml_detect(summary: Any, current: pl.DataFrame) -> Any:
    from looml.monitor.drift import detect
    from looml.spec import DriftSpec

    return detect(summary, current, DriftSpec())


def _files(rows: int) -> tuple[Path, Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    ref, cur = OUT / f"reference-{rows}.parquet", OUT / f"current-{rows}.parquet"
    if not ref.exists():
        make_frame(rows, seed=1).write_parquet(ref)
    if not cur.exists():
        make_frame(rows, seed=2, shifted=True).write_parquet(cur)
    return ref, cur


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def measure_memory(side: str, ref_path: Path, cur_path: Path) -> dict[str, Any]:
    """One side once in this fresh process: peak RSS growth over the RSS with its inputs loaded.

    looml's reference is read from the JSON the main process wrote, as `looml monitor` reads it
    from the registry: summarising here would leave freed pages that `detect` then reuses."""
    from looml.monitor.reference import Reference

    current = pl.read_parquet(cur_path)
    reference = pl.read_parquet(ref_path) if side == "baseline" else None
    summary = (Reference.from_dict(json.loads(_summary_path(ref_path).read_text(encoding="utf-8")))
               if side == "looml" else None)
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    before = _status_kb("VmRSS") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if side == "looml":
        looml_detect(summary, current)
    else:
        baseline(reference, current)
    peak = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_growth": (peak - before) * 1024, "frame_size": current.estimated_size(), "reset": reset}


def _summary_path(ref_path: Path) -> Path:
    return ref_path.with_suffix(".summary.json")


def _memory(side: str, ref: Path, cur: Path, repeats: int) -> list[int]:
    args = [sys.executable, __file__, "--measure-memory", side, "--ref", str(ref), "--cur", str(cur)]
    return [json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout
                       .strip().splitlines()[-1])["peak_growth"] for _ in range(repeats)]


def _evidently(ref: Path, cur: Path, repeats: int) -> list[dict[str, Any]]:
    if not EVIDENTLY_PYTHON.exists() or repeats == 0:
        return []
    env = {**os.environ, "DO_NOT_TRACK": "true", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    runs = []
    for _ in range(repeats):
        done = subprocess.run([str(EVIDENTLY_PYTHON), "-c", EVIDENTLY_SCRIPT, str(ref), str(cur)], env=env,
                              check=True, capture_output=True, text=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    """Run the benchmark; print times, ratios and peak memory; 0 when the targets pass."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--evidently-repeats", type=int, default=1)
    parser.add_argument("--memory-repeats", type=int, default=2)
    parser.add_argument("--measure-memory", choices=["looml", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--ref", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cur", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_memory:
        print(json.dumps(measure_memory(args.measure_memory, args.ref, args.cur)))
        return 0
    from looml.monitor.reference import summarise

    ref_path, cur_path = _files(args.rows)
    reference, current = pl.read_parquet(ref_path), pl.read_parquet(cur_path)
    print(f"reference {reference.height:,} x {reference.width}, current {current.height:,} rows, "
          f"{current.estimated_size() / 2**20:.1f} MiB in memory")
    start = time.perf_counter()
    summary = summarise(reference, kinds(reference))
    summary_seconds = time.perf_counter() - start
    _summary_path(ref_path).write_text(summary.to_json(), encoding="utf-8")
    report = looml_detect(summary, current)  # untimed warm-up
    baseline(reference, current)
    times: dict[str, list[float]] = {"baseline": [], "looml": []}
    for repeat in range(args.repeats):
        for side in (["baseline", "looml"] if repeat % 2 == 0 else ["looml", "baseline"]):
            times[side].append(_timed(lambda s=side: baseline(reference, current) if s == "baseline"
                                      else looml_detect(summary, current)))
    memory = {side: _memory(side, ref_path, cur_path, args.memory_repeats) for side in ("looml", "baseline")}
    evidently = _evidently(ref_path, cur_path, args.evidently_repeats)
    looml_s, base_s = min(times["looml"]), min(times["baseline"])
    mem_ratio = max(memory["looml"]) / current.estimated_size()
    print(f"looml drifted: {report.drifted} (dataset drift: {report.dataset_drift})")
    print(f"{'measure':<40}{'value':>12}  target")
    print(f"{'looml reference summary (once, at training)':<40}{summary_seconds:>10.3f} s  "
          f"({len(summary.to_json()) / 1024:.0f} KiB JSON)")
    print(f"{'looml detect':<40}{looml_s:>10.3f} s")
    print(f"{'baseline numpy/scipy/polars':<40}{base_s:>10.3f} s")
    passed = looml_s <= base_s
    print(f"{'baseline / looml':<40}{base_s / looml_s:>12.2f}  >= 1  {'PASS' if passed else 'FAIL'}")
    if evidently:
        ev_s = min(r["seconds"] for r in evidently)
        fast = ev_s / looml_s >= SPEED_TARGET
        passed = passed and fast
        peak = max(r["peak_growth"] for r in evidently) / 2**20
        print(f"{'Evidently DataDriftPreset':<40}{ev_s:>10.3f} s  (drifted: {evidently[0]['drifted']})")
        print(f"{'Evidently / looml':<40}{ev_s / looml_s:>12.1f}  >= {SPEED_TARGET:g}  "
              f"{'PASS' if fast else 'FAIL'}")
        print(f"{'Evidently / baseline':<40}{ev_s / base_s:>12.1f}")
        print(f"{'Evidently peak RSS growth':<40}{peak:>8.0f} MiB")
    else:
        print("Evidently: not run (no bench/out/evidently-venv)")
    for side in ("looml", "baseline"):
        print(f"{'peak RSS growth, ' + side:<40}{max(memory[side]) / 2**20:>8.1f} MiB  "
              f"(max of {', '.join(f'{p / 2**20:.0f}' for p in memory[side])})")
    small = mem_ratio <= MEMORY_TARGET
    print(f"{'looml peak / current frame size':<40}{mem_ratio:>12.3f}  <= {MEMORY_TARGET:g}  "
          f"{'PASS' if small else 'FAIL'}")
    print("raw seconds: " + "; ".join(f"{k} {', '.join(f'{t:.3f}' for t in v)}" for k, v in times.items()))
    return 0 if passed and small else 1


if __name__ == "__main__":
    sys.exit(main())
