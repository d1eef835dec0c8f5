"""The local executor: a persistent pool of worker processes on this machine.

Workers start once per pool through a fork server (a clean process that imported the
preloaded modules once; forking it is safe with OpenMP, unlike forking a parent whose
OpenMP threads already run). The data is pickled once and sent to each worker once; a job
then carries only its own small payload. `cancel` kills the worker running a job, which is
how a trial past its deadline is stopped; a fresh worker takes its slot when needed.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from looml.executors import Job, JobFailure, OnMessage
from looml.faults import fault_point

__all__ = ["LocalExecutor"]


@dataclass
class _Worker:
    process: Any
    conn: Connection
    key: int | None = None


def _serve(conn: Connection) -> None:
    """A worker's loop: read (fn, data) once, then run jobs until told to stop.

    The pipe's other end is the parent that started this worker: only looml's own process
    writes to it, so unpickling what it sends trusts nothing from outside.
    """
    fn, data = pickle.loads(conn.recv_bytes())
    while True:
        message = conn.recv()
        if message is None:
            return
        key, job = message

        def ask(question: Any, key: int = key) -> Any:
            conn.send(("ask", key, question))
            return conn.recv()

        try:
            conn.send(("done", key, fn(job, data, ask)))
        except Exception as exc:  # reported to the caller as this job's failure
            conn.send(("failed", key, f"{type(exc).__name__}: {exc}"))


class LocalExecutor:
    """Runs `fn(job, data, ask)` in `workers` processes; see the module docstring.

    Parameters
    ----------
    fn : picklable function (job, data, ask) -> result
    data : anything picklable, sent to each worker once
    on_message : called in this process with (key, question) for each `ask`; its return
        value is the answer
    workers : number of processes
    preload : modules the fork server imports once, so workers start warm
    """

    def __init__(self, fn: Job, data: Any, on_message: OnMessage, workers: int,
                 preload: tuple[str, ...] = ()) -> None:
        self._context = mp.get_context("forkserver")
        self._context.set_forkserver_preload(list(preload))
        self._blob = pickle.dumps((fn, data), protocol=5)
        self._on_message = on_message
        self._slots: list[_Worker | None] = [self._start() for _ in range(workers)]

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child,), daemon=True)
        process.start()
        child.close()
        parent.send_bytes(self._blob)
        return _Worker(process, parent)

    def idle(self) -> int:
        """Workers without a job, and empty slots a fresh worker can take."""
        return sum(1 for w in self._slots if w is None or w.key is None)

    def submit(self, key: int, job: Any) -> None:
        """Send the job to an idle worker (starting one in an empty slot if needed)."""
        idle = [i for i, w in enumerate(self._slots) if w is not None and w.key is None]
        i = idle[0] if idle else self._slots.index(None)
        worker = self._slots[i] or self._start()
        self._slots[i] = worker
        worker.conn.send((key, job))
        worker.key = key
        fault_point("tune.submitted")  # mid-search: this trial's worker (and the pool) alive

    def results(self, timeout: float | None) -> list[tuple[int, Any]]:
        """Finished jobs (a `JobFailure` for a job that raised or lost its worker); questions
        asked meanwhile are answered through `on_message`."""
        busy = {w.conn: w for w in self._slots if w is not None and w.key is not None}
        if not busy:
            return []
        out: list[tuple[int, Any]] = []
        for conn in wait(list(busy), timeout):
            worker = busy[conn]
            try:
                kind, key, payload = conn.recv()
            except (EOFError, OSError):
                worker.process.join(1)
                out.append((worker.key, JobFailure(
                    f"the worker process died (exit code {worker.process.exitcode})")))
                self._drop(worker)
                continue
            if kind == "ask":
                conn.send(self._on_message(key, payload))
                continue
            worker.key = None
            out.append((key, payload if kind == "done" else JobFailure(payload)))
        return out

    def cancel(self, key: int) -> None:
        """Kill the worker running the job; its slot gets a fresh worker when next needed."""
        for worker in self._slots:
            if worker is not None and worker.key == key:
                worker.process.kill()
                worker.process.join()
                self._drop(worker)

    def _drop(self, worker: _Worker) -> None:
        worker.conn.close()
        self._slots[self._slots.index(worker)] = None

    def close(self) -> None:
        """Stop idle workers politely and kill busy ones."""
        for worker in self._slots:
            if worker is None:
                continue
            if worker.key is None:
                try:
                    worker.conn.send(None)
                except OSError:
                    worker.process.kill()
            else:
                worker.process.kill()
        for worker in self._slots:
            if worker is not None:
                worker.process.join(5)
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join()
                worker.conn.close()
        self._slots = [None] * len(self._slots)
