"""Batch scoring benchmark: `looml predict` against in-process chunked `pipeline.predict`.

The data: `--rows` (default 10,000,000) rows x 21 columns in one Parquet file (row groups of
262,144 rows), generated once, 1,000,000 rows at a time, into the git-ignored
`bench/out/batch_predict/`: an int64 `id`, 14 float64 features (normal, log-normal and uniform,
1-3 % nulls) and 6 string features with 3 to 50 levels (1 % nulls). A 10 % file of the same rows is
written too, for the memory comparison.

The model: a looml project trained on 20,000 other rows of the same generator (binary label
from a noisy logistic function of the features), with the one candidate
`hist_gradient_boosting` (scikit-learn's HistGradientBoostingClassifier behind looml's
ColumnTransformer: median impute + standard scale + missing indicators for numbers, one-hot
for strings). Trained once; later runs reuse the registered champion.

Time, each side in a fresh subprocess (so that each has its own peak-RSS counter), alternating
over `--repeats`:
- baseline: the pipeline loaded from the registry once (not timed), then for each chunk of
  `--chunk-rows` rows `pl.scan_parquet(file).slice(start, chunk).collect()` and
  `pipeline.predict_proba(chunk.to_pandas())` (which is what `predict` computes for a
  classifier), nothing written;
- looml: `looml.batch.predict(spec, file, out.parquet, chunk_rows=...)`, timed whole:
  model loading, reading, validating every row, scoring and writing the Parquet output.
The ratio is looml rows/s over baseline rows/s (best of each side); target >= 0.8.

Memory: the peak RSS (VmHWM from /proc/self/status) of each child, and of `looml predict` on
the 10 % file and with a quarter of the chunk size, to show that peak memory follows the chunk,
not the file.

Usage: .venv/bin/python bench/batch_predict.py [--rows N] [--chunk-rows N] [--repeats K]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "batch_predict"
LEVELS = [3, 5, 8, 12, 20, 50]
RATIO_TARGET = 0.8
GENERATE_ROWS = 1_000_000


def make_frame(rows: int, seed: int, start: int = 0) -> pl.DataFrame:
    """`rows` rows of the benchmark's columns (ids from `start`), and the latent score of each."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(rows, 3))
    columns: dict[str, Any] = {"id": np.arange(start, start + rows, dtype=np.int64)}
    score = latent[:, 0] - 0.5 * latent[:, 1]
    for i in range(14):
        base = latent @ rng.normal(size=3) * (i % 4 != 3) + rng.normal(size=rows)
        values = np.exp(base / 2) if i % 3 == 1 else rng.uniform(0, 100, rows) + base if i % 3 == 2 \
            else 50 + 10 * base
        values[rng.random(rows) < 0.01 + 0.01 * (i % 3)] = np.nan
        columns[f"x{i:02d}"] = values
    for j, levels in enumerate(LEVELS):
        codes = np.minimum((rng.zipf(1.6, rows) - 1), levels - 1)
        score += 0.3 * (codes % 3 == 0)
        names = pa.array([f"{chr(97 + j)}{k:02d}" for k in range(levels)])
        values = names.take(pa.array(codes))
        columns[f"c{j}"] = pa.compute.if_else(pa.array(rng.random(rows) < 0.01), pa.scalar(None, pa.string()),
                                              values)
    frame = pl.DataFrame({k: v for k, v in columns.items()})
    frame = frame.with_columns(pl.col(pl.Float64).fill_nan(None))
    return frame.with_columns(pl.Series("score", score + rng.normal(size=rows)))


