"""Serving benchmark: `looml serve` against `mlflow models serve` and a bare uvicorn app, on the
models the defaults make.

The models (bench/serve_models.py): each trained once, as a user would, with the spec `looml
init` writes (`looml init`, then `looml run`), into the git-ignored `bench/out/serve/<model>/`:
the synthetic table of serve_inprocess.py (20,000 rows; its 80-level column is target-encoded),
the same with `tuning.time_budget: 60` and the default candidates (the search may keep a vote),
and the corpus tables `trump_tweet_source` (free text, dates, a high-cardinality column;
multiclass) and `health_breach_size` (free text, dates, high-cardinality columns; regression).
The table records which scorer each model got (compiled:<form>, or pipeline).

Per model, one server at a time, each with 2 workers on 127.0.0.1:
- `looml serve looml.yaml --workers 2` (micro-batching on, the prediction log on: the defaults);
- `mlflow models serve -m models:/<name>@champion --env-manager local -w 2`;
- for the synthetic model, also `serve.batching.enabled: false` (`looml nobatch`), and with
  `--diagnose` the prediction log off (`looml nolog`).
Once: `uvicorn serve_bare:app --workers 2`, a bare ASGI app answering a constant JSON body
(the ceiling of the HTTP stack looml runs on, with the same uvicorn settings).

The requests are the same bytes for both model servers: MLflow `dataframe_records` to
/invocations, of 1 row (1,000 bodies, one held-out row each, taken in turn) and of 1,000 rows (4
bodies); without `--quick` looml also gets them as /predict records and as Open Inference Protocol
v2 infer requests. Before timing, the predictions each endpoint returns for the 4,000 held-out
rows are checked against `pipeline.predict` (labels equal; regression values within 1e-6).

The load: closed loop, `concurrency` persistent connections, each sending its next request when
the last is answered, for `--seconds` per cell after a 1 s warm-up per endpoint, by `wrk` (see
serve_load.py; `--client python` or a machine without wrk uses an asyncio client). Every answer
must be 200: errors are counted, shown and fail the run. Per cell the table also shows the
server's CPU milliseconds per request (all its processes, from /proc), the cores used by the
load generator and by processes that are neither (other work on a shared machine), and steal.

In-process baselines per model, timed before its servers start and again after they stop (the
targets use the faster of the two): `pipeline.predict` on a ready pandas frame of 1 and of 1,000
rows under `threadpool_limits(1, "openmp")` (a server worker scores on one thread), with the
default threads too, and the served model's own scorer on a parsed batch.

Targets (issue 17), per model: 1-row requests at concurrency 8, looml >= 10x mlflow's requests/s,
>= 50 % of bare uvicorn's and p99 < 10 ms; 1,000-row requests at concurrency 1 and 8, served
rows/s >= 1.5x in-process `pipeline.predict` on one thread; the served scorer is compiled; for the
synthetic model, micro-batching on must not raise p99 over off at concurrency 8 and 32. Exit
status 0 when all pass.

Usage: .venv/bin/python bench/serve.py [--quick] [--models M ...] [--seconds S] [--client wrk|python]
                                      [--skip-mlflow] [--diagnose]
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

from serve_load import Load, cpu_times, run_load, wrk_path
from serve_models import ENV, HERE, MODELS, OUT, QUICK, Served, prepare, write_bodies

BIN = Path(sys.executable).parent
CORPUS = Path(os.environ.get("LOOML_CORPUS", HERE.parents[1] / "shared" / "corpus"))
BIG = 1_000
CONCURRENCY = (1, 8, 32)
SPEEDUP_TARGET, BARE_SHARE_TARGET, P99_TARGET_MS, BIG_TARGET = 10.0, 0.5, 10.0, 1.5


@dataclass
class Cell:
    """One measured combination."""

    model: str
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


# -- in-process baselines ------------------------------------------------------------------------

def baselines(served: Served, calls: int) -> tuple[dict[str, float], np.ndarray, str]:
    """rows/s and p50 ms of `pipeline.predict` (1 and default threads) and of the served scorer;
    the pipeline's predictions for the held-out rows; the served scorer's name."""
    from threadpoolctl import threadpool_limits

    from looml.serve.model import load_model

    model = load_model(served.tracking_uri, served.name)
    pipeline, held_out = model.pipeline, served.held_out
    singles = [held_out.iloc[i:i + 1] for i in range(BIG)]
    big = held_out.iloc[:BIG]
    batches = [{c: [None if isinstance(v, float) and v != v else v for v in f[c].tolist()] for c in f.columns}
               for f in (*singles[:200], big)]
    out: dict[str, float] = {}
    print(f"in-process ({served.key}: the served scorer is {model.scorer.name}"
          + (f"; fallback: {model.fallback}" if model.fallback else "") + "):", flush=True)

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
    timed("served scorer", 1, lambda i: model.predict(batches[i % 200]), calls)
    timed("served scorer", BIG, lambda i: model.predict(batches[-1]), max(calls // 10, 10))
    return out, np.asarray(pipeline.predict(held_out)), model.scorer.name


# -- servers -------------------------------------------------------------------------------------

def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(kind: str, served: Served | None, spec: Path | None, port: int,
          workers: int = 2) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a server in its own process group; wait until every worker has started."""
    env = {**os.environ, **ENV, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    cwd = HERE
    if kind == "bare":
        cmd = [str(BIN / "uvicorn"), "serve_bare:app", "--workers", str(workers), "--port", str(port),
               "--host", "127.0.0.1", "--no-access-log"]
        log = OUT / "server-bare.log"
    else:
        assert served is not None and spec is not None
        env["MLFLOW_TRACKING_URI"] = served.tracking_uri
        cwd = served.folder
        if kind == "mlflow":
            cmd = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{served.name}@champion",
                   "--env-manager", "local", "-w", str(workers), "-p", str(port), "-h", "127.0.0.1"]
        else:
            cmd = [str(BIN / "looml"), "serve", str(spec), "--port", str(port), "--workers", str(workers)]
        log = served.folder / f"server-{kind}-{spec.stem}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=cwd,
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


