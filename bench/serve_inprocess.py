"""In-process scoring benchmark: the compiled scorer against `pipeline.predict`, in one process.

The model is what `looml run` would register for the issue's 20-feature table: looml's own
`build_preprocessor` (SchemaCoercer; median impute + missing indicators + standard scaling of
15 numeric columns with gaps; one-hot of 5 categorical columns with gaps and rare levels) and
the zoo's HistGradientBoostingClassifier and LightGBM classifier, fitted on a seeded frame.

Timed per model, on 1,000 held-out rows:

* baseline: `pipeline.predict(frame)` on a ready pandas DataFrame of 1 row and of 1,000 rows
  (the figure the issue quotes: about 9 ms and 16 ms), with scikit-learn's default threads,
  and again under `threadpool_limits(1, "openmp")` (on a shared 2-core machine HistGradient-
  Boosting's two spinning OpenMP threads are what makes its p99 explode);
* reference: `PipelineScorer.predict(batch)`, the server's fallback path (Batch -> DataFrame);
* compiled: `compile_scorer(...)`'s scorer on the same Batch, a dict of Python lists (what
  the server hands over after parsing JSON: floats, None for gaps, strings).

One-row figures cycle through the 1,000 rows one at a time (each call a fresh 1-row Batch);
p50 / p99 are per-call latencies, rows/s is rows over the mean call time. The compiled
predictions are checked against the pipeline's on all 1,000 rows (same labels, max |dp|).

Usage: .venv/bin/python bench/serve_inprocess.py [--rows N] [--calls K] [--models NAME ...]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

SEED = 42
NUMERIC, CATEGORICAL = 15, 5


def make_frame(rows: int, seed: int = SEED) -> tuple[pd.DataFrame, np.ndarray]:
    """15 numeric columns with 1-5 % gaps, 5 categorical with 4-80 Zipf-like levels and gaps."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(NUMERIC):
        x = [rng.normal(0, 1, rows), rng.lognormal(3, 1, rows), rng.uniform(0, 100, rows)][i % 3]
        x[rng.random(rows) < 0.01 + 0.04 * i / NUMERIC] = np.nan
        columns[f"num_{i}"] = x
    for i, levels in enumerate([4, 12, 30, 60, 80]):
        weights = 1 / np.arange(1, levels + 1) ** 1.2
        values = rng.choice([f"level_{j}" for j in range(levels)], rows, p=weights / weights.sum())
        values = values.astype(object)
        values[rng.random(rows) < 0.02] = None
        columns[f"cat_{i}"] = values
    frame = pd.DataFrame(columns)
    score = (np.nan_to_num(frame["num_0"]) + 0.5 * np.nan_to_num(frame["num_1"]) / 20
             - np.nan_to_num(frame["num_2"]) / 50 + (frame["cat_0"] == "level_1") + rng.normal(size=rows))
    return frame, np.where(score > 0.5, "yes", "no")


