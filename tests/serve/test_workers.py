"""`looml serve --workers 2` as a user starts it: the CLI in its own process, two worker processes
that each accept connections on the shared port, one Prometheus view, and a prompt stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from test_app import ROW, churn

import looml

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT balancing is Linux's")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("workers")
    churn(300, seed=1).write_csv(folder / "data.csv")
    spec = folder / "looml.yaml"
    spec.write_text("seed: 3\ndata:\n  source: data.csv\n  target: label\nsplit:\n  folds: 2\n"
                    "models:\n  candidates: [linear]\nregistry:\n  model_name: tiny\n", encoding="utf-8")
    looml.run(spec)
    return spec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(project: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "looml", "serve", str(project), "--port", str(port),
                             "--workers", "2"], cwd=project.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the workers did not start"
            started |= set(workers_of(proc.pid))
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200 \
                        and len(workers_of(proc.pid)) == 2:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield proc, port
    finally:
        started |= set(workers_of(proc.pid))
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def workers_of(parent: int) -> list[int]:
    """The live worker processes of `parent` (not multiprocessing's resource tracker)."""
    return [p for p in children_of(parent) if b"spawn_main" in _cmdline(p)]


def children_of(parent: int) -> list[int]:
    """Every child process of `parent`: the workers and multiprocessing's resource tracker."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def sockets_by_process(pids: list[int], port: int, state: str) -> dict[int, set[str]]:
    """The inodes of the TCP sockets on the server side of `port` in `state` (01 ESTABLISHED,
    0A LISTEN) that each process holds."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
                found.add(fields[9])
    held = {}
    for pid in pids:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        held[pid] = inodes & found
    return held


def test_two_workers_share_the_connections_and_stop_on_sigterm(
        served: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = served
    body = orjson.dumps({"records": [ROW]})
    request = (f"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
               f"content-length: {len(body)}\r\n\r\n").encode() + body
    # All connected before any is served, as a load generator opens them: a worker that wakes on a
    # shared accept queue takes every pending connection at once.
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
    try:
        for sock in sockets:
            sock.sendall(request)
        for sock in sockets:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "a request was not answered"
        pids = workers_of(proc.pid)

        listening = sockets_by_process(pids, port, "0A")
        counts = {pid: len(held) for pid, held in sockets_by_process(pids, port, "01").items()}

        # each worker its own listening socket (one shared socket made one worker take every
        # connection of a load generator: bench/serve.py), and the connections spread over both
        assert all(len(held) == 1 for held in listening.values()), listening
        assert len(set.union(*listening.values())) == 2, listening
        assert sum(counts.values()) == 16, counts
        assert all(n > 0 for n in counts.values()), f"one worker holds every connection: {counts}"
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text  # one worker answers for both
        assert 'looml_requests_total{endpoint="/predict",status="200"} 16.0' in metrics
    finally:
        for sock in sockets:
            sock.close()

    everything = children_of(proc.pid)
    assert set(pids) < set(everything)  # the resource tracker too
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert time.monotonic() - started < 15
    assert [pid for pid in pids if running(pid)] == []
    deadline = time.monotonic() + 10  # the tracker leaves once its parent's pipe closes
    while left := [pid for pid in everything if running(pid)]:
        assert time.monotonic() < deadline, f"processes left after the server stopped: {left}"
        time.sleep(0.05)
    with pytest.raises(httpx.ConnectError):  # nothing listens on the port any more
        httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=2)


def test_a_sigint_to_the_parent_alone_stops_the_workers(served: tuple[subprocess.Popen[str], int]) -> None:
    proc, _ = served
    pids = workers_of(proc.pid)

    proc.send_signal(signal.SIGINT)

    assert proc.wait(30) == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)


def test_a_worker_that_dies_is_replaced(served: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = served
    first = workers_of(proc.pid)

    os.kill(first[0], signal.SIGKILL)

    deadline = time.monotonic() + 60
    while not (len(now := workers_of(proc.pid)) == 2 and first[0] not in now):
        assert time.monotonic() < deadline, f"no new worker: {workers_of(proc.pid)}"
        time.sleep(0.2)
    url = f"http://127.0.0.1:{port}/predict"
    while httpx.post(url, json={"records": [ROW]}, timeout=30).status_code != 200:
        time.sleep(0.2)


def test_the_workers_stop_when_the_parent_is_killed(served: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = served
    pids = workers_of(proc.pid)

    proc.kill()  # SIGKILL: no chance to stop them itself
    proc.wait()

    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
              for pid in pids):
        assert time.monotonic() < deadline, "a worker kept serving after its parent was killed"
        time.sleep(0.2)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=2)