def check_answers(url: str, endpoint: str, path: str, bodies: Path, expected: np.ndarray,
                  task: str) -> tuple[str, bool]:
    """Send every 1,000-row body once; compare the predictions with `pipeline.predict`."""
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
    if task == "regression":
        same = int(np.isclose(np.asarray(got, dtype=np.float64), expected.astype(np.float64),
                              rtol=1e-6, atol=1e-9).sum())
        what = "values within 1e-6 of"
    else:
        same = int((np.asarray(got, dtype=object) == expected.astype(object)).sum())
        what = "labels equal to"
    return f"{endpoint}: {same}/{len(expected)} {what} pipeline.predict", same == len(expected)


PATHS = {"/invocations": "/invocations", "/predict": "/predict"}


def measure(kind: str, served: Served | None, spec: Path | None, files: dict[tuple[str, int], Path],
            plan: list[tuple[str, int, int]], seconds: float, client: str, expected: np.ndarray | None,
            name: str, checks: list[tuple[str, bool]]) -> list[Cell]:
    """Start one server, check its answers (into `checks`), run the planned cells, stop it."""
    port = free_port()
    started = time.perf_counter()
    proc, log = start(kind, served, spec, port)
    model = served.key if served is not None else "-"
    print(f"\n{model} {name}: up in {time.perf_counter() - started:.1f} s on port {port}", flush=True)
    url = f"http://127.0.0.1:{port}"
    paths = {**PATHS, "v2": f"/v2/models/{served.name}/infer" if served is not None else "/"}
    cells: list[Cell] = []
    try:
        if served is not None and expected is not None:
            for endpoint in dict.fromkeys(e for e, _, _ in plan):
                checked, ok = check_answers(url, endpoint, paths[endpoint], files[endpoint, BIG], expected,
                                            served.task)
                checks.append((f"{model} {name} {checked}", ok))
                print(f"  {checked}", flush=True)
        warmed: set[tuple[str, int]] = set()
        for endpoint, rows, concurrency in plan:
            if (endpoint, rows) not in warmed:
                run_load(url, paths[endpoint], files[endpoint, rows], 8, 1.0, client)
                warmed.add((endpoint, rows))
            before = group_cpu(proc.pid)
            load = run_load(url, paths[endpoint], files[endpoint, rows], concurrency, seconds, client)
            cells.append(Cell(model, name, endpoint, rows, concurrency, load, group_cpu(proc.pid) - before))
            print("  " + row(cells[-1]), flush=True)
    finally:
        stop(proc)
    text = log.read_text(errors="replace")
    # wrk closes its connections at the end of a cell, requests in flight included
    if text.count("Traceback") > text.count("starlette.requests.ClientDisconnect"):
        print(f"  (the server log {log} holds a traceback)", flush=True)
    return cells


# -- the report ----------------------------------------------------------------------------------

HEADER = (f"{'model':<20}{'server':<15}{'endpoint':<14}{'rows':>5}{'conc':>5}{'req/s':>10}{'rows/s':>12}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}{'cpu ms/req':>11}{'client':>7}{'others':>7}{'steal':>6}")


