"""A soak of `looml serve --workers 2`, as a user starts it, for the CI test and `bench/soak.py`
(issue 16, load).

    spec = soak_project(folder)                       # a corpus table, versions 1 and 2 registered
    result = run_soak(spec, seconds=30, swap_every=10)
    result.problems(steady=False)                     # the invariants broken: [] when all held

For `seconds`, `concurrency` closed-loop clients send a seeded mix of requests over every
protocol (`/predict`, MLflow's `/invocations`, the v2 `/infer`): mostly one row, some 1,000
rows, 1 % malformed. Every `swap_every` seconds the champion alias moves to the other version
(`looml models promote`, recorded), and the workers follow it. Afterwards:

- no answer is a 5xx, no request fails (a refused or dropped connection, a timeout), every
  malformed request is a 4xx and every other one a 200;
- both versions answered, each after its promotion;
- every row of every 200 answer is in the prediction log exactly once, under its request id,
  and nothing else is;
- with `steady`: the last window's p99 of one-row requests is within 1.5x the first's, and the
  workers' memory grew by less than 5 % after the warm-up, the first window (a long run only:
  30 s says little).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus"))
TABLE = "employee_attrition"  # 1,470 employees, 30 numeric and categorical columns: attrition or not
TARGET = "Attrition"
MODEL = "attrition"
LOOML = Path(sys.executable).with_name("looml")
SPEC = """seed: SEED
data: {source: data.parquet, target: TARGET}
split: {folds: 2}
models: {candidates: [linear, lightgbm]}
tuning: {method: none}
registry: {model_name: MODEL}
serve:
  reload_seconds: 0.5
  log: {flush_seconds: 1}