def generate(path: Path, rows: int, seed: int = 11) -> float:
    """Write `rows` rows to `path` in pieces of 1,000,000 (and a 10 % file beside it); the seconds taken."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    small = path.with_name(path.stem + "-tenth.parquet")
    writers: dict[Path, Any] = {}
    try:
        for piece, start in enumerate(range(0, rows, GENERATE_ROWS)):
            frame = make_frame(min(GENERATE_ROWS, rows - start), seed + piece, start).drop("score")
            table = frame.to_arrow()
            for target, part in ((path, table), (small, table.slice(0, max(1, table.num_rows // 10)))):
                if target not in writers:
                    writers[target] = pq.ParquetWriter(target.with_suffix(".tmp"), table.schema)
                writers[target].write_table(part, row_group_size=262_144)
    finally:
        for target, writer in writers.items():
            writer.close()
            target.with_suffix(".tmp").replace(target)
    return time.perf_counter() - started


def train(project: Path) -> Path:
    """A looml project on 20,000 rows with the HGB candidate, trained once; returns the spec."""
    spec = project / "looml.yaml"
    if (project / ".looml" / "mlflow.db").exists():
        return spec
    import looml

    project.mkdir(parents=True, exist_ok=True)
    frame = make_frame(20_000, seed=3)
    frame = frame.with_columns((pl.col("score") > pl.col("score").median()).cast(pl.Int64).alias("label"))
    frame.drop("score").write_parquet(project / "train.parquet")
    spec.write_text("seed: 42\ndata:\n  source: train.parquet\n  target: label\n  id_columns: [id]\n"
                    "models:\n  candidates: [hist_gradient_boosting]\nsplit:\n  folds: 2\n"
                    "registry:\n  model_name: bench_batch\n", encoding="utf-8")
    looml.run(spec)
    return spec


def child(side: str, spec: Path, data: Path, chunk_rows: int, out: Path) -> dict[str, Any]:
    """One side, in this (fresh) process: seconds (wall and CPU, all threads), rows and the peak RSS."""
    cpu = time.process_time()
    if side == "load":
        from looml.serve.model import load_model

        started = time.perf_counter()
        model = load_model(f"sqlite:///{spec.parent / '.looml' / 'mlflow.db'}", "bench_batch")
        seconds, rows, scorer = time.perf_counter() - started, 0, model.scorer.name
    elif side in ("looml", "reference"):
        from looml.batch import predict

        if side == "reference":  # the fast path off: looml's own overhead around the plain pipeline
            import looml.serve.compiled

            looml.serve.compiled.compile_scorer = lambda *args: None  # type: ignore[assignment]
        started = time.perf_counter()
        result = predict(spec, str(data), out, chunk_rows=chunk_rows)
        seconds, rows, scorer = time.perf_counter() - started, result.rows, result.scorer
    else:
        from looml.serve.model import load_model

        model = load_model(f"sqlite:///{spec.parent / '.looml' / 'mlflow.db'}", "bench_batch")
        pipeline = model.pipeline
        lazy = pl.scan_parquet(data)
        total = lazy.select(pl.len()).collect().item()
        started, cpu = time.perf_counter(), time.process_time()
        rows = 0
        for start in range(0, total, chunk_rows):
            chunk = lazy.slice(start, chunk_rows).collect()
            pipeline.predict_proba(chunk.to_pandas())
            rows += chunk.height
        seconds, scorer = time.perf_counter() - started, "pipeline.predict_proba"
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {"side": side, "seconds": seconds, "cpu_seconds": time.process_time() - cpu, "rows": rows,
            "rows_per_second": rows / seconds if rows else 0,
            "scorer": scorer, "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024,
            "data": data.name, "chunk_rows": chunk_rows}


def spawn(side: str, spec: Path, data: Path, chunk_rows: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", side, "--spec", str(spec), "--data", str(data),
           "--chunk-rows", str(chunk_rows)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(run: dict[str, Any]) -> None:
    print(f"  {run['side']:<9} {run['data']:<28} chunk {run['chunk_rows']:>7,}: {run['seconds']:6.1f} s "
          f"(CPU {run['cpu_seconds']:6.1f} s) "
          f"{run['rows_per_second']:>9,.0f} rows/s  peak RSS {run['peak_rss_mb']:5.0f} MB  ({run['scorer']})",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--reference", action="store_true", help="also time looml with the compiled "
                        "fast path off (the plain pipeline as its scorer)")
    parser.add_argument("--child", choices=["looml", "baseline", "reference", "load"])
    parser.add_argument("--spec", type=Path)
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    if args.child:
        out = OUT / f"scored-{args.data.stem}.parquet"
        print(json.dumps(child(args.child, args.spec, args.data, args.chunk_rows, out)))
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"data-{args.rows}.parquet"
    if not data.exists() or not data.with_name(data.stem + "-tenth.parquet").exists():
        print(f"generating {args.rows:,} rows ...", flush=True)
        print(f"  {generate(data, args.rows):.1f} s, {data.stat().st_size / 1e6:,.0f} MB", flush=True)
    started = time.perf_counter()
    spec = train(OUT / "project")
    print(f"model ready ({time.perf_counter() - started:.1f} s)", flush=True)

    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "looml": []}
    for repeat in range(args.repeats):
        for side in (("baseline", "looml") if repeat % 2 == 0 else ("looml", "baseline")):
            runs[side].append(spawn(side, spec, data, args.chunk_rows))
            show(runs[side][-1])
    best = {side: max(r["rows_per_second"] for r in found) for side, found in runs.items()}
    ratio = best["looml"] / best["baseline"]
    cpu = min(r["cpu_seconds"] for r in runs["baseline"]) / min(r["cpu_seconds"] for r in runs["looml"])
    print(f"throughput ratio looml / baseline: {ratio:.2f} (target >= {RATIO_TARGET}); by CPU seconds "
          f"{cpu:.2f}", flush=True)
    if args.reference:
        reference = spawn("reference", spec, data, args.chunk_rows)
        show(reference)
        cpu = min(r["cpu_seconds"] for r in runs["baseline"]) / reference["cpu_seconds"]
        print(f"throughput ratio looml with the fast path off / baseline: "
              f"{reference['rows_per_second'] / best['baseline']:.2f}; by CPU seconds {cpu:.2f}", flush=True)

    print("memory (peak RSS of a fresh process; 'load' only loads the model):", flush=True)
    tenth_file = data.with_name(data.stem + "-tenth.parquet")
    quarter_chunk = max(1, args.chunk_rows // 4)
    floor = spawn("load", spec, tenth_file, 0)
    tenth = spawn("looml", spec, tenth_file, args.chunk_rows)
    quarter = spawn("looml", spec, tenth_file, quarter_chunk)
    for run in (floor, tenth, quarter):
        show(run)
    base = floor["peak_rss_mb"]
    full = max(r["peak_rss_mb"] for r in runs["looml"])
    print(f"  peak RSS over the model-loaded floor: full file {full - base:.0f} MB, 10 % file "
          f"{tenth['peak_rss_mb'] - base:.0f} MB (same chunk); chunk {quarter_chunk:,} on the 10 % file "
          f"{quarter['peak_rss_mb'] - base:.0f} MB", flush=True)
    return 0 if ratio >= RATIO_TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
