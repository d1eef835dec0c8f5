"""Batch scoring on a Ray cluster: what `looml predict --executor ray` runs.

    score_on_ray(chunks, cluster, load, settings, merge) -> iterator of (scored, rejected)

The input is read here chunk by chunk, exactly as the local path reads it (so any source
works and the nodes need not see the input file); each chunk goes into the object store and a
Ray task checks and scores it with the same `ChunkScorer` as the local path, the model loaded
once per worker process from the registry (the tracking store must be reachable from the
nodes). At most `2 x CPUs` chunks are in flight, and results are taken oldest first, so the
output is written in input order and the driver holds at most that many chunks: memory per
task is one chunk (`--chunk-rows`), and so is the driver's per task in flight. A chunk's error
(rows that fail without a reject file, an id column missing from a later file) comes back as
the same `DataError` the local path raises.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from looml.errors import LoomlError, Problem
from looml.executors.ray import RayCluster

__all__ = ["score_on_ray"]

_MODELS: dict[tuple[str, str, str], Any] = {}  # in a Ray worker: the loaded version, read once


def _score(load: tuple[str, str, str], settings: dict[str, Any], frame: pl.DataFrame, start: int,
           keys: list[str]) -> tuple[Any, ...]:
    """One chunk in a Ray task: ('ok', scored, rejected, the chunk's counts) or ('error', class,
    problems): an exception's problems travel, so that it is raised as the local path raises it."""
    from looml.batch.chunks import ChunkScorer
    from looml.serve.model import load_model

    if load not in _MODELS:
        _MODELS.clear()
        _MODELS[load] = load_model(*load)
    scoring = ChunkScorer(_MODELS[load], **settings)
    scoring.rows, scoring.keys = start, keys
    try:
        scored, rejected = scoring.chunk(frame)
    except LoomlError as exc:
        return "error", type(exc), exc.problems
    scoring.model = None  # the counts and warnings go back, not the model
    return "ok", scored, rejected, scoring


def score_on_ray(chunks: Iterator[pl.DataFrame], cluster: RayCluster, load: tuple[str, str, str],
                 settings: dict[str, Any],
                 merge: Callable[[Any], None]) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """(scored, rejected) per chunk, in input order; `merge` gets each chunk's `ChunkScorer` (its
    rows, rejected count and warnings) as it is taken. `load` is (tracking URI, model name,
    version); `settings` the `ChunkScorer` arguments but the model."""
    import ray

    task = ray.remote(_score).options(num_cpus=1, max_retries=0)
    in_flight: deque[Any] = deque()
    limit = 2 * cluster.cpus
    start, keys = 0, None
    chunks = iter(chunks)
    exhausted = False
    while True:
        while not exhausted and len(in_flight) < limit:
            frame = next(chunks, None)
            if frame is None:
                exhausted = True
                break
            if keys is None:
                keys = [c for c in settings["id_columns"] if c in frame.columns]
            in_flight.append((start, task.remote(load, settings, frame, start, keys)))
            start += frame.height
        if not in_flight:
            return
        first, ref = in_flight.popleft()
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayError as exc:  # its worker or node was lost: nothing is written
            outcome = ("error", LoomlError, [Problem(
                loc="--executor", value="ray", message=f"the Ray task scoring the rows from {first:,} on "
                f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                fix="run it again (every node needs looml and a view of the tracking store), or "
                    "use --executor local")])
        if outcome[0] == "error":
            for _, other in in_flight:
                ray.cancel(other, force=True)
            raise outcome[1](outcome[2])
        merge(outcome[3])
        yield outcome[1], outcome[2]
