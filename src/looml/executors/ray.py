"""The Ray executor: jobs as Ray tasks on a cluster the user started, reached by its address.

    cluster = connect("auto" | "host:6379" | "ray://host:10001")   # RayCluster: its CPUs
    executor = RayExecutor(fn, data, on_message, workers, threads, cluster)

The data goes into the object store once (`ray.put`); a task carries its key and its job (a
trial's unfitted pipeline) and a reference to the data, which each worker process reads once
and keeps for the jobs after. Each task asks for `threads` CPUs, so Ray never places more
threads on a node than it has cores, and the job pins its own thread pools to the same number.

`ask(question)` inside a job goes to a small mailbox actor on the driver's node and waits there;
`results` answers it in this process through `on_message`, as the local pool answers over its
pipe. `cancel` is `ray.cancel(force=True)`: the worker process is killed, its result never
comes. A task that loses its worker or its node is not retried (`max_retries=0`): it comes back
as a `JobFailure`, as a dead worker does in the local pool.

The connection is Ray's own, one per process: `connect` reuses it for the same address, so
several searches in one process pay for it once; Ray closes it when the process exits.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

from looml.errors import Problem, SpecError
from looml.executors import Job, JobFailure, OnMessage

__all__ = ["INSTALL", "RayCluster", "RayExecutor", "connect"]

INSTALL = "pip install 'looml[ray]'"
_PROBE_SECONDS = 5.0
_KEPT: dict[str, Any] = {}  # in a Ray worker process: the (fn, data) of the current search, by object id


@dataclass(frozen=True)
class RayCluster:
    """A connected cluster: its address, all its CPUs, the most CPUs one node has, its alive
    nodes, and this connection's mailbox actor (see `_Mailbox`)."""

    address: str
    cpus: int
    node_cpus: int
    nodes: int
    mailbox: Any = None


_SPEC_KEYS = ("tuning.executor.kind", "tuning.executor.address")


def _problem(address: str, message: str, fix: str, loc: str) -> SpecError:
    return SpecError(Problem(loc=loc, value=address, message=message, fix=fix))