def as_batch(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """The frame as a server's Batch: one Python list per column, None for gaps."""
    return {c: [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in frame[c].tolist()]
            for c in frame.columns}


def timed(call: Callable[[int], Any], calls: int) -> np.ndarray:
    """Seconds of each of `calls` calls (after 5 untimed ones)."""
    for i in range(5):
        call(i)
    seconds = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        call(i)
        seconds[i] = time.perf_counter() - start
    return seconds


def line(label: str, seconds: np.ndarray, rows: int) -> str:
    p50, p99 = np.percentile(seconds, [50, 99]) * 1e3
    return f"  {label:<36} p50 {p50:9.3f} ms   p99 {p99:9.3f} ms   {rows / seconds.mean():>12,.0f} rows/s"


def bench_model(name: str, train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame, calls: int) -> None:
    """Fit one zoo model the looml way and time the three paths on `test`."""
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_info, threadpool_limits

    from looml.learn.features import build_preprocessor
    from looml.learn.zoo import make_estimator
    from looml.serve.compiled import compile_scorer
    from looml.serve.model import PipelineScorer
    from looml.spec import PreprocessingSpec

    features = {c: "numeric" if c.startswith("num_") else "categorical" for c in train.columns}
    pipeline = Pipeline([*build_preprocessor(features, PreprocessingSpec()).steps,
                         ("model", make_estimator(name, "classification", {}, SEED, 1))])
    with threadpool_limits(1, "openmp"):
        pipeline.fit(train, y)
    reference = PipelineScorer(pipeline, features)
    start = time.perf_counter()
    compiled = compile_scorer(pipeline, features, None, None, reference)
    built = time.perf_counter() - start
    if compiled is None:
        raise SystemExit(f"{name}: compile_scorer fell back to the pipeline (see the log above)")

    rows = len(test)
    batch = as_batch(test)
    singles = [{c: values[i:i + 1] for c, values in batch.items()} for i in range(rows)]
    frames = [test.iloc[i:i + 1] for i in range(rows)]

    got, want = compiled.predict(batch), reference.predict(batch)
    same = bool((got.labels == pipeline.predict(test)).all())
    gap = float(np.abs(got.proba - want.proba).max())
    openmp = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]
    print(f"\n{name}: {pipeline.steps[-1][1].__class__.__name__}, {compiled.width} model inputs, "
          f"scorer {compiled.name} (built and checked in {built:.2f} s); labels equal to "
          f"pipeline.predict on {rows} rows: {same}; max |dp| vs the pipeline {gap:.2e}; "
          f"OpenMP threads for the baseline {openmp or 'n/a'}")
    big = max(calls // 10, 20)
    results = {"pipeline.predict, 1 row": timed(lambda i: pipeline.predict(frames[i % rows]), calls)}
    with threadpool_limits(1, "openmp"):
        results["pipeline.predict 1 thread, 1 row"] = timed(lambda i: pipeline.predict(frames[i % rows]),
                                                            calls)
    results["PipelineScorer, 1 row"] = timed(lambda i: reference.predict(singles[i % rows]), calls)
    results["compiled, 1 row"] = timed(lambda i: compiled.predict(singles[i % rows]), calls)
    results[f"pipeline.predict, {rows} rows"] = timed(lambda i: pipeline.predict(test), big)
    with threadpool_limits(1, "openmp"):
        results[f"pipeline.predict 1 thread, {rows} rows"] = timed(lambda i: pipeline.predict(test), big)
    results[f"PipelineScorer, {rows} rows"] = timed(lambda i: reference.predict(batch), big)
    results[f"compiled, {rows} rows"] = timed(lambda i: compiled.predict(batch), big)
    for label, seconds in results.items():
        print(line(label, seconds, rows if label.endswith(" rows") else 1))
    one = {k.split(",")[0]: np.median(v) for k, v in results.items() if k.endswith("1 row")}
    many = {k.split(",")[0]: v.mean() for k, v in results.items() if k.endswith(" rows")}
    print("  ratios: 1 row p50, baseline / compiled: " + ", ".join(
        f"{k} {v / one['compiled']:.0f}x" for k, v in one.items() if k != "compiled"))
    print(f"          {rows} rows throughput, compiled / baseline: " + ", ".join(
        f"{k} {v / many['compiled']:.1f}x" for k, v in many.items() if k != "compiled"))


def main() -> None:
    """Parse the options and run every model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="training rows (default 20000)")
    parser.add_argument("--calls", type=int, default=1000, help="timed 1-row calls per path (default 1000)")
    parser.add_argument("--models", nargs="+", default=["hist_gradient_boosting", "lightgbm"],
                        choices=["hist_gradient_boosting", "lightgbm", "linear", "random_forest"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have valid feature names.*")
    frame, y = make_frame(args.rows + 1000)
    train, test = frame.iloc[:args.rows], frame.iloc[args.rows:].reset_index(drop=True)
    print(f"{args.rows} training rows x {frame.shape[1]} features ({NUMERIC} numeric, {CATEGORICAL} "
          f"categorical); {len(test)} scored rows")
    for name in args.models:
        bench_model(name, train, y[:args.rows], test, args.calls)


if __name__ == "__main__":
    main()