def row(cell: Cell) -> str:
    """One table line."""
    load = cell.load
    errors = f"{load.errors + load.timeouts}"
    return (f"{cell.model:<20}{cell.server:<15}{cell.endpoint:<14}{cell.rows:>5}{cell.concurrency:>5}"
            f"{load.rps:>10,.1f}{cell.rows_per_second:>12,.0f}{load.p50_ms:>9.2f}{load.p99_ms:>9.2f}"
            f"{errors:>7}{cell.cpu_ms_per_request:>11.2f}{load.client_cpu:>7.2f}{cell.others:>7.2f}"
            f"{load.steal:>6.0%}")


def find(cells: list[Cell], model: str, server: str, endpoint: str, rows: int,
         concurrency: int) -> Cell | None:
    """The cell, if it was measured."""
    return next((c for c in cells if (c.model, c.server, c.endpoint, c.rows, c.concurrency) ==
                 (model, server, endpoint, rows, concurrency)), None)


def verdicts(cells: list[Cell], model: str, base: dict[str, float], scorer: str) -> list[tuple[str, bool]]:
    """Each measured target of one model as a line and whether it passes."""
    out: list[tuple[str, bool]] = [(f"{model}: the served scorer is {scorer} (target: compiled)",
                                    scorer.startswith("compiled:"))]
    mlflow = find(cells, model, "mlflow", "/invocations", 1, 8)
    bare = find(cells, "-", "bare uvicorn", "/invocations", 1, 8)
    for endpoint in ("/invocations", "/predict", "v2"):
        looml = find(cells, model, "looml", endpoint, 1, 8)
        if looml is None:
            continue
        if mlflow is not None and mlflow.load.rps > 0:
            ratio = looml.load.rps / mlflow.load.rps
            out.append((f"{model}: 1 row, conc 8, looml {endpoint} / mlflow /invocations req/s: "
                        f"{looml.load.rps:,.0f} / {mlflow.load.rps:,.1f} = {ratio:.1f}x "
                        f"(target >= {SPEEDUP_TARGET:g}x)", bool(ratio >= SPEEDUP_TARGET)))
        if bare is not None and bare.load.rps > 0:
            share = looml.load.rps / bare.load.rps
            out.append((f"{model}: 1 row, conc 8, looml {endpoint} / bare uvicorn req/s: "
                        f"{looml.load.rps:,.0f} / {bare.load.rps:,.0f} = {share:.0%} "
                        f"(target >= {BARE_SHARE_TARGET:.0%})", bool(share >= BARE_SHARE_TARGET)))
        out.append((f"{model}: 1 row, conc 8, looml {endpoint} p99 {looml.load.p99_ms:.2f} ms (target < "
                    f"{P99_TARGET_MS:g} ms)", bool(looml.load.p99_ms < P99_TARGET_MS)))
    reference = base[f"pipeline.predict 1 thread {BIG}"]
    for endpoint in ("/invocations", "/predict", "v2"):
        for concurrency in (1, 8):
            looml = find(cells, model, "looml", endpoint, BIG, concurrency)
            if looml is None:
                continue
            ratio = looml.rows_per_second / reference
            out.append((f"{model}: {BIG} rows, conc {concurrency}, looml {endpoint}: "
                        f"{looml.rows_per_second:,.0f} rows/s = {ratio:.2f}x in-process "
                        f"pipeline.predict on 1 thread ({reference:,.0f}; "
                        f"{looml.rows_per_second / base[f'pipeline.predict default threads {BIG}']:.2f}x "
                        f"default threads) (target >= {BIG_TARGET:g}x)", bool(ratio >= BIG_TARGET)))
    for concurrency in (8, 32):
        on = find(cells, model, "looml", "/invocations", 1, concurrency)
        off = find(cells, model, "looml nobatch", "/invocations", 1, concurrency)
        if on is not None and off is not None:
            out.append((f"{model}: 1 row, conc {concurrency}, micro-batching on / off: p99 "
                        f"{on.load.p99_ms:.2f} / {off.load.p99_ms:.2f} ms, req/s {on.load.rps:,.0f} / "
                        f"{off.load.rps:,.0f} (target: p99 on <= off)",
                        bool(on.load.p99_ms <= off.load.p99_ms)))
    return out


