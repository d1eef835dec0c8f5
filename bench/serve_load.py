"""Load generators for bench/serve.py: closed-loop HTTP/1.1 POSTs over persistent connections.

    run_load(url, path, bodies_file, concurrency, seconds, client) -> Load

`concurrency` connections each send one request, wait for its answer, and send the next, for
`seconds`; the bodies (one JSON document per line of `bodies_file`) are taken in turn. Two
clients give the same figures:

- "wrk": Debian's `wrk` (C, epoll) with `serve_wrk.lua`, one thread. It counts a status above
  399 or a socket error as an error and timeouts apart;
- "python": an asyncio client on raw streams (no HTTP library on the hot path), for machines
  without wrk. It counts every status other than 200 as an error.

Alongside, the client's own CPU time and the machine's busy share (/proc/stat) during the run,
so a table can show whether the load generator could have been the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

LUA = Path(__file__).resolve().parent / "serve_wrk.lua"


@dataclass
class Load:
    """What one load run measured."""

    requests: int
    seconds: float
    errors: int  # non-200 answers (wrk: >399) and socket errors
    timeouts: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    client_cpu: float  # the client's CPU seconds over the run's seconds (1.0 = one core)
    busy: float  # the machine's busy share of all cores during the run (steal excluded)
    steal: float = 0.0  # the share of all cores the hypervisor gave to other machines
    detail: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Answered requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str | None:
    """The wrk binary, or None."""
    return shutil.which("wrk")


def run_load(url: str, path: str, bodies: Path, concurrency: int, seconds: float, client: str,
             timeout: float = 30.0) -> Load:
    """Drive `url` + `path` with `concurrency` connections for `seconds` with the chosen client."""
    before = cpu_times()
    if client == "wrk":
        load = _run_wrk(url, path, bodies, concurrency, seconds, timeout)
    else:
        load = _run_python(url, path, bodies, concurrency, seconds, timeout)
    after = cpu_times()
    spent = [a - b for a, b in zip(after, before, strict=True)]
    total = sum(spent) or 1
    load.steal = spent[7] / total
    load.busy = (total - spent[3] - spent[4] - spent[7]) / total
    return load


def cpu_times() -> list[int]:
    """The aggregate 'cpu' line of /proc/stat (user nice system idle iowait irq softirq steal)."""
    with open("/proc/stat", encoding="ascii") as stat:
        return [int(v) for v in stat.readline().split()[1:9]]


def _run_wrk(url: str, path: str, bodies: Path, concurrency: int, seconds: float, timeout: float) -> Load:
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", f"--timeout={timeout:g}s", "--latency",
           "-s", str(LUA), url, "--", str(bodies), path]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    lines = [line for line in out.splitlines() if line.startswith("WRKJSON ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {err.strip() or out.strip()}")
    got = json.loads(lines[-1][len("WRKJSON "):])
    wall = got["duration_us"] / 1e6
    socket_errors = got["connect"] + got["read"] + got["write"]
    return Load(requests=got["requests"], seconds=wall, errors=got["status"] + socket_errors,
                timeouts=got["timeout"], p50_ms=got["p50_us"] / 1e3, p99_ms=got["p99_us"] / 1e3,
                mean_ms=got["mean_us"] / 1e3, client_cpu=(usage.ru_utime + usage.ru_stime) / wall, busy=0.0,
                detail={k: got[k] for k in ("connect", "read", "write", "status", "timeout")})


def _run_python(url: str, path: str, bodies: Path, concurrency: int, seconds: float,
                timeout: float) -> Load:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payloads = [line for line in bodies.read_bytes().splitlines() if line]
    requests = [(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(p)}\r\n\r\n").encode("ascii") + p for p in payloads]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures = {"socket": 0, "timeout": 0}

    async def user(start: int, deadline: float) -> None:
        index = start
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                writer.write(requests[index % len(requests)])
                index += 1
                status = await asyncio.wait_for(_read_response(reader), timeout)
                latencies.append(time.perf_counter() - began)
                statuses[status] = statuses.get(status, 0) + 1
        except TimeoutError:
            failures["timeout"] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            failures["socket"] += 1
        finally:
            writer.close()

    async def main() -> float:
        began = time.perf_counter()
        deadline = began + seconds
        await asyncio.gather(*(user(i * 7919, deadline) for i in range(concurrency)))
        return time.perf_counter() - began

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    wall = asyncio.run(main())
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    ms = np.asarray(latencies) * 1e3 if latencies else np.zeros(1)
    bad = sum(n for s, n in statuses.items() if s != 200)
    return Load(requests=len(latencies), seconds=wall, errors=bad + failures["socket"],
                timeouts=failures["timeout"], p50_ms=float(np.percentile(ms, 50)),
                p99_ms=float(np.percentile(ms, 99)), mean_ms=float(ms.mean()), client_cpu=cpu / wall,
                busy=0.0, detail={**{f"status {s}": n for s, n in statuses.items()}, **failures})


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one whole response (Content-Length or chunked); return its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = (line.partition(":") for line in lines[1:] if line)
    headers = {k.strip().lower(): v.strip() for k, _, v in fields}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        raise ValueError("a response without Content-Length or chunked encoding")
    return status
