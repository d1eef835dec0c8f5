"""Where trials run: a small interface, an in-process twin and a local process pool.

An executor runs jobs `fn(job, data, ask)` against `data` sent once. `ask(message)` lets a
running job ask the caller a question mid-way (the tuner's "prune after this fold?") and
wait for the answer. A distributed backend (Ray) implements the same five methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Executor", "Job", "JobFailure", "OnMessage"]

Job = Callable[[Any, Any, Callable[[Any], Any]], Any]
OnMessage = Callable[[int, Any], Any]


@dataclass(frozen=True)
class JobFailure:
    """The result of a job that raised, or whose worker died (killed for memory, crashed)."""

    message: str


class Executor(Protocol):
    """Runs keyed jobs; results come back as (key, result) pairs in completion order."""

    def idle(self) -> int:
        """How many jobs can start now."""

    def submit(self, key: int, job: Any) -> None:
        """Start a job (only while `idle()` > 0)."""

    def results(self, timeout: float | None) -> list[tuple[int, Any]]:
        """Finished jobs (a `JobFailure` for one that raised); waits up to `timeout` seconds (None:
        until one finishes)."""

    def cancel(self, key: int) -> None:
        """Stop a running job now; its result never comes."""

    def close(self) -> None:
        """Stop every worker."""
