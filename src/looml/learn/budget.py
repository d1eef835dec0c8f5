"""What a search can afford: the folds and the first estimate of a trial under a time budget,
and a fit's memory.

    check_budget(X, y, features, spec, task) -> (folds, seconds per trial, note)
    default_folds(rows, spec) -> (folds, note)
    estimate_mb(family, params, rows, width, n_classes) -> MB

A fit's time is measured, not guessed: two small-sample fits of the first candidate give a
fixed plus per-row cost (`_fit_cost`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from looml.errors import Problem, SpecError
from looml.learn.trial import candidate_pipeline
from looml.learn.zoo import make_estimator
from looml.spec import Spec

__all__ = ["REFIT_MARGIN", "check_budget", "default_folds", "estimate_mb"]

REFIT_MARGIN = 1.3  # the refit on all training rows, relative to one fold's fit scaled by rows
_POOL_START_SECONDS = 1.5  # fork server + workers with the preloaded modules, measured here: 0.6-1.2 s
_ESTIMATE_ROWS = (2_000, 20_000)  # sample sizes of the fits that estimate one trial
_SCORE_MARGIN = 1.3  # a fold's fit, plus predicting and scoring its validation rows
_MIN_TRIALS = 8  # trials a time budget should hold before the default folds are lowered
_FEWER_FOLDS_ROWS = 10_000  # training rows from which the default folds are 3 without a budget


def estimate_mb(family: str, params: dict[str, Any], rows: int, width: int, n_classes: int) -> float:
    """A coarse peak-memory estimate of one fit: the data's copies plus the family's model.

    Forests: trees x nodes (about 2 x rows / min_samples_leaf, capped by max_depth) x node
    size; kNN keeps its training rows; the rest are dominated by the data.
    """
    estimate = rows * max(width, 1) * 8 * 4.0
    if family in ("random_forest", "extra_trees", "decision_tree"):
        trees = int(params.get("n_estimators", 100)) if family != "decision_tree" else 1
        nodes = 2.0 * rows / max(1, int(params.get("min_samples_leaf", 1)))
        if params.get("max_depth"):
            nodes = min(nodes, 2.0 ** (int(params["max_depth"]) + 1))
        estimate += trees * nodes * (64 + 8 * max(1, n_classes))
    elif family == "knn":
        estimate += rows * max(width, 1) * 8 * 2.0
    return estimate / 2**20


def check_budget(X: pd.DataFrame, y: np.ndarray, features: dict[str, str], spec: Spec, task: str,
                 workers: int = 1, seconds: float | None = None) -> tuple[int, float, str]:
    """(CV folds, seconds one trial of the first candidate takes, a note): the estimate from two
    small-sample fits; a `SpecError` suggesting a budget when `tuning.time_budget` cannot finish
    one trial and the refit.

    A fit's time is taken as fixed + per-row cost, from fits on 2,000 and 20,000 rows (a
    single small fit is mostly fixed cost, and scaling it by rows overestimates many times).
    Under a time budget with `split.folds` left at its default, the folds go down (to 2 at
    least) until the budget holds `_MIN_TRIALS` trials: on large tables a few configurations
    scored on fewer folds beat one scored on five. A `split.folds` the spec sets is kept.
    """
    budget, folds = spec.tuning.time_budget, spec.split.folds
    began = time.monotonic()
    candidate = spec.models.candidates[0]
    cost = _fit_cost(X, y, features, spec, task)
    if cost is None:
        return folds, 0.0, ""  # the sample could not be fitted (a class too rare); the trial will say why

    def plan(k: int) -> tuple[float, float]:  # (one k-fold trial, the refit)
        trial = cost(len(X) * (k - 1) // k) * k * _SCORE_MARGIN
        return trial, cost(len(X)) * REFIT_MARGIN

    # The search's own share of the budget: what the run left for it, less this estimate.
    available = None if budget is None else (
        (budget if seconds is None else seconds) - (time.monotonic() - began))
    note = ""
    if available is not None and "folds" not in spec.split.model_fields_set:
        chosen = next((k for k in range(folds, 1, -1)
                       if plan(k)[0] * _MIN_TRIALS / workers + plan(k)[1] + _POOL_START_SECONDS <= available),
                      2)
        if chosen < folds:
            note = (f"{chosen}-fold CV instead of {folds}: a {folds}-fold trial of {candidate.name} on "
                    f"{len(X):,} rows takes about {plan(folds)[0]:.0f} s, too long for {_MIN_TRIALS} trials "
                    f"in the {budget:g} s budget (set split.folds to keep {folds})")
            folds = chosen
    trial, refit = plan(folds)
    needed = trial + refit + _POOL_START_SECONDS
    if available is not None and available < needed:
        assert budget is not None
        spent = budget - available  # the run's other stages and this estimate
        raise SpecError(Problem(
            loc="tuning.time_budget", value=budget,
            message=f"too small to finish one trial: one {folds}-fold trial of {candidate.name} on "
                    f"{len(X):,} rows takes about {trial:.1f} s, and the refit {refit:.1f} s more"
                    + (f", after {spent:.0f} s for the other stages of the run" if spent >= 1 else ""),
            fix=f"use time_budget: {math.ceil(max((needed + spent) * 3, needed + spent + 5))} or more "
                "(or list a faster candidate first)"))
    return folds, trial, note


def default_folds(rows: int, spec: Spec) -> tuple[int, str]:
    """Without a budget: the spec's folds, or 3 rather than the default 5 on large tables, where
    each fold's estimate is already tight and two more fits per candidate cost minutes."""
    folds = spec.split.folds
    if "folds" in spec.split.model_fields_set or rows < _FEWER_FOLDS_ROWS or folds <= 3:
        return folds, ""
    return 3, (f"3-fold CV instead of {folds} on {rows:,} training rows (set split.folds to keep "
               f"{folds})")


def _fit_cost(X: pd.DataFrame, y: np.ndarray, features: dict[str, str], spec: Spec,
              task: str) -> Callable[[int], float] | None:
    """Seconds one fit of the first candidate takes on n rows (one thread), from two sample fits."""
    sizes = sorted({min(len(X) // 2, n) for n in _ESTIMATE_ROWS})
    rng = np.random.default_rng(spec.seed)
    candidate = spec.models.candidates[0]
    times = []
    for size in sizes:
        sample = np.sort(rng.choice(len(X), size=size, replace=False))
        pipeline = candidate_pipeline(features, spec, task, make_estimator(candidate, task, {}, spec.seed, 1))
        began = time.perf_counter()
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                pipeline.fit(X.iloc[sample], y[sample])
            except ValueError:
                return None
        times.append(time.perf_counter() - began)
    per_row = max(0.0, (times[-1] - times[0]) / (sizes[-1] - sizes[0])) if len(sizes) > 1 else 0.0
    return lambda rows: times[-1] + per_row * (rows - sizes[-1])