""".replace("TARGET", TARGET).replace("MODEL", MODEL)
BIG_ROWS = 1000


def soak_project(folder: Path) -> Path:
    """A project on the corpus table with two registered versions (v1 champion); its spec."""
    folder.mkdir(parents=True, exist_ok=True)
    pl.read_parquet(CORPUS / f"{TABLE}.parquet").write_parquet(folder / "data.parquet")
    spec = folder / "looml.yaml"
    for seed in (1, 2):  # another seed: another split, another fit; the spec's hash changes too
        spec.write_text(SPEC.replace("SEED", str(seed)), encoding="utf-8")
        done = subprocess.run([str(LOOML), "run", "looml.yaml", "--json"], cwd=folder, capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
    return spec


@dataclass
class Answer:
    at: float  # seconds since the load started
    kind: str  # predict | invocations | infer, "+bad" when malformed
    rows: int
    status: int  # 0: the request failed (no answer)
    seconds: float
    request_id: str | None = None
    version: str | None = None
    error: str = ""


@dataclass
class SoakResult:
    seconds: float
    answers: list[Answer]
    swaps: list[tuple[float, str]]  # (when, the version promoted)
    logged: pl.DataFrame  # the prediction log after the load
    memory: list[tuple[float, int]]  # (seconds into the load, the workers' resident bytes), every 5 s
    windows: list[float] = field(default_factory=list)  # the p99 of one-row 200s per window, ms

    def problems(self, *, steady: bool) -> list[str]:
        """Every invariant that did not hold (see the module's docstring)."""
        found = []
        failed = [a for a in self.answers if a.status == 0]
        errors = [a for a in self.answers if a.status >= 500]
        wrong = [a for a in self.answers if a.status and (a.status // 100 == 4) != a.kind.endswith("+bad")]
        for label, bad in (("failed", failed), ("5xx", errors), ("unexpected status", wrong)):
            if bad:
                found.append(f"{len(bad)} {label}: {[(a.kind, a.status, a.error[:200]) for a in bad[:5]]}")
        versions = {a.version for a in self.answers if a.version}
        if versions != {"1", "2"}:
            found.append(f"the answers came from versions {sorted(versions)}, not both")
        found += self._log_problems()
        if steady and len(self.windows) >= 2 and self.windows[-1] > 1.5 * self.windows[0]:
            found.append(f"p99 grew from {self.windows[0]:.1f} to {self.windows[-1]:.1f} ms")
        warmed, last = self.memory_after_warmup()
        if steady and last > 1.05 * warmed:
            found.append(f"the workers' memory grew {last / warmed - 1:.1%} after the warm-up")
        return found

    def memory_after_warmup(self) -> tuple[int, int]:
        """The workers' memory at the end of the first window of the load (the warm-up: every
        kind of request has been served, allocators and caches have grown) and at its end."""
        warm = self.seconds / max(1, len(self.windows))
        after = [rss for at, rss in self.memory if at >= warm] or [self.memory[-1][1]]
        return after[0], self.memory[-1][1]

    def _log_problems(self) -> list[str]:
        served = {a.request_id: a.rows for a in self.answers if a.status == 200 and a.request_id}
        counts = self.logged.group_by("request_id").agg(pl.len().alias("n"),
                                                         pl.col("row").n_unique().alias("u"))
        logged = {r: (n, u) for r, n, u in counts.iter_rows()}
        found = []
        missing = [r for r in served if r not in logged]
        extra = [r for r in logged if r not in served]
        wrong = [r for r, rows in served.items() if r in logged and logged[r] != (rows, rows)]
        if missing:
            found.append(f"{len(missing)} answered requests are not in the prediction log: {missing[:3]}")
        if extra:
            found.append(f"{len(extra)} logged requests were never answered with a 200: {extra[:3]}")
        if wrong:
            found.append(f"{len(wrong)} requests logged with the wrong rows: "
                         f"{[(r, served[r], logged[r]) for r in wrong[:3]]}")
        return found

    def summary(self) -> dict[str, Any]:
        ok = [a for a in self.answers if a.status == 200]
        one = np.array([a.seconds for a in ok if a.rows == 1]) * 1000
        every = self.answers
        return {"seconds": round(self.seconds, 1), "requests": len(every),
                "rows_served": sum(a.rows for a in ok),
                "malformed": sum(a.kind.endswith("+bad") for a in every),
                "5xx": sum(a.status >= 500 for a in every), "failed": sum(a.status == 0 for a in every),
                "swaps": len(self.swaps), "logged_rows": self.logged.height,
                "p50_ms": round(float(np.percentile(one, 50)), 2) if len(one) else None,
                "p99_ms": round(float(np.percentile(one, 99)), 2) if len(one) else None,
                "p99_by_window_ms": [round(w, 2) for w in self.windows],
                "memory_mb": {"start": round(self.memory[0][1] / 2**20, 1),
                              "after_warmup": round(self.memory_after_warmup()[0] / 2**20, 1),
                              "end": round(self.memory[-1][1] / 2**20, 1)}}


def run_soak(spec: Path, *, seconds: float, swap_every: float, concurrency: int = 8, seed: int = 0,
             windows: int = 3) -> SoakResult:
    """Serve the project with two workers, hold the load, swap the champion; what happened."""
    folder = spec.parent
    rows = pl.read_parquet(folder / "data.parquet").drop(TARGET)
    port = _free_port()
    since = datetime.now(UTC)  # the log's rows from this serve on (the folder may hold older ones)
    log = (folder / "serve.log").open("wb")  # a pipe nobody reads would stall the server once full
    server = subprocess.Popen([str(LOOML), "serve", "looml.yaml", "--port", str(port), "--workers", "2"],
                              cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, server, folder / "serve.log")
        warm = _warm(url, rows)
        swaps: list[tuple[float, str]] = []
        memory: list[tuple[float, int]] = []
        started = time.monotonic()
        stop = threading.Event()
        helpers = [threading.Thread(target=_swap, args=(folder, swap_every, started, stop, swaps)),
                   threading.Thread(target=_sample, args=(server.pid, started, stop, memory))]
        for helper in helpers:
            helper.start()
        try:
            answers = asyncio.run(_load(url, rows, seconds, concurrency, seed, started))
        finally:
            stop.set()
            for helper in helpers:
                helper.join()
        took = time.monotonic() - started
        memory.append((took, _workers_rss(server.pid)))
    finally:
        _stop(server)
        log.close()
    logged = _logged(folder, since, sum(a.rows for a in answers if a.status == 200) + len(warm), warm)
    ok = [a for a in answers if a.status == 200 and a.rows == 1]
    bounds = np.linspace(0, took, windows + 1)
    p99s = [float(np.percentile([a.seconds for a in ok if lo <= a.at < hi], 99)) * 1000
            for lo, hi in itertools.pairwise(bounds)
            if any(lo <= a.at < hi for a in ok)]
    return SoakResult(seconds=took, answers=answers, swaps=swaps, logged=logged, memory=memory, windows=p99s)


def _bodies(rows: pl.DataFrame, n: int, rng: random.Random) -> dict[str, Any]:
    start = rng.randrange(0, max(1, rows.height - n))
    part = rows.slice(start, n) if n <= rows.height else pl.concat([rows] * (n // rows.height + 1)).head(n)
    records = json.loads(part.write_json())
    columns = part.columns
    return {
        "predict": ("/predict", {"records": records}),
        "invocations": ("/invocations", {"dataframe_split": {
            "columns": columns, "data": [[r[c] for c in columns] for r in records]}}),
        "infer": (f"/v2/models/{MODEL}/infer", {"inputs": [
            {"name": c, "shape": [n], "datatype": _datatype(part[c]), "data": [r[c] for r in records]}
            for c in columns]}),
    }


def _datatype(column: pl.Series) -> str:
    return "BYTES" if column.dtype == pl.String else "INT64" if column.dtype.is_integer() else "FP64"


_MALFORMED = [
    ("/predict", b'{"records": [{"Age": 41,'),  # cut short
    ("/predict", b'{"records": "not a list"}'),
    ("/invocations", b'{"dataframe_records": [], "instances": []}'),
    (f"/v2/models/{MODEL}/infer", b'{"inputs": [{"name": "Age", "shape": [-3], "datatype": "INT64", '
                                  b'"data": [1]}]}'),
]


async def _load(url: str, rows: pl.DataFrame, seconds: float, concurrency: int, seed: int,
                started: float) -> list[Answer]:
    answers: list[Answer] = []
    deadline = started + seconds
    # Bodies made beforehand: the clients measure the server, not JSON encoding.
    rng = random.Random(seed)
    small = [_bodies(rows, 1, rng) for _ in range(200)]
    big = [_bodies(rows, BIG_ROWS, rng) for _ in range(4)]

    async def client(number: int) -> None:
        picks = random.Random(seed * 1000 + number)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            while time.monotonic() < deadline:
                draw = picks.random()
                if draw < 0.01:
                    path, content = picks.choice(_MALFORMED)
                    kind, n, request = f"{path.split('/')[1]}+bad", 0, {"content": content}
                else:
                    n = BIG_ROWS if draw > 0.97 else 1
                    kind = picks.choice(["predict", "invocations", "infer"])
                    path, body = picks.choice(big if n > 1 else small)[kind]
                    request = {"content": json.dumps(body).encode()}
                sent = time.monotonic()
                try:
                    answer = await http.post(path, headers={"content-type": "application/json"}, **request)
                except httpx.HTTPError as exc:
                    answers.append(Answer(sent - started, kind, n, 0, time.monotonic() - sent,
                                          error=f"{type(exc).__name__}: {exc}"))
                    continue
                version = None
                if answer.status_code == 200 and kind != "invocations":
                    version = str(answer.json().get("model_version"))
                answers.append(Answer(sent - started, kind, n, answer.status_code, time.monotonic() - sent,
                                      answer.headers.get("x-request-id"), version,
                                      "" if answer.status_code == 200 else answer.text[:300]))

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return answers


def _swap(folder: Path, every: float, started: float, stop: threading.Event,
          swaps: list[tuple[float, str]]) -> None:
    version = "1"
    while not stop.wait(every):
        version = "2" if version == "1" else "1"
        done = subprocess.run([str(LOOML), "models", "promote", version], cwd=folder, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        swaps.append((time.monotonic() - started, version))


def _warm(url: str, rows: pl.DataFrame) -> list[str]:
    """A few requests on every protocol before the clock starts (each worker's first calls); their
    request ids, which the log check leaves out."""
    rng = random.Random(-1)
    ids = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for _ in range(6):
            for path, body in _bodies(rows, 1, rng).values():
                answer = http.post(path, json=body)
                assert answer.status_code == 200, answer.text
                ids.append(answer.headers["x-request-id"])
    return ids


def _logged(folder: Path, since: datetime, expected: int, warm: list[str]) -> pl.DataFrame:
    """The prediction log since `since`, once it holds every row served and stops growing, without
    the warm-up's requests."""
    from looml.store.predictions import read_predictions

    logs = folder / ".looml" / "logs"
    deadline = time.monotonic() + 60
    height = -1
    while True:
        found = read_predictions(logs, since=since)
        if (found.height == height and height >= expected) or time.monotonic() > deadline:
            return found.filter(~pl.col("request_id").is_in(warm))
        height = found.height
        time.sleep(1.5)


def _wait_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, f"looml serve stopped: {log.read_text(errors='replace')[-3000:]}"
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("looml serve was not ready within 120 s")


def _sample(parent: int, started: float, stop: threading.Event, memory: list[tuple[float, int]]) -> None:
    while True:
        memory.append((time.monotonic() - started, _workers_rss(parent)))
        if stop.wait(5.0):
            return


def _workers_rss(parent: int) -> int:
    total = 0
    for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        status = Path(f"/proc/{child}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        total += int(kib) * 1024
    return total


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
