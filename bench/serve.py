"""Serving benchmark: `looml serve` against `mlflow models serve` on the same registered model.

The model: a looml project in the git-ignored `bench/out/serve/` trained on 20,000 rows of the
table of `serve_inprocess.py` (15 numeric columns with 1-5 % gaps, 5 categorical columns of 4-80
Zipf-like levels with 2 % gaps; seed 42) with the one candidate `hist_gradient_boosting`, so the
champion is SchemaCoercer + ColumnTransformer (median impute, missing indicators and standard
scaling of the numbers; one-hot of the strings) + HistGradientBoostingClassifier. Trained once;
later runs reuse it.

In one run, one server at a time, each with 2 workers on 127.0.0.1:
- `looml serve looml.yaml --workers 2` (micro-batching on, the prediction log on: the defaults);
- `looml serve looml-nobatch.yaml --workers 2`: the same with `serve.batching.enabled: false`;
- `mlflow models serve -m models:/bench_serve@champion --env-manager local -w 2`.

The requests are the same bytes for both servers: MLflow `dataframe_records` to /invocations,
of 1 row (1,000 bodies, one held-out row each, taken in turn) and of 1,000 rows (4 bodies);
looml alone also gets the same rows as /predict records and as Open Inference Protocol v2
infer requests (one FP64 or BYTES input per column). Before timing, the labels each endpoint
returns for the 4,000 held-out rows are checked against `pipeline.predict`.

The load: closed loop, `concurrency` persistent connections, each sending its next request when
the last is answered, for `--seconds` per cell after a 1 s warm-up per endpoint, by `wrk` (see
serve_load.py; `--client python` or a machine without wrk uses an asyncio client). Every answer
must be 200: errors are counted, shown and fail the run. Per cell the table also shows the
server's CPU milliseconds per request (all its processes, from /proc), the cores used by the
load generator and by processes that are neither (other work on a shared machine), and steal.
`--diagnose` adds a third looml server with `serve.log.enabled: false` (the prediction log off).

In-process baselines, timed before the servers start and again after they stop (the targets use
the faster of the two): `pipeline.predict` on a ready pandas frame of 1 and of 1,000 rows under
`threadpool_limits(1, "openmp")` (the server scores on one thread), with the default threads
too, and the served model's own scorer on a parsed batch.

Targets (issue 5): 1-row requests at concurrency 8, looml >= 10x mlflow's requests/s with p99 <
10 ms; 1,000-row requests, served rows/s >= in-process `pipeline.predict` rows/s; micro-batching
on must not raise p99 over off at concurrency 8 and 32. Exit status 0 when all pass.

Usage: .venv/bin/python bench/serve.py [--quick] [--seconds S] [--client wrk|python] [--skip-mlflow]
                                      [--diagnose]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from serve_inprocess import make_frame
from serve_load import Load, cpu_times, run_load, wrk_path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "serve"
BIN = Path(sys.executable).parent
NAME = "bench_serve"
TRAIN_ROWS, HELD_OUT = 20_000, 4_000
BIG = 1_000
CONCURRENCY = (1, 8, 32)
SPEEDUP_TARGET, P99_TARGET_MS = 10.0, 10.0
ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONWARNINGS": "ignore"}


@dataclass
class Cell:
    """One measured combination."""

    server: str
    endpoint: str
    rows: int
    concurrency: int
    load: Load
    server_cpu: float  # CPU seconds of the server's processes during the cell

    @property
    def rows_per_second(self) -> float:
        """Rows scored per second."""
        return self.load.rps * self.rows

    @property
    def cpu_ms_per_request(self) -> float:
        """The server's CPU milliseconds per answered request."""
        return self.server_cpu * 1e3 / self.load.requests if self.load.requests else 0.0

    @property
    def others(self) -> float:
        """Cores busy with processes other than this server and the load generator."""
        load = self.load
        used = load.busy * (os.cpu_count() or 1)
        return max(0.0, used - self.server_cpu / load.seconds - load.client_cpu)


# -- the project and the requests ----------------------------------------------------------------