def _probe(address: str, loc: str) -> None:
    """A `SpecError` now when nothing listens at host:port (Ray's own connect retries for a minute)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=_PROBE_SECONDS).close()
    except OSError as exc:
        raise _problem(address, f"no Ray cluster answers there ({exc.strerror or exc})",
                       "start one (ray start --head --port 6379 on the head, ray start --address "
                       "HEAD:6379 on each other node), or point tuning.executor.address at its head "
                       "(host:6379, or ray://host:10001 for Ray Client)", loc) from exc


def connect(address: str, locs: tuple[str, str] = _SPEC_KEYS) -> RayCluster:
    """Connect this process to the cluster at `address` (or keep the connection it has there).

    Raises `SpecError` when Ray is not installed, when nothing answers at the address, or
    when Ray refuses to connect (a version mismatch, no cluster for `auto`); `locs` name where
    the kind and the address were given (the spec's keys, or a command's options).
    """
    if importlib.util.find_spec("ray") is None:
        raise SpecError(Problem(loc=locs[0], value="ray", message="Ray is not installed",
                                fix=f"{INSTALL} (on this machine; every node of the cluster needs looml "
                                    "too), or use executor: local"))
    import ray

    if ray.is_initialized() and _CONNECTED.get("address") != address:
        ray.shutdown()
        _CONNECTED.clear()
    if not ray.is_initialized():
        if address != "auto":
            _probe(address, locs[1])
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                     configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise _problem(address, f"Ray could not connect: {str(exc).splitlines()[0]}",
                           "start a cluster (ray start --head), or set tuning.executor.address to its "
                           "head (host:6379 or ray://host:10001)", locs[1]) from exc
        _CONNECTED["address"] = address
        _CONNECTED["mailbox"] = _start_mailbox()
    alive = [n for n in ray.nodes() if n.get("Alive")]
    per_node = [int(n.get("Resources", {}).get("CPU", 0)) for n in alive]
    return RayCluster(address, max(1, sum(per_node)), max(1, max(per_node, default=1)), len(alive),
                      _CONNECTED["mailbox"])


_CONNECTED: dict[str, Any] = {}  # this process's Ray connection: its address and its mailbox


def _start_mailbox() -> Any:
    """The mailbox actor, on this (the driver's) node. Started once per connection, as soon as it
    is made: its worker process takes seconds to start, which the tuner's own preparation then
    covers, instead of the first trial's first question waiting for it."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    return ray.remote(_Mailbox).options(num_cpus=0, scheduling_strategy=here, max_restarts=0).remote()


class _Mailbox:
    """A job's questions to the driver, and the driver's answers (a Ray actor, async)."""

    def __init__(self) -> None:
        self._questions: list[tuple[int, Any]] = []
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._asked = asyncio.Event()
        self._search = 0  # whose questions these are: a poll left by a closed search takes none

    async def ask(self, key: int, question: Any) -> Any:
        """Called by a job: wait until the driver answers."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        self._questions.append((key, question))
        self._asked.set()
        return await future

    async def questions(self, search: int) -> list[tuple[int, Any]]:
        """Called by the driver: the questions asked since the last call (waits for one)."""
        await self._asked.wait()
        if search != self._search:
            return []
        self._asked.clear()
        out, self._questions = self._questions, []
        return out

    async def answer(self, key: int, value: Any) -> None:
        """Called by the driver: the answer to a job's question."""
        future = self._waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(value)

    async def reset(self, search: int) -> None:
        """A new search: drop what a previous one left (questions of its killed trials)."""
        self._search = search
        self._waiting.clear()
        self._questions = []
        self._asked.clear()

    async def forget(self, key: int) -> None:
        """The job was cancelled: drop its question."""
        self._waiting.pop(key, None)
        self._questions = [(k, q) for k, q in self._questions if k != key]


def _run(blob: list[Any], key: int, job: Any, mailbox: Any) -> tuple[str, str, Any]:
    """One task: (node id, 'done' or 'failed', the result or the error)."""
    import ray

    ref = blob[0]  # in a list, so that Ray passes the reference and this worker reads it once
    if ref.hex() not in _KEPT:
        _KEPT.clear()
        _KEPT[ref.hex()] = ray.get(ref)
    fn, data = _KEPT[ref.hex()]
    node = ray.get_runtime_context().get_node_id()

    def ask(question: Any) -> Any:
        return ray.get(mailbox.ask.remote(key, question))

    try:
        return node, "done", fn(job, data, ask)
    except Exception as exc:  # reported to the caller as this job's failure
        return node, "failed", f"{type(exc).__name__}: {exc}"


class RayExecutor:
    """Runs `fn(job, data, ask)` as Ray tasks, `workers` at a time; see the module docstring.

    Parameters
    ----------
    fn : function (job, data, ask) -> result, importable on every node
    data : anything picklable, put in the object store once
    on_message : called in this process with (key, question) for each `ask`; its return
        value is the answer
    workers : jobs at a time
    threads : CPUs each task asks Ray for (the job's threads)
    cluster : from `connect`
    """

    def __init__(self, fn: Job, data: Any, on_message: OnMessage, workers: int, threads: int,
                 cluster: RayCluster) -> None:
        import ray

        self.cluster, self._workers, self._on_message = cluster, workers, on_message
        self._blob = ray.put((fn, data))
        self._mailbox = cluster.mailbox
        _CONNECTED["searches"] = self._search = _CONNECTED.get("searches", 0) + 1
        self._mailbox.reset.remote(self._search)  # before any question: one caller's calls run in order
        self._task = ray.remote(_run).options(num_cpus=threads, max_retries=0, retry_exceptions=False)
        self._running: dict[int, Any] = {}
        self._poll: Any = None
        self.placed: dict[int, str] = {}  # key -> the node id that ran it (finished jobs)

    def idle(self) -> int:
        """How many more jobs may run now."""
        return max(0, self._workers - len(self._running))

    def submit(self, key: int, job: Any) -> None:
        """Start the job as a Ray task."""
        self._running[key] = self._task.remote([self._blob], key, job, self._mailbox)

    def results(self, timeout: float | None) -> list[tuple[int, Any]]:
        """Finished jobs (a `JobFailure` for a job that raised or lost its worker or node);
        questions asked meanwhile are answered through `on_message`."""
        import ray

        end = None if timeout is None else time.monotonic() + timeout
        while self._running:
            if self._poll is None:
                self._poll = self._mailbox.questions.remote(self._search)
            refs = list(self._running.values())
            left = None if end is None else max(0.0, end - time.monotonic())
            ready, _ = ray.wait([*refs, self._poll], num_returns=1, timeout=left)
            if ready and self._poll in ray.wait([self._poll], timeout=0)[0]:
                self._answer()
            done = set(ray.wait(refs, num_returns=len(refs), timeout=0)[0])
            out = [self._collect(key, ref) for key, ref in list(self._running.items()) if ref in done]
            if out or (end is not None and time.monotonic() >= end):
                return out
        return []

    def _answer(self) -> None:
        import ray

        poll, self._poll = self._poll, None
        try:
            questions = ray.get(poll)
        except ray.exceptions.RayError:  # the mailbox is gone: the waiting jobs fail on their own
            return
        for key, question in questions:
            if key in self._running:  # not a job cancelled meanwhile
                self._mailbox.answer.remote(key, self._on_message(key, question))

    def _collect(self, key: int, ref: Any) -> tuple[int, Any]:
        import ray

        del self._running[key]
        try:
            node, kind, payload = ray.get(ref)
        except ray.exceptions.RayError as exc:
            return key, JobFailure(_lost(exc))
        self.placed[key] = node
        return key, payload if kind == "done" else JobFailure(payload)

    def cancel(self, key: int) -> None:
        """Kill the worker running the job (`ray.cancel(force=True)`); its result never comes."""
        import ray

        ref = self._running.pop(key, None)
        if ref is not None:
            ray.cancel(ref, force=True)
            self._mailbox.forget.remote(key)

    def close(self) -> None:
        """Kill the running jobs and let the data go (the connection and its mailbox stay)."""
        for key in list(self._running):
            self.cancel(key)
        self._poll = None
        self._blob = None


def _lost(exc: Exception) -> str:
    """A readable reason for a task Ray could not finish."""
    name = type(exc).__name__
    if "NodeDied" in name or ("node" in str(exc).lower() and "died" in str(exc).lower()):
        return f"the Ray node running it died ({name})"
    if "WorkerCrashed" in name or "ActorDied" in name:
        return f"the Ray worker process running it died ({name})"
    return f"{name}: {str(exc).splitlines()[0][:300]}"