def commit() -> str:
    """The source commit measured (with a mark when the tree has changes)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True,
                              check=False).stdout.strip()

    changed = git("status", "--porcelain", str(HERE.parent / "src"))
    return git("rev-parse", "--short", "HEAD") + (" (modified)" if changed else "")


def main() -> int:
    """Run the whole benchmark; 0 when every measured target passes."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per cell (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 s cells, fewer baseline calls, only the "
                        f"/invocations endpoint, the models {', '.join(QUICK)}")
    parser.add_argument("--models", nargs="+", choices=MODELS, help="the models to serve (default: all)")
    parser.add_argument("--client", choices=["wrk", "python"], default=None,
                        help="load generator (default: wrk when installed, else python)")
    parser.add_argument("--skip-mlflow", action="store_true", help="do not start mlflow models serve")
    parser.add_argument("--diagnose", action="store_true", help="also serve the synthetic model with the "
                        "prediction log off (serve.log.enabled: false), to show its share")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    client = args.client or ("wrk" if wrk_path() else "python")
    seconds = 3.0 if args.quick and args.seconds == 10.0 else args.seconds
    models = args.models or (QUICK if args.quick else MODELS)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"commit {commit()}; machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; "
          f"load generator: {client}; {seconds:g} s per cell", flush=True)
    busy = machine_busy()
    print(f"cores busy before the run, with processes that are not ours: {busy:.2f} of {os.cpu_count()}"
          + ("  (a shared machine: the figures below are lower than on an idle one)" if busy > 0.2 else ""),
          flush=True)

    prepared = []
    for key in models:
        served = prepare(key, CORPUS)
        if served.train_seconds is not None:
            print(f"trained {key} ({served.name}) in {served.train_seconds:.0f} s", flush=True)
        prepared.append(served)
    endpoints = ["/invocations"] if args.quick else ["/invocations", "/predict", "v2"]
    checks: list[tuple[str, bool]] = []
    files_bare = write_bodies(prepared[0], BIG)
    cells = measure("bare", None, None, files_bare, [("/invocations", 1, c) for c in CONCURRENCY], seconds,
                    client, None, "bare uvicorn", checks)
    targets: list[tuple[str, bool]] = []
    summary: dict[str, Any] = {}
    for served in prepared:
        import shutil

        shutil.rmtree(served.folder / ".looml" / "logs", ignore_errors=True)  # earlier runs' prediction logs
        files = write_bodies(served, BIG)
        calls = 100 if args.quick else 300
        base, expected, scorer = baselines(served, calls)
        plan = [(e, rows, c) for e in endpoints for rows in (1, BIG) for c in CONCURRENCY
                if rows == 1 or c < 32]
        mine = measure("looml", served, served.spec, files, plan, seconds, client, expected, "looml", checks)
        if served.key == "synthetic":
            mine += measure("looml", served, served.folder / "looml-nobatch.yaml", files,
                            [("/invocations", 1, 8), ("/invocations", 1, 32)], seconds, client, expected,
                            "looml nobatch", checks)
            if args.diagnose:
                nolog = [("/invocations", rows, c) for rows, c in ((1, 8), (1, 32), (BIG, 1), (BIG, 8))]
                mine += measure("looml", served, served.folder / "looml-nolog.yaml", files, nolog, seconds,
                                client, expected, "looml nolog", checks)
        if not args.skip_mlflow:
            mine += measure("mlflow", served, served.spec, files,
                            [("/invocations", 1, 8), ("/invocations", BIG, 1)], seconds, client, expected,
                            "mlflow", checks)
        print(f"\n{served.key}: the in-process baselines again, after the servers:", flush=True)
        again, _, _ = baselines(served, calls)
        # The targets use the faster of the two measurements, so a busy moment cannot flatter the server.
        base = {k: min(v, again[k]) if k.endswith(" ms") else max(v, again[k]) for k, v in base.items()}
        cells += mine
        targets += verdicts(cells, served.key, base, scorer)
        summary[served.key] = {"scorer": scorer, "baselines": base, "train_seconds": served.train_seconds}

    print("\n" + HEADER)
    for cell in cells:
        print(row(cell))
    print("\ntargets:")
    errors = sum(c.load.errors + c.load.timeouts for c in cells)
    results = [*checks, (f"every answer 200: {errors} errors or timeouts in "
                         f"{sum(c.load.requests for c in cells):,} requests", errors == 0), *targets]
    for text, ok in results:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    (OUT / "results.json").write_text(json.dumps({
        "commit": commit(), "client": client, "seconds": seconds, "cores_busy_before": busy,
        "models": summary,
        "cells": [{**asdict(c), "rps": c.load.rps, "rows_per_second": c.rows_per_second} for c in cells],
        "targets": [{"text": t, "pass": ok} for t, ok in results]}, indent=1), encoding="utf-8")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