def project() -> tuple[Path, pd.DataFrame]:
    """Train the project once (reused later); the spec and the held-out rows."""
    frame, labels = make_frame(TRAIN_ROWS + HELD_OUT)
    held_out = frame.iloc[TRAIN_ROWS:].reset_index(drop=True)
    spec = OUT / "looml.yaml"
    if not (OUT / ".looml" / "mlflow.db").exists():
        import polars as pl

        import looml

        OUT.mkdir(parents=True, exist_ok=True)
        train = pl.from_pandas(frame.iloc[:TRAIN_ROWS]).with_columns(pl.Series("label", labels[:TRAIN_ROWS]))
        train.write_parquet(OUT / "train.parquet")
        spec.write_text("seed: 42\ndata:\n  source: train.parquet\n  target: label\n"
                        "models:\n  candidates: [hist_gradient_boosting]\nsplit:\n  folds: 2\n"
                        f"registry:\n  model_name: {NAME}\n", encoding="utf-8")
        started = time.perf_counter()
        result = looml.run(spec)
        print(f"trained and registered {result.model_uri} ({result.best_model}, holdout roc_auc "
              f"{result.metrics['roc_auc']:.3f}) in {time.perf_counter() - started:.0f} s", flush=True)
    for variant, serve in (("nobatch", "batching: {enabled: false}"), ("nolog", "log: {enabled: false}")):
        (OUT / f"looml-{variant}.yaml").write_text(
            spec.read_text(encoding="utf-8") + f"serve:\n  {serve}\n", encoding="utf-8")
    return spec, held_out


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON records, null for a gap."""
    return [{k: None if isinstance(v, float) and v != v else v for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def v2_body(frame: pd.DataFrame) -> dict[str, Any]:
    """An Open Inference Protocol v2 infer request: one input per column."""
    inputs = []
    for column in frame.columns:
        numeric = frame[column].dtype.kind == "f"
        data = [None if v is None or (isinstance(v, float) and v != v) else v for v in frame[column].tolist()]
        inputs.append({"name": column, "datatype": "FP64" if numeric else "BYTES", "shape": [len(frame)],
                       "data": data})
    return {"inputs": inputs}


def write_bodies(held_out: pd.DataFrame) -> dict[tuple[str, int], Path]:
    """One file per (endpoint, rows): the JSON bodies, one per line."""
    folder = OUT / "bodies"
    folder.mkdir(parents=True, exist_ok=True)
    makers: dict[str, Callable[[pd.DataFrame], Any]] = {
        "/invocations": lambda f: {"dataframe_records": records(f)},
        "/predict": lambda f: {"records": records(f)},
        "v2": v2_body,
    }
    files = {}
    for endpoint, make in makers.items():
        for rows in (1, BIG):
            frames = [held_out.iloc[i:i + rows] for i in range(0, (BIG if rows == 1 else HELD_OUT), rows)]
            path = folder / f"{endpoint.strip('/')}-{rows}.jsonl"
            path.write_text("".join(json.dumps(make(f), separators=(",", ":")) + "\n" for f in frames),
                            encoding="utf-8")
            files[endpoint, rows] = path
    return files


# -- in-process baselines ------------------------------------------------------------------------

def baselines(spec: Path, held_out: pd.DataFrame, calls: int) -> tuple[dict[str, float], np.ndarray]:
    """rows/s and p50 ms of `pipeline.predict` (1 and default threads) and of the served scorer;
    and the pipeline's labels for the held-out rows."""
    from threadpoolctl import threadpool_limits

    from looml.serve.model import load_model

    model = load_model(f"sqlite:///{spec.parent / '.looml' / 'mlflow.db'}", NAME)
    pipeline = model.pipeline
    singles = [held_out.iloc[i:i + 1] for i in range(BIG)]
    big = held_out.iloc[:BIG]
    batches = [{c: [None if isinstance(v, float) and v != v else v for v in f[c].tolist()] for c in f.columns}
               for f in (*singles[:200], big)]
    out: dict[str, float] = {}
    print(f"in-process ({model.scorer.name} is the served model's scorer):", flush=True)

    def timed(label: str, rows: int, call: Callable[[int], Any], n: int) -> None:
        for i in range(3):
            call(i)
        spent: list[float] = []
        budget = time.perf_counter() + 4.0  # calls stop after 4 s (and at least 10 calls)
        while len(spent) < n and (len(spent) < 10 or time.perf_counter() < budget):
            started = time.perf_counter()
            call(len(spent))
            spent.append(time.perf_counter() - started)
        seconds = np.asarray(spent)
        out[f"{label} {rows}"] = rows / seconds.mean()
        out[f"{label} {rows} p50 ms"] = float(np.median(seconds) * 1e3)
        print(f"  {label + f', {rows} row' + 's' * (rows > 1):<42} p50 {np.median(seconds) * 1e3:8.3f} ms  "
              f"{rows / seconds.mean():>11,.0f} rows/s", flush=True)

    for label, limit in (("pipeline.predict 1 thread", 1), ("pipeline.predict default threads", None)):
        with threadpool_limits(limits=limit, user_api="openmp"):
            timed(label, 1, lambda i: pipeline.predict(singles[i % BIG]), calls)
            timed(label, BIG, lambda i: pipeline.predict(big), max(calls // 10, 10))
    timed(f"scorer {model.scorer.name}", 1, lambda i: model.predict(batches[i % 200]), calls)
    timed(f"scorer {model.scorer.name}", BIG, lambda i: model.predict(batches[-1]), max(calls // 10, 10))
    return out, np.asarray(pipeline.predict(held_out))


# -- servers -------------------------------------------------------------------------------------

def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(kind: str, spec: Path, port: int, workers: int = 2) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a server in its own process group; wait until every worker has started."""
    env = {**os.environ, **ENV, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{spec.parent / '.looml' / 'mlflow.db'}"}
    if kind == "mlflow":
        cmd = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{NAME}@champion", "--env-manager",
               "local", "-w", str(workers), "-p", str(port), "-h", "127.0.0.1"]
    else:
        cmd = [str(BIN / "looml"), "serve", str(spec), "--port", str(port), "--workers", str(workers)]
    log = OUT / f"server-{kind}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=OUT,
                                start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{kind} server exited ({proc.returncode}); see {log}:\n"
                             f"{log.read_text(errors='replace')[-3000:]}")
        if log.read_text(errors="replace").count("Application startup complete") >= workers:
            return proc, log
        time.sleep(0.25)
    stop(proc)
    raise SystemExit(f"{kind} server did not start in 180 s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (ours: started with its own session)."""
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def group_cpu(group: int) -> float:
    """CPU seconds (user + system) so far of the live processes of a process group."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy(seconds: float = 2.0) -> float:
    """Cores busy (steal excluded) over `seconds`, before anything of ours runs."""
    before = cpu_times()
    time.sleep(seconds)
    spent = [a - b for a, b in zip(cpu_times(), before, strict=True)]
    return (sum(spent) - spent[3] - spent[4] - spent[7]) / (sum(spent) or 1) * (os.cpu_count() or 1)


def check_answers(url: str, endpoint: str, path: str, bodies: Path, expected: np.ndarray) -> tuple[str, bool]:
    """Send every 1,000-row body once; compare the labels with `pipeline.predict`."""
    got: list[Any] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for line in bodies.read_text(encoding="utf-8").splitlines():
            answer = client.post(path, content=line, headers={"content-type": "application/json"})
            if answer.status_code != 200:
                return f"{endpoint}: HTTP {answer.status_code}: {answer.text[:300]}", False
            doc = answer.json()
            if endpoint == "/predict":
                got += [p["prediction"] for p in doc["predictions"]]
            elif endpoint == "v2":
                got += next(o["data"] for o in doc["outputs"] if o["name"] == "predict")
            else:
                got += doc["predictions"]
    same = int((np.asarray(got, dtype=object) == expected.astype(object)).sum())
    return f"{endpoint}: {same}/{len(expected)} labels equal to pipeline.predict", same == len(expected)


def measure(kind: str, spec: Path, files: dict[tuple[str, int], Path], plan: list[tuple[str, int, int]],
            seconds: float, client: str, expected: np.ndarray, name: str,
            checks: list[tuple[str, bool]]) -> list[Cell]:
    """Start one server, check its answers (into `checks`), run the planned cells, stop it."""
    port = free_port()
    started = time.perf_counter()
    proc, log = start(kind, spec, port)
    print(f"\n{name}: up in {time.perf_counter() - started:.1f} s on port {port}", flush=True)
    url = f"http://127.0.0.1:{port}"
    paths = {"v2": f"/v2/models/{NAME}/infer", "/invocations": "/invocations", "/predict": "/predict"}
    cells: list[Cell] = []
    try:
        for endpoint in dict.fromkeys(e for e, _, _ in plan):
            checked, ok = check_answers(url, endpoint, paths[endpoint], files[endpoint, BIG], expected)
            checks.append((f"{name} {checked}", ok))
            print(f"  {checked}", flush=True)
        warmed: set[tuple[str, int]] = set()
        for endpoint, rows, concurrency in plan:
            if (endpoint, rows) not in warmed:
                run_load(url, paths[endpoint], files[endpoint, rows], 8, 1.0, client)
                warmed.add((endpoint, rows))
            before = group_cpu(proc.pid)
            load = run_load(url, paths[endpoint], files[endpoint, rows], concurrency, seconds, client)
            cells.append(Cell(name, endpoint, rows, concurrency, load, group_cpu(proc.pid) - before))
            print("  " + row(cells[-1]), flush=True)
    finally:
        stop(proc)
    text = log.read_text(errors="replace")
    # wrk closes its connections at the end of a cell, requests in flight included
    if text.count("Traceback") > text.count("starlette.requests.ClientDisconnect"):
        print(f"  (the server log {log} holds a traceback)", flush=True)
    return cells


# -- the report ----------------------------------------------------------------------------------

HEADER = (f"{'server':<16}{'endpoint':<14}{'rows':>5}{'conc':>5}{'req/s':>10}{'rows/s':>12}{'p50 ms':>9}"
          f"{'p99 ms':>9}{'errors':>7}{'cpu ms/req':>11}{'client':>7}{'others':>7}{'steal':>6}")


def row(cell: Cell) -> str:
    """One table line."""
    load = cell.load
    errors = f"{load.errors + load.timeouts}"
    return (f"{cell.server:<16}{cell.endpoint:<14}{cell.rows:>5}{cell.concurrency:>5}{load.rps:>10,.1f}"
            f"{cell.rows_per_second:>12,.0f}{load.p50_ms:>9.2f}{load.p99_ms:>9.2f}{errors:>7}"
            f"{cell.cpu_ms_per_request:>11.2f}{load.client_cpu:>7.2f}{cell.others:>7.2f}{load.steal:>6.0%}")


def find(cells: list[Cell], server: str, endpoint: str, rows: int, concurrency: int) -> Cell | None:
    """The cell, if it was measured."""
    return next((c for c in cells if (c.server, c.endpoint, c.rows, c.concurrency) ==
                 (server, endpoint, rows, concurrency)), None)


def verdicts(cells: list[Cell], base: dict[str, float]) -> list[tuple[str, bool]]:
    """Each measured target as a line and whether it passes."""
    out: list[tuple[str, bool]] = []
    mlflow = find(cells, "mlflow", "/invocations", 1, 8)
    for endpoint in ("/invocations", "/predict", "v2"):
        looml = find(cells, "looml", endpoint, 1, 8)
        if looml is None:
            continue
        if mlflow is not None and mlflow.load.rps > 0:
            ratio = looml.load.rps / mlflow.load.rps
            out.append((f"1 row, conc 8, looml {endpoint} / mlflow /invocations req/s: "
                        f"{looml.load.rps:,.0f} / {mlflow.load.rps:,.1f} = {ratio:.1f}x "
                        f"(target >= {SPEEDUP_TARGET:g}x)",
                        bool(ratio >= SPEEDUP_TARGET)))
        out.append((f"1 row, conc 8, looml {endpoint} p99 {looml.load.p99_ms:.2f} ms (target < "
                    f"{P99_TARGET_MS:g} ms)", bool(looml.load.p99_ms < P99_TARGET_MS)))
    reference = base[f"pipeline.predict 1 thread {BIG}"]
    for endpoint in ("/invocations", "/predict", "v2"):
        for concurrency in CONCURRENCY:
            looml = find(cells, "looml", endpoint, BIG, concurrency)
            if looml is None:
                continue
            ratio = looml.rows_per_second / reference
            out.append((f"{BIG} rows, conc {concurrency}, looml {endpoint}: "
                        f"{looml.rows_per_second:,.0f} rows/s = {ratio:.2f}x in-process "
                        f"pipeline.predict on 1 thread ({reference:,.0f}; "
                        f"{looml.rows_per_second / base[f'pipeline.predict default threads {BIG}']:.2f}x "
                        "default threads) (target >= 1)", bool(ratio >= 1.0)))
    for concurrency in (8, 32):
        on = find(cells, "looml", "/invocations", 1, concurrency)
        off = find(cells, "looml nobatch", "/invocations", 1, concurrency)
        if on is not None and off is not None:
            out.append((f"1 row, conc {concurrency}, micro-batching on / off: p99 {on.load.p99_ms:.2f} / "
                        f"{off.load.p99_ms:.2f} ms, req/s {on.load.rps:,.0f} / {off.load.rps:,.0f} "
                        "(target: p99 on <= off)", bool(on.load.p99_ms <= off.load.p99_ms)))
    return out


def main() -> int:
    """Run the whole benchmark; 0 when every measured target passes."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per cell (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 s cells, fewer baseline calls, only the "
                        "/invocations endpoint")
    parser.add_argument("--client", choices=["wrk", "python"], default=None,
                        help="load generator (default: wrk when installed, else python)")
    parser.add_argument("--skip-mlflow", action="store_true", help="do not start mlflow models serve")
    parser.add_argument("--diagnose", action="store_true", help="also serve with the prediction log off "
                        "(serve.log.enabled: false), to show its share")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    client = args.client or ("wrk" if wrk_path() else "python")
    seconds = 3.0 if args.quick and args.seconds == 10.0 else args.seconds
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; load generator: "
          f"{client}; {seconds:g} s per cell", flush=True)
    busy = machine_busy()
    print(f"cores busy before the run, with processes that are not ours: {busy:.2f} of {os.cpu_count()}"
          + ("  (a shared machine: the figures below are lower than on an idle one)" if busy > 0.2 else ""),
          flush=True)

    spec, held_out = project()
    import shutil

    shutil.rmtree(OUT / ".looml" / "logs", ignore_errors=True)  # the prediction logs of earlier runs
    files = write_bodies(held_out)
    base, expected = baselines(spec, held_out, 100 if args.quick else 300)

    endpoints = ["/invocations"] if args.quick else ["/invocations", "/predict", "v2"]
    checks: list[tuple[str, bool]] = []
    full = [(e, rows, c) for e in endpoints for rows in (1, BIG) for c in CONCURRENCY]
    cells = measure("looml", spec, files, full, seconds, client, expected, "looml", checks)
    nobatch = [("/invocations", 1, 8), ("/invocations", 1, 32)]
    cells += measure("looml", OUT / "looml-nobatch.yaml", files, nobatch, seconds, client, expected,
                     "looml nobatch", checks)
    if args.diagnose:
        nolog = [("/invocations", rows, c) for rows, c in ((1, 8), (1, 32), (BIG, 1), (BIG, 8))]
        cells += measure("looml", OUT / "looml-nolog.yaml", files, nolog, seconds, client, expected,
                         "looml nolog", checks)
    if not args.skip_mlflow:
        mlflow = [("/invocations", rows, c) for rows in (1, BIG) for c in CONCURRENCY]
        cells += measure("mlflow", spec, files, mlflow, seconds, client, expected, "mlflow", checks)

    print("\nthe in-process baselines again, after the servers:", flush=True)
    again, _ = baselines(spec, held_out, 100 if args.quick else 300)
    # The targets use the faster of the two measurements, so a busy moment cannot flatter the server.
    base = {k: min(v, again[k]) if k.endswith(" ms") else max(v, again[k]) for k, v in base.items()}
    print("\n" + HEADER)
    for cell in cells:
        print(row(cell))
    print("\ntargets:")
    errors = sum(c.load.errors + c.load.timeouts for c in cells)
    results = [*checks, (f"every answer 200: {errors} errors or timeouts in "
                         f"{sum(c.load.requests for c in cells):,} requests", errors == 0),
               *verdicts(cells, base)]
    for text, ok in results:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    (OUT / "results.json").write_text(json.dumps({
        "client": client, "seconds": seconds, "cores_busy_before": busy, "baselines": base,
        "cells": [{**asdict(c), "rps": c.load.rps, "rows_per_second": c.rows_per_second} for c in cells],
        "targets": [{"text": t, "pass": ok} for t, ok in results]}, indent=1), encoding="utf-8")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
