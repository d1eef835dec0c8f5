"""An optional ensemble of the top-k trials: soft voting or stacking of their whole pipelines.

It is cross-validated on the same folds as the trials and kept only if it beats the best
single trial there; either way it gets its own leaderboard row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import Pipeline

from looml.executors import JobFailure
from looml.learn.metrics import better
from looml.learn.trial import TrialJob

if TYPE_CHECKING:
    from looml.learn.spaces import Config
    from looml.learn.tune import TrialRow, _Loop

__all__ = ["make_ensemble", "try_ensemble"]

_STACK_FOLDS = 3


def make_ensemble(kind: str, members: list[tuple[str, Pipeline]], task: str, seed: int) -> Pipeline:
    """One Pipeline whose model combines the member pipelines (each with its own preprocessing)."""
    if kind == "voting":
        model: Any = (VotingClassifier(members, voting="soft") if task == "classification"
                      else VotingRegressor(members))
    elif task == "classification":
        model = StackingClassifier(members, final_estimator=LogisticRegression(max_iter=1000,
                                                                               random_state=seed),
                                   cv=_STACK_FOLDS, stack_method="predict_proba")
    else:
        model = StackingRegressor(members, final_estimator=RidgeCV(), cv=_STACK_FOLDS)
    return Pipeline([("model", model)])


def try_ensemble(ranked: list[TrialRow], loop: _Loop, deadline: float | None,
                 ) -> tuple[Config | Callable[[int], Pipeline], list[TrialRow], list[str]]:
    """What to refit (the best trial's config, or a builder of the ensemble), the ensemble's
    leaderboard row if one was scored, and notes for the report."""
    from looml.learn.tune import trial_row

    spec, best = loop.spec, ranked[0]
    kind, k = spec.tuning.ensemble, spec.tuning.ensemble_top_k
    top = [r for r in ranked if r.state == "complete"][:k]
    if kind == "none" or len(top) < 2:
        return loop.configs[best.trial], [], []
    cost = sum(r.fit_seconds for r in top) * (1 if kind == "voting" else _STACK_FOLDS + 1)
    if deadline is not None and time.monotonic() + cost * 1.5 > deadline:
        return loop.configs[best.trial], [], [f"{kind} ensemble skipped: about {cost:.0f} s of CV left no "
                                              "time inside the budget"]

    def build(threads: int) -> Pipeline:
        members = [(f"trial_{r.trial}", loop.pipeline(loop.configs[r.trial], threads)) for r in top]
        return make_ensemble(kind, members, loop.task, spec.seed)

    number = max(r.trial for r in ranked) + 1
    loop.executor.submit(number, TrialJob(build(loop.threads)))
    outcome: dict[str, Any] | None = None
    while outcome is None:
        timeout = None if deadline is None else max(0.0, deadline - loop.refit_seconds() - time.monotonic())
        done = loop.executor.results(timeout)
        if done:
            result = done[0][1]
            failed = isinstance(result, JobFailure)
            outcome = {"state": "failed", "error": result.message} if failed else result
        elif deadline is not None and time.monotonic() >= deadline - loop.refit_seconds():
            loop.executor.cancel(number)
            outcome = {"state": "over budget", "error": "stopped at the time budget"}
    row = trial_row(number, f"{kind}_ensemble", "ensemble", {"members": [r.trial for r in top]}, outcome)
    primary = loop.primary
    if row.state == "complete" and better(primary, row.mean[primary], best.mean[primary]):
        return build, [row], [f"{kind} ensemble of trials {row.params['members']} kept: CV {primary} "
                              f"{row.mean[primary]:.4f} against {best.mean[primary]:.4f}"]
    return loop.configs[best.trial], [row], [f"{kind} ensemble not kept: it did not beat trial {best.trial} "
                                            f"in CV {primary}"]
