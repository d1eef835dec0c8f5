"""The loop's own overhead: one `looml loop` cycle on a 100,000-row window of served traffic,
monitoring and deciding, without the retraining itself (issue 6: under 5 s).

Setup (untimed, in the git-ignored bench/out/loop/): a project trained on 20,000 rows of the
20-column table of `serve_inprocess.py` (15 numeric, 5 categorical; candidate `linear`), and a
second version trained with another seed (the challenger). The prediction log gets 100,000 rows
scored by the champion, written through `PredictionLog` as the server writes them (requests of
100 rows, partitioned by day), and feedback labels for every row.

Timed, each `--repeats` times in this process (the median is reported), and the monitor part
once more as a fresh `looml loop` process (start-up and imports included, as cron runs it):
- monitor: `cycle()` with every trigger off: read the window, join the feedback, drift against
  the champion's reference, live performance with its bootstrap interval and the CBPE estimate,
  the schema check of the served rows, alerts (logged);
- decide: the champion / challenger comparison the cycle makes after a retrain: both models
  loaded and scored on the fresh 30 % of the labelled window, and the paired bootstrap.

Usage: .venv/bin/python bench/loop.py [--rows N] [--repeats K]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import looml
from looml.monitor import loop as loop_module
from looml.serve.model import Prediction
from looml.spec import PredictionLogSpec, load_spec
from looml.store.connect import local_tracking_uri
from looml.store.feedback import FeedbackStore, join_feedback, read_feedback
from looml.store.predictions import PredictionLog, RowsToLog, read_predictions
from looml.store.versions import load_pipeline
from serve_inprocess import make_frame

OUT = Path(__file__).resolve().parent / "out" / "loop"
SPEC = """seed: {seed}
data: {{source: train.parquet, target: label}}
split: {{folds: 3}}
models: {{candidates: [linear]}}
registry: {{model_name: bench_loop}}
loop:
  triggers: {{drift: false, performance_drop: false}}
"""


def setup(rows: int) -> Path:
    project = OUT / "project"
    project.mkdir(parents=True, exist_ok=True)
    spec = project / "looml.yaml"
    if not (project / ".looml" / "logs").is_dir():
        frame, y = make_frame(20_000)
        pl.from_pandas(frame).with_columns(label=pl.Series(y)).write_parquet(project / "train.parquet")
        spec.write_text(SPEC.format(seed=1))
        looml.run(spec)
        spec.write_text(SPEC.format(seed=2))
        looml.run(spec)  # version 2: the challenger
        spec.write_text(SPEC.format(seed=1))
        write_traffic(spec, rows)
    return spec


def write_traffic(spec_path: Path, rows: int) -> None:
    spec = load_spec(spec_path)
    uri = local_tracking_uri(spec.tracking.uri, spec.project_dir)
    pipeline, _ = load_pipeline(uri, "bench_loop", "1")
    frame, y = make_frame(rows, seed=7)
    proba = pipeline.predict_proba(frame)
    classes = list(pipeline.classes_)
    labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    features = {c: ("numeric" if c.startswith("num") else "categorical") for c in frame.columns}
    root = spec.project_dir / ".looml" / "logs"
    log = PredictionLog(root, PredictionLogSpec(flush_rows=20_000, flush_seconds=3600))
    start = datetime.now(UTC) - timedelta(hours=6)
    ids = []
    for i in range(0, rows, 100):
        part = frame.iloc[i:i + 100]
        request = f"req{i // 100}"
        log.append(RowsToLog(request, start + timedelta(seconds=i / 10), "bench_loop", "1", "/predict",
                             features, {c: part[c].tolist() for c in part.columns},
                             Prediction(labels[i:i + 100], proba[i:i + 100]), classes))
        ids += [f"{request}:{r}" for r in range(len(part))]
    log.close()
    FeedbackStore(root).append([{"row_id": k, "request_id": None, "row": None, "label": v, "timestamp": None}
                                for k, v in zip(ids, y.tolist(), strict=True)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spec_path = setup(args.rows)
    spec = load_spec(spec_path)
    logged = read_predictions(spec.project_dir / ".looml" / "logs").height
    print(f"window: {logged:,} logged rows, all labelled; 20 features; champion v1, challenger v2")
    monitor_times, decide_times = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = loop_module.cycle(spec)
        monitor_times.append(time.perf_counter() - started)
        assert result.rows == logged and not result.triggers, result.triggers

        project = loop_module._project(spec)
        joined = read_predictions(spec.project_dir / ".looml" / "logs")
        started = time.perf_counter()
        joined = join_feedback(joined, read_feedback(spec.project_dir / ".looml" / "logs"))
        labelled = joined.filter(pl.col("label").is_not_null()).sort("timestamp")
        fresh = labelled.tail(int(0.3 * labelled.height))
        comparison = loop_module._compare(project, "1", "2", "roc_auc", fresh)
        decide_times.append(time.perf_counter() - started)
    print(f"monitor (cycle, triggers off): runs {[round(t, 2) for t in monitor_times]} s")
    print(f"decide (compare on {fresh.height:,} fresh rows, {comparison.resamples} resamples): "
          f"runs {[round(t, 2) for t in decide_times]} s")
    # A cron'd `looml loop` is a fresh process: it pays Python start-up and the imports too.
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "looml"), "loop", str(spec_path), "--json"],
                          capture_output=True, check=False)
    cli = time.perf_counter() - started
    assert done.returncode in (0, 6), done.stderr.decode()[-2000:]
    print(f"`looml loop` as a fresh process (monitor only, triggers off): {cli:.2f} s")
    warm = statistics.median(monitor_times) + statistics.median(decide_times)
    total = cli + statistics.median(decide_times)
    print(f"loop overhead per cycle (as `looml loop --watch` pays it): {warm:.2f} s, target < 5 s: "
          f"{'PASS' if warm < 5 else 'FAIL'}; a fresh process adds its start-up and imports: "
          f"{total:.2f} s in all")


if __name__ == "__main__":
    main()
