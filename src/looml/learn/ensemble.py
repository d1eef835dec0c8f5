"""An optional ensemble of the best trials: a weighted soft vote chosen from out-of-fold
predictions (`looml.learn.vote`), or stacking.

voting: no model is fitted to choose it; the members are refit once, at the end, and its
nested CV score compares fairly with a single trial's picked the same way.

stacking: the top-k pipelines under a logistic / ridge meta-model, cross-validated on the
trials' folds (one more job in the pool).

Either is kept only if it beats the best single trial in CV; either way it gets its own
leaderboard row.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import Pipeline

from looml.executors import JobFailure
from looml.learn.features import SchemaCoercer
from looml.learn.leaderboard import TrialRow, trial_row
from looml.learn.metrics import better
from looml.learn.trial import TrialJob
from looml.learn.vote import choose_vote, pool

if TYPE_CHECKING:
    from looml.learn.search import Loop
    from looml.learn.spaces import Config

__all__ = ["ENSEMBLES", "make_ensemble", "try_ensemble"]

ENSEMBLES = (VotingClassifier, VotingRegressor, StackingClassifier, StackingRegressor)
_STACK_FOLDS = 3


def make_ensemble(kind: str, members: list[tuple[str, Pipeline]], features: dict[str, str], task: str,
                  seed: int, weights: list[int] | None = None) -> Pipeline:
    """One Pipeline whose model combines the member pipelines (each with its own preprocessing).

    Like every looml pipeline it starts with the `SchemaCoercer` of the feature columns: the
    server and batch scoring read the input columns from the first step.
    """
    if kind == "voting":
        model: Any = (VotingClassifier(members, voting="soft", weights=weights) if task == "classification"
                      else VotingRegressor(members, weights=weights))
    elif task == "classification":
        model = StackingClassifier(members, final_estimator=LogisticRegression(max_iter=1000,
                                                                               random_state=seed),
                                   cv=_STACK_FOLDS, stack_method="predict_proba")
    else:
        model = StackingRegressor(members, final_estimator=RidgeCV(), cv=_STACK_FOLDS)
    return Pipeline([("coerce", SchemaCoercer(columns=dict(features))), ("model", model)])


def try_ensemble(ranked: list[TrialRow], loop: Loop, deadline: float | None,
                 ) -> tuple[Config | Callable[[int], Pipeline], list[TrialRow], list[str]]:
    """What to refit (the best trial's config, or a builder of the ensemble), the ensemble's
    leaderboard row if one was scored, and notes for the report."""
    kind = loop.spec.tuning.resolved_ensemble
    best = ranked[0]
    if kind == "none" or len([r for r in ranked if r.state == "complete"]) < 2:
        return loop.configs[best.trial], [], []
    if loop.data.sample_weight is not None:
        return loop.configs[best.trial], [], [f"{kind} ensemble skipped: its member pipelines cannot be "
                                              "fitted with data.sample_weight"]
    number = max(r.trial for r in ranked) + 1
    if kind == "voting":
        candidates = [r for r in pool(ranked) if r.trial in loop.oof]
        if len(candidates) < 2:
            return loop.configs[best.trial], [], ["voting ensemble skipped: fewer than two trials have "
                                                  "out-of-fold predictions"]
        members, weights, outcome, single = choose_vote(candidates, loop.oof, loop.data,
                                                        loop.spec.tuning.ensemble_top_k, loop.spec.seed)
    else:
        members = [r for r in ranked if r.state == "complete"][:loop.spec.tuning.ensemble_top_k]
        weights = None
        cost = sum(r.fit_seconds for r in members) * (_STACK_FOLDS + 1)
        if deadline is not None and time.monotonic() + cost * 1.5 > deadline:
            return loop.configs[best.trial], [], [f"stacking ensemble skipped: about {cost:.0f} s of CV left "
                                                  "no time inside the budget"]
        outcome = _cross_validate(loop, number, _builder(kind, members, None, loop)(loop.threads), deadline)
        single = best.mean.get(loop.primary, math.nan)

    row = _row(number, kind, members, weights, outcome)
    primary = loop.primary
    if row.state != "complete":
        return loop.configs[best.trial], [row], [f"{kind} ensemble not kept: {row.error}"]
    if len(members) < 2:
        return loop.configs[best.trial], [row], [f"{kind} ensemble not kept: the selection kept trial "
                                                f"{members[0].trial} alone"]
    against = (f"{single:.4f} for picking the best single trial the same way" if kind == "voting"
               else f"{single:.4f} for trial {best.trial}")
    if not better(primary, row.mean[primary], single, loop.data.scoring.lower_is_better(primary)):
        return loop.configs[best.trial], [row], [f"{kind} ensemble not kept: CV {primary} "
                                                f"{row.mean[primary]:.4f} against {against}"]
    refit = loop.refit_seconds(members)
    if deadline is not None and time.monotonic() + refit > deadline:
        return loop.configs[best.trial], [row], [f"{kind} ensemble not kept: refitting its members takes "
                                                f"about {refit:.0f} s, more than the budget has left"]
    return _builder(kind, members, weights, loop), [row], [
        f"{kind} ensemble of trials {row.params['members']} kept: CV {primary} {row.mean[primary]:.4f} "
        f"against {against}"]


def _builder(kind: str, members: list[TrialRow], weights: list[int] | None,
             loop: Loop) -> Callable[[int], Pipeline]:
    def build(threads: int) -> Pipeline:
        pipelines = [(f"trial_{r.trial}", loop.pipeline(loop.configs[r.trial], threads)) for r in members]
        return make_ensemble(kind, pipelines, loop.features, loop.task, loop.spec.seed, weights)

    return build


def _row(number: int, kind: str, members: list[TrialRow], weights: list[int] | None,
         outcome: dict[str, Any]) -> TrialRow:
    params: dict[str, Any] = {"members": [r.trial for r in members]}
    if weights is not None:
        params["weights"] = weights
    return trial_row(number, f"{kind}_ensemble", "ensemble", params, outcome)


def _cross_validate(loop: Loop, number: int, pipeline: Pipeline, deadline: float | None) -> dict[str, Any]:
    """Score a pipeline on the trials' folds in the pool, stopped at the budget's refit reserve."""
    loop.executor.submit(number, TrialJob(pipeline))
    while True:
        timeout = None if deadline is None else max(0.0, deadline - loop.refit_seconds() - time.monotonic())
        done = loop.executor.results(timeout)
        if done:
            result = done[0][1]
            return {"state": "failed", "error": result.message} if isinstance(result, JobFailure) else result
        if deadline is not None and time.monotonic() >= deadline - loop.refit_seconds():
            loop.executor.cancel(number)
            return {"state": "over budget", "error": "stopped at the time budget"}
