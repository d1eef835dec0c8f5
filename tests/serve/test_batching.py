"""The micro-batcher with a real fitted pipeline: concurrent requests share scoring calls,
each gets its own rows back, one bad request fails alone, and a waiting batch closes as soon
as its usual company is in."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from looml.learn.features import SchemaCoercer
from looml.serve.batching import MicroBatcher
from looml.serve.model import Batch, PipelineScorer, Prediction, ServedModel

FEATURES = {"x": "numeric", "z": "numeric"}


@dataclass
class CountingScorer:
    """The real pipeline scorer, recording the rows of each call it makes."""

    inner: PipelineScorer
    name: str = "counting"
    calls: list[int] = field(default_factory=list)

    def predict(self, batch: Batch) -> Prediction:
        self.calls.append(len(next(iter(batch.values()))))
        return self.inner.predict(batch)


@pytest.fixture(scope="module")
def fitted() -> Pipeline:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=200), "z": rng.normal(size=200)})
    y = np.where(X["x"] + 0.3 * X["z"] > 0, "yes", "no")
    return Pipeline([("coerce", SchemaCoercer(columns=FEATURES)),
                     ("model", LogisticRegression())]).fit(X, y)


def served(pipeline: Pipeline) -> tuple[ServedModel, CountingScorer]:
    scorer = CountingScorer(PipelineScorer(pipeline, FEATURES))
    return ServedModel(name="m", version="1", run_id="r", task="classification", features=FEATURES,
                       classes=list(pipeline.classes_), pipeline=pipeline, scorer=scorer), scorer


def rows(n: int, seed: int = 1) -> list[Batch]:
    rng = np.random.default_rng(seed)
    return [{"x": [float(a)], "z": [float(b)]} for a, b in rng.normal(size=(n, 2))]


async def together(batcher: MicroBatcher, model: ServedModel, batches: list[Batch]) -> list[Any]:
    return await asyncio.gather(*(batcher.score(model, b, tag=i) for i, b in enumerate(batches)),
                                return_exceptions=True)


def test_concurrent_requests_share_calls_and_each_gets_its_own_rows(fitted: Pipeline) -> None:
    model, scorer = served(fitted)
    seen: list[tuple[int, list[Any]]] = []
    batcher = MicroBatcher(max_batch_rows=8, max_wait_ms=2.0,
                           on_scored=lambda m, b, p, tags: seen.append((len(p.labels), tags)))
    batches = rows(20)
    results = asyncio.run(together(batcher, model, batches))
    alone = [fitted.predict_proba(pd.DataFrame(b))[0] for b in batches]
    for result, expected in zip(results, alone, strict=True):
        np.testing.assert_allclose(result.proba[0], expected, rtol=0, atol=1e-12)
    assert scorer.calls == [8, 8, 4]  # at most max_batch_rows per call
    assert [tags for _, tags in seen] == [list(range(0, 8)), list(range(8, 16)), list(range(16, 20))]
    assert batcher.calls == 3


def test_one_bad_request_fails_alone(fitted: Pipeline) -> None:
    model, _ = served(fitted)
    batches = rows(5)
    batches[2] = {"x": ["not a number", 1.0], "z": [1.0]}  # ragged: cannot be scored
    results = asyncio.run(together(MicroBatcher(), model, batches))
    assert isinstance(results[2], Exception)
    assert all(isinstance(r, Prediction) for i, r in enumerate(results) if i != 2)


def test_disabled_scores_each_request_alone(fitted: Pipeline) -> None:
    model, scorer = served(fitted)
    asyncio.run(together(MicroBatcher(enabled=False), model, rows(6)))
    assert scorer.calls == [1] * 6


# The upper bound on waiting is an hour below: a batch that sat it out would hang the test, so
# finishing at all shows it did not wait on the timer; the guard only turns a hang into a failure.
HOUR_MS = 3_600_000.0
GUARD_SECONDS = 60.0


def finished(work: Any) -> Any:
    """Run `work` (a coroutine); fail if it is still waiting after the guard."""
    async def guarded() -> Any:
        try:
            return await asyncio.wait_for(work, GUARD_SECONDS)
        except TimeoutError:
            pytest.fail(f"still waiting after {GUARD_SECONDS:g} s: the batch sat out its upper bound")

    return asyncio.run(guarded())


def test_a_waiting_batch_closes_when_its_usual_company_is_in(fitted: Pipeline) -> None:
    model, scorer = served(fitted)
    batcher = MicroBatcher(max_batch_rows=64, max_wait_ms=HOUR_MS)

    async def scenario() -> None:
        await together(batcher, model, rows(4))  # at rest: scored at once; the call gathered 4
        await together(batcher, model, rows(4, seed=2))  # waits for 4, and 4 came

    finished(scenario())
    assert scorer.calls == [4, 4]


def test_a_lone_request_at_rest_waits_for_nobody(fitted: Pipeline) -> None:
    model, scorer = served(fitted)
    batcher = MicroBatcher(max_wait_ms=HOUR_MS)
    result = finished(batcher.score(model, rows(1)[0]))
    assert isinstance(result, Prediction) and scorer.calls == [1]


def test_a_failing_report_does_not_fail_the_request(fitted: Pipeline) -> None:
    model, _ = served(fitted)

    def broken(*_: Any) -> None:
        raise OSError("disk full")

    result = asyncio.run(MicroBatcher(on_scored=broken).score(model, rows(1)[0]))
    assert isinstance(result, Prediction)
