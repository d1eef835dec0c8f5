"""Adaptive micro-batching: requests that arrive together are scored in one call.

Scoring runs on the event loop's thread, so while one call runs, the requests that arrive
are parsed and queued; when it ends, everything queued for the same model is scored in the
next call (up to `max_batch_rows`). Nothing waits on a timer when the server is idle: a lone
request is scored on the next loop turn. Only when the last call gathered more than one
request (the server is under concurrent load) does a new batch wait up to `max_wait_ms` for
company, which is what lowers the p99 under load instead of raising it at rest.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from looml.serve.model import Batch, Prediction, ServedModel, batch_rows

__all__ = ["MicroBatcher"]


@dataclass
class _Pending:
    model: ServedModel
    batch: Batch
    rows: int
    future: asyncio.Future[Prediction]


@dataclass
class MicroBatcher:
    """Gathers concurrent requests into shared scoring calls."""

    max_batch_rows: int = 256
    max_wait_ms: float = 2.0
    enabled: bool = True
    calls: int = 0  # scoring calls made, for /metrics
    last_batch_requests: int = 0
    _pending: list[_Pending] = field(default_factory=list)
    _scheduled: bool = False

    async def score(self, model: ServedModel, batch: Batch) -> Prediction:
        """Score `batch` with `model`, possibly together with other requests."""
        rows = batch_rows(batch)
        if not self.enabled or rows >= self.max_batch_rows:
            self.calls += 1
            self.last_batch_requests = 1
            return model.predict(batch)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        self._pending.append(_Pending(model, batch, rows, future))
        if not self._scheduled:
            self._scheduled = True
            if self.last_batch_requests > 1 and self.max_wait_ms > 0:
                loop.call_later(self.max_wait_ms / 1000, self._drain)
            else:
                loop.call_soon(self._drain)
        return await future

    def _drain(self) -> None:
        """Score everything pending, in calls of at most `max_batch_rows` rows per model."""
        self._scheduled = False
        pending, self._pending = self._pending, []
        while pending:
            model = pending[0].model
            group, rest, rows = [], [], 0
            for item in pending:
                if item.model is model and (not group or rows + item.rows <= self.max_batch_rows):
                    group.append(item)
                    rows += item.rows
                else:
                    rest.append(item)
            pending = rest
            self._run(model, group)

    def _run(self, model: ServedModel, group: list[_Pending]) -> None:
        self.calls += 1
        self.last_batch_requests = len(group)
        try:
            batch = group[0].batch if len(group) == 1 else _concat([g.batch for g in group], model)
            prediction = model.predict(batch)
        except Exception as exc:
            if len(group) > 1:  # one bad request must not fail the others: score each alone
                for item in group:
                    self._run(model, [item])
                return
            if not group[0].future.done():
                group[0].future.set_exception(exc)
            return
        start = 0
        for item in group:
            end = start + item.rows
            proba = prediction.proba[start:end] if prediction.proba is not None else None
            if not item.future.done():
                item.future.set_result(Prediction(labels=prediction.labels[start:end], proba=proba))
            start = end


def _concat(batches: list[Batch], model: ServedModel) -> Batch:
    """One batch of every row, column by column, for the model's features."""
    out: dict[str, Any] = {}
    for column in model.features:
        parts = [b.get(column) for b in batches]
        if all(isinstance(p, np.ndarray) for p in parts):
            out[column] = np.concatenate(parts)
        else:
            values: list[Any] = []
            for part, b in zip(parts, batches, strict=True):
                values.extend(part if part is not None else [None] * batch_rows(b))
            out[column] = values
    return out
