"""One contract for every executor (in-process and the local process pool), plus what only a
process pool can do: stop a running job, and survive a worker that dies."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from looml.executors import Executor, JobFailure
from looml.executors.inline import InlineExecutor
from looml.executors.local import LocalExecutor


def scaled(job: Any, data: Any, ask: Callable[[Any], Any]) -> Any:
    """A job: multiply by the data; 'ask' jobs ask the caller first; 'boom' raises."""
    if job == "boom":
        raise ValueError("boom")
    if job == "ask":
        return ask("factor?") * data
    if job == "sleep":
        time.sleep(60)
    if job == "die":
        os._exit(3)
    return job * data


def drain(executor: Executor, count: int) -> dict[int, Any]:
    out: dict[int, Any] = {}
    while len(out) < count:
        out.update(executor.results(timeout=30))
    return out


@pytest.fixture(params=["inline", "local"])
def make(request: pytest.FixtureRequest) -> Callable[..., Executor]:
    made: list[Executor] = []

    def build(on_message: Callable[[int, Any], Any] = lambda key, m: None, workers: int = 2) -> Executor:
        executor: Executor = (InlineExecutor(scaled, 10, on_message) if request.param == "inline"
                              else LocalExecutor(scaled, 10, on_message, workers))
        made.append(executor)
        return executor

    yield build
    for executor in made:
        executor.close()


def test_jobs_run_against_the_data_sent_once(make: Callable[..., Executor]) -> None:
    executor = make()
    results: dict[int, Any] = {}
    for key, job in enumerate([1, 2, 3]):
        while not executor.idle():
            results.update(executor.results(timeout=30))
        executor.submit(key, job)
    results.update(drain(executor, 3 - len(results)))
    assert results == {0: 10, 1: 20, 2: 30}


def test_a_job_asks_the_caller_mid_way(make: Callable[..., Executor]) -> None:
    asked: list[tuple[int, Any]] = []
    executor = make(on_message=lambda key, question: asked.append((key, question)) or 4)
    executor.submit(7, "ask")
    assert drain(executor, 1) == {7: 40}
    assert asked == [(7, "factor?")]


def test_a_job_that_raises_fails_alone(make: Callable[..., Executor]) -> None:
    executor = make(workers=1)
    executor.submit(0, "boom")
    assert drain(executor, 1) == {0: JobFailure("ValueError: boom")}
    executor.submit(1, 5)
    assert drain(executor, 1) == {1: 50}


def test_a_running_job_is_stopped_and_its_slot_reused() -> None:
    executor = LocalExecutor(scaled, 10, lambda key, m: None, workers=1)
    try:
        executor.submit(0, "sleep")
        assert executor.results(timeout=0.5) == [] and executor.idle() == 0
        began = time.monotonic()
        executor.cancel(0)
        assert time.monotonic() - began < 5
        assert executor.idle() == 1
        executor.submit(1, 2)
        assert drain(executor, 1) == {1: 20}
    finally:
        executor.close()


def test_a_worker_that_dies_is_a_failed_job_not_a_hang() -> None:
    executor = LocalExecutor(scaled, 10, lambda key, m: None, workers=1)
    try:
        executor.submit(0, "die")
        [(key, result)] = drain(executor, 1).items()
        assert key == 0 and isinstance(result, JobFailure) and "exit code 3" in result.message
        executor.submit(1, 3)
        assert drain(executor, 1) == {1: 30}
    finally:
        executor.close()
