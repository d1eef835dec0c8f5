"""Tune: one search across candidates, their params and preprocessing choices, under budgets.

    tune(X, y, features, spec, task, primary) -> Tuned
    refit(template, X, y, spec) -> the winner fitted on other rows

One Optuna study (ask-and-tell) covers every candidate: the model is a categorical
parameter and each family's params are conditional on it (`looml.learn.search`).

Trials run through an executor (`looml.executors`): in this process when nothing needs
stopping, else in a persistent process pool, or on a Ray cluster. With a `time_budget` the
search stops early enough to refit the best configuration inside the budget
(`looml.learn.budget`), and a trial still running then is killed and discarded: a trial is
scored on all folds or not at all. The time budget is the one source of nondeterminism.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from looml.errors import DataError, Problem
from looml.executors import Executor
from looml.executors.inline import InlineExecutor
from looml.executors.local import LocalExecutor
from looml.executors.ray import RayCluster, RayExecutor, connect
from looml.learn.budget import check_budget, default_folds
from looml.learn.ensemble import ENSEMBLES, try_ensemble
from looml.learn.leaderboard import TrialRow, rank
from looml.learn.metrics import Scoring
from looml.learn.search import Loop, Search, refit_lanes
from looml.learn.spaces import Config
from looml.learn.trial import TrialData, fold_indices, release_fold_features, run_trial
from looml.learn.zoo import ROW_LIMIT, missing_extra, threads_for
from looml.spec import Spec

__all__ = ["Tuned", "parallelism", "refit", "tune"]

_PRELOAD = ("looml.learn.trial", "looml.learn.zoo", "lightgbm", "xgboost")


@dataclass(frozen=True)
class Tuned:
    """What tuning produced: the ranked leaderboard, the refit pipeline and notes."""

    rows: list[TrialRow]
    best: TrialRow
    pipeline: Pipeline
    method: str
    seconds: float
    folds: int
    notes: list[str] = field(default_factory=list)
    allowed: float | None = None  # seconds the budget left for the search and refit
    template: Pipeline | None = None  # the winner unfitted: `refit` fits it on other rows


def parallelism(rows: int, threads_per_fit: int, trials: int, cores: int | None = None) -> tuple[int, int]:
    """(parallel trials, threads per fit) with their product at most the machine's cores.

    `threads_per_fit` is `models.n_jobs` (-1: all cores; one thread on small tables, see
    `threads_for`); `trials` is `tuning.n_jobs`, capped at the cores.
    """
    cores = cores or os.cpu_count() or 1
    workers = max(1, min(trials, cores))
    return workers, max(1, min(threads_for(rows, threads_per_fit, cores), cores // workers))


def _parallelism(rows: int, spec: Spec, cluster: RayCluster | None) -> tuple[int, int]:
    """`parallelism` on this machine's cores, or on a Ray cluster's: its CPUs for trials at once,
    and threads per trial at most what one node has (a task never spans nodes)."""
    if cluster is None:
        return parallelism(rows, spec.models.n_jobs, spec.tuning.n_jobs)
    workers, threads = parallelism(rows, spec.models.n_jobs, spec.tuning.n_jobs, cluster.cpus)
    return workers, min(threads, cluster.node_cpus)


def _placement(executor: Executor) -> str:
    """Where a Ray search ran its trials (a note for the report); empty for a local one."""
    if not isinstance(executor, RayExecutor):
        return ""
    counts: dict[str, int] = {}
    for node in executor.placed.values():
        counts[node] = counts.get(node, 0) + 1
    nodes = ", ".join(f"{n} on node {node[:8]}" for node, n in sorted(counts.items()))
    return (f"{sum(counts.values())} trials ran as Ray tasks on {len(counts)} of the "
            f"{executor.cluster.nodes} nodes at {executor.cluster.address} ({nodes})")


def tune(X: pd.DataFrame, y: np.ndarray, features: dict[str, str], spec: Spec, task: str,
         primary: str, on_trial: Callable[[TrialRow], None] | None = None,
         deadline: float | None = None, refit_rows: int = 0, split_keys: np.ndarray | None = None,
         sample_weight: np.ndarray | None = None, scoring: Scoring | None = None) -> Tuned:
    """Search, rank, optionally ensemble, and refit the winner on all of X; see the module docstring.

    `split_keys` are the rows' times or groups when `split.by` is set (see
    `looml.data.split.split_keys`); `sample_weight` weights the rows in fitting (where the model
    takes it) and scoring; `scoring` has the binary positive class and the custom metrics.

    With `tuning.time_budget`, everything here ends by `deadline` (a `time.monotonic()` instant;
    default: the budget from now). `refit_rows` > 0 says that the winner will be refit once more
    later, on that many rows (see `refit`), inside the same deadline. Raises `SpecError` for a
    budget too small for one trial, `DataError` when no trial completes.
    """
    started = time.monotonic()
    tuning = spec.tuning
    if not tuning.time_budget:
        deadline = None
    elif deadline is None:
        deadline = started + tuning.time_budget
    cluster = connect(tuning.executor.resolved_address) if tuning.executor.kind == "ray" else None
    workers, threads = _parallelism(len(X), spec, cluster)
    if deadline:
        folds, estimate, folds_note = check_budget(X, y, features, spec, task, workers,
                                                   seconds=deadline - time.monotonic())
    else:
        (folds, folds_note), estimate = default_folds(len(X), spec), 0.0
    rows: list[TrialRow] = []
    candidates = {}
    for i, c in enumerate(spec.models.candidates):
        extra = missing_extra(c)
        if extra:  # only a default candidate gets here: a listed one failed `check_search`
            rows.append(TrialRow(trial=-1, name=c.name, family=c.family, params={}, state="skipped",
                                 error=f"skipped: not installed (pip install 'looml[{extra}]')"))
        elif c.family in ("svm", "knn") and len(X) > ROW_LIMIT and not c.allow_large:
            rows.append(TrialRow(trial=-1, name=c.name, family=c.family, params={}, state="skipped",
                                 error=f"skipped: {len(X):,} rows > {ROW_LIMIT:,} (set allow_large: true "
                                       "on the candidate to try it)"))
        else:
            candidates[i] = c
    if not candidates:
        raise DataError([Problem(loc="models.candidates", message=r.error, fix="add a model that scales")
                         for r in rows])
    scoring = scoring or Scoring()
    lower = scoring.lower_is_better(primary)
    search = Search(spec, task, candidates, primary, lower)
    classes = np.unique(y) if task == "classification" else np.array([])
    by = spec.split.by
    cv = fold_indices(y, task, folds, spec.seed, by.kind if by else None, split_keys, by.column if by else "")
    data = TrialData(X, y, cv, task, classes, primary, threads, sample_weight, scoring)
    limit_mb = (tuning.memory_limit_mb or _available_mb() * 0.8) / workers
    width = _width(X, y, features, spec, task)
    running: dict[int, tuple[Any, Config]] = {}

    def on_message(key: int, question: tuple[int, float]) -> bool:
        return search.report(running[key][0], *question)

    inline = deadline is None and workers == 1 and cluster is None  # nothing to stop, nothing parallel
    executor: Executor = (RayExecutor(run_trial, data, on_message, workers, threads, cluster) if cluster
                          else InlineExecutor(run_trial, data, on_message) if inline
                          else LocalExecutor(run_trial, data, on_message, workers, _PRELOAD))
    loop = Loop(search, executor, spec, data, features, running, rows, on_trial)
    loop.refit_factor += refit_rows / len(X)  # the later refit is planned with this one
    try:
        loop.run(deadline, estimate, limit_mb, width, len(X), len(classes))
        ranked = rank(rows, primary, lower)
        if not ranked or ranked[0].state != "complete":
            raise DataError(_nothing_finished(rows, spec))
        chosen, extra, notes = try_ensemble(ranked, loop, deadline)
    finally:
        executor.close()
        release_fold_features()
    ranked = rank(rows + extra, primary, lower)
    if callable(chosen):  # a kept ensemble ranks first (it won the nested comparison; see ensemble.py)
        ranked = [*extra, *(r for r in ranked if r not in extra)]
    refit_threads = threads_for(len(X), spec.models.n_jobs)
    template = chosen(refit_threads) if callable(chosen) else loop.pipeline(chosen, refit_threads)
    pipeline = refit(template, X, y, spec, sample_weight)
    return Tuned(rows=ranked, best=ranked[0], pipeline=pipeline, method=search.method,
                 seconds=time.monotonic() - started, folds=len(data.folds),
                 notes=[n for n in (folds_note, *notes, _placement(executor)) if n],
                 allowed=None if deadline is None else round(deadline - started, 3),
                 template=clone(template))


def _nothing_finished(rows: list[TrialRow], spec: Spec) -> list[Problem]:
    if any(r.state == "over budget" for r in rows) or not rows:
        budget = spec.tuning.time_budget or 0
        return [Problem(loc="tuning.time_budget", value=budget,
                        message="no trial finished within the time budget",
                        fix=f"raise it (e.g. time_budget: {math.ceil(budget * 3)}) or list a faster "
                            "candidate first")]
    return [Problem(loc=f"models.candidates.{r.name}", message=f"trial {r.trial} {r.state}: {r.error}",
                    fix="check the data and the candidate's params and space") for r in rows[:20]]


def refit(template: Pipeline, X: pd.DataFrame, y: np.ndarray, spec: Spec,
          sample_weight: np.ndarray | None = None) -> Pipeline:
    """Fit a fresh copy of the winner's unfitted pipeline on X, with every thread the machine
    gives one fit; an ensemble's members side by side in threads when one fit uses fewer than
    the cores. `sample_weight` goes to the model step where it takes it."""
    from joblib import parallel_config

    from looml.learn.rows import finalize, takes_sample_weight

    threads = threads_for(len(X), spec.models.n_jobs)
    pipeline = clone(template)
    model = pipeline.named_steps["model"]
    lanes = refit_lanes(len(X), spec) if isinstance(model, ENSEMBLES) else 1
    if lanes > 1:
        model.set_params(n_jobs=lanes)
    with threadpool_limits(limits=threads), parallel_config(backend="threading"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = (sample_weight is not None and not isinstance(model, ENSEMBLES)
                    and takes_sample_weight(model))
        fitted = pipeline.fit(X, y, **({"model__sample_weight": sample_weight} if weighted else {}))
    if lanes > 1:
        fitted.named_steps["model"].set_params(n_jobs=None)  # the threads were for this fit only
    return finalize(fitted)


def _available_mb() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**20


def _width(X: pd.DataFrame, y: np.ndarray, features: dict[str, str], spec: Spec, task: str) -> int:
    """Columns after the feature steps, from a fit on a few rows."""
    from looml.learn.features import build_preprocessor

    head = min(len(X), 200)
    steps = build_preprocessor(features, spec.preprocessing, spec.features, task, spec.seed)
    try:
        return int(steps.fit_transform(X.iloc[:head], y[:head]).shape[1])
    except (ValueError, TypeError):
        return X.shape[1]
