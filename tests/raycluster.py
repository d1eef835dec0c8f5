"""A throw-away Ray cluster on loopback for tests and benchmarks: a head node and more nodes,
each a `ray start` of its own with its own CPUs, all under one temp dir.

    with running_cluster(nodes=2) as cluster:  # head + 1 more, one CPU each, on free 127.0.0.1 ports
        cluster.address                        # "127.0.0.1:PORT", what tuning.executor.address takes
        ray.init(cluster.address); cluster.wait(2)  # (or looml's connect) until both are listed
        cluster.kill(1)                        # SIGKILL node 1's processes (its raylet and workers)
    # every process stopped, the temp dir removed

Each node is started in a session of its own (`start_new_session`), so its raylet, its agents
and the workers the raylet forks share one process group, and stopping a node is one `killpg`.
Nothing here uses `ray stop`, which would stop every Ray on the machine, other people's too.
Usage statistics are off, so nothing tries the network. Ray binds its ports to the machine's own
address even when given 127.0.0.1 (it resolves loopback, for multi-node use), so the cluster
takes token authentication with a fresh random token (`cluster.env`, which a driver process
needs in its environment, and a driver that imported Ray before must have Ray read its settings
again): no one else on the network can run code on it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = ["Cluster", "free_port", "leftover_processes", "running_cluster"]

RAY = Path(sys.executable).with_name("ray")
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_memory_monitor_refresh_ms": "0",
       "RAY_DISABLE_IMPORT_WARNING": "1"}
_STORE_BYTES = 80 * 2**20  # the object store of each node: the tests' data is a few MB


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running cluster: the head's address, its temp dir, and each node's process group."""

    address: str
    temp_dir: Path
    groups: list[int] = field(default_factory=list)  # process group id per node, head first
    options: list[str] = field(default_factory=list)  # what every node's `ray start` takes
    env: dict[str, str] = field(default_factory=dict)  # what every process of it needs: the token

    def add_node(self) -> int:
        """Start one more node; its index (for `kill`). Then `wait` for it, once connected."""
        self.groups.append(_start(["--address", self.address, *self.options],
                                  self.temp_dir / f"node{len(self.groups)}.log", self.env))
        return len(self.groups) - 1

    def wait(self, count: int, timeout: float = 60) -> None:
        """Until Ray lists `count` alive nodes (this process must be connected to the cluster)."""
        import ray

        deadline = time.monotonic() + timeout
        while sum(n["Alive"] for n in ray.nodes()) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray cluster at {self.address} did not list {count} nodes "
                                   f"within {timeout:g} s")
            time.sleep(0.1)

    def busy(self, node: int) -> bool:
        """Whether a worker of that node runs a task now (Ray titles it `ray::<function>`)."""
        for process in _members(self.groups[node]):
            try:
                title = " ".join(process.cmdline())
            except psutil.Error:
                continue
            if title.startswith("ray::") and "IDLE" not in title and "Agent" not in title:
                return True
        return False

    def kill(self, node: int) -> None:
        """Kill every process of one node at once (as a crashed machine would stop)."""
        for process in _members(self.groups[node]):
            try:
                process.kill()
            except psutil.Error:
                continue


def _members(group: int) -> list[psutil.Process]:
    """A node's processes: its process group, and what they started (the raylet starts each
    worker in a session of its own)."""
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group:
                found[process.pid] = process
                found.update((child.pid, child) for child in process.children(recursive=True))
        except (psutil.Error, ProcessLookupError):
            continue
    return list(found.values())


def _killpg(group: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def leftover_processes(groups: list[int], temp_dir: Path) -> list[psutil.Process]:
    """Processes still alive in the cluster's process groups, or naming its temp dir in their
    command line or open files (a worker's output goes to the session's log files there)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if process.pid == os.getpid() or process.status() == psutil.STATUS_ZOMBIE:
                continue
            if os.getpgid(process.pid) in groups or str(temp_dir) in " ".join(process.info["cmdline"] or []):
                found.append(process)
                continue
            fds = Path(f"/proc/{process.pid}/fd")
            if any(str(temp_dir) in os.readlink(fd) for fd in fds.iterdir()):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def _launch(args: list[str], log: Path,
            env: dict[str, str]) -> tuple[subprocess.Popen[bytes], list[str], Path]:
    """Start one `ray start` in a new session (its pid is the node's process group id)."""
    with log.open("wb") as out:
        process = subprocess.Popen([str(RAY), "start", *args], stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env}, start_new_session=True)
    return process, args, log


def _started(launched: tuple[subprocess.Popen[bytes], list[str], Path]) -> int:
    """The node's process group id once its `ray start` has returned."""
    process, args, log = launched
    try:
        code = process.wait(120)
    except subprocess.TimeoutExpired:
        code = None
    if code != 0:
        _killpg(process.pid)
        raise RuntimeError(f"ray start {' '.join(args)} failed ({code}):\n{log.read_text()[-3000:]}")
    return process.pid


def _start(args: list[str], log: Path, env: dict[str, str], tries: int = 2) -> int:
    """`ray start`, once more if it fails: on a loaded machine a raylet can miss Ray's fixed 30 s
    to register ("The current node timed out during startup")."""
    for attempt in range(tries):
        try:
            return _started(_launch(args, log, env))
        except RuntimeError:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


@contextmanager
def running_cluster(nodes: int = 2, cpus: int = 1) -> Iterator[Cluster]:
    """Start a head and `nodes - 1` more nodes on loopback, each with `cpus` CPUs; stop them all."""
    temp_dir = Path(tempfile.mkdtemp(prefix="lr", dir="/tmp"))  # short: unix socket paths in it
    port = free_port()
    common = ["--num-cpus", str(cpus), "--node-ip-address", "127.0.0.1", "--temp-dir", str(temp_dir),
              "--object-store-memory", str(_STORE_BYTES), "--disable-usage-stats"]
    env = {**ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    cluster = Cluster(f"127.0.0.1:{port}", temp_dir, options=common, env=env)
    try:
        cluster.groups.append(_start(["--head", "--port", str(port), "--include-dashboard=false",
                                      "--ray-client-server-port", str(free_port()), *common],
                                     temp_dir / "head.log", env))
        for _ in range(1, nodes):  # one at a time: side by side, they time out on a busy machine
            cluster.add_node()
        yield cluster
    finally:
        for group in reversed(cluster.groups):
            members = _members(group)
            _killpg(group)
            for process in members:
                try:
                    process.kill()
                except psutil.Error:
                    continue
        deadline = time.monotonic() + 10
        while leftover_processes(cluster.groups, temp_dir) and time.monotonic() < deadline:
            for process in leftover_processes(cluster.groups, temp_dir):
                process.kill()
            time.sleep(0.2)
        shutil.rmtree(temp_dir, ignore_errors=True)

