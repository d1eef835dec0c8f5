"""The in-process executor: one job at a time, in the caller's process.

Used when nothing needs stopping from outside (no time budget) and trials run one at a
time: no process start, no data copy. It cannot stop a running job.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from looml.executors import Job, JobFailure, OnMessage

__all__ = ["InlineExecutor"]


class InlineExecutor:
    """Runs `fn(job, data, ask)` in this process when results are asked for."""

    def __init__(self, fn: Job, data: Any, on_message: OnMessage) -> None:
        self._fn, self._data, self._on_message = fn, data, on_message
        self._queue: deque[tuple[int, Any]] = deque()

    def idle(self) -> int:
        """One job may wait to run at a time."""
        return 0 if self._queue else 1

    def submit(self, key: int, job: Any) -> None:
        """Queue the job; it runs in the next `results` call."""
        self._queue.append((key, job))

    def results(self, timeout: float | None) -> list[tuple[int, Any]]:
        """Run the queued job now (the timeout cannot be honoured in-process)."""
        if not self._queue:
            return []
        key, job = self._queue.popleft()
        try:
            return [(key, self._fn(job, self._data, lambda message: self._on_message(key, message)))]
        except Exception as exc:  # the job's failure, as a worker process reports it
            return [(key, JobFailure(f"{type(exc).__name__}: {exc}"))]

    def cancel(self, key: int) -> None:
        """Drop the job if it has not started."""
        self._queue = deque((k, j) for k, j in self._queue if k != key)

    def close(self) -> None:
        """Nothing to stop."""
