"""An optional ensemble of the best trials: weighted soft voting chosen from out-of-fold
predictions, or stacking.

voting: greedy forward selection with replacement (Caruana et al., 2004) over a pool of
trials whose out-of-fold predictions were kept (the best few overall and each family's best).
It starts from the best trial and adds, round by round, the member whose inclusion most
improves the primary metric of the averaged predictions, until nothing improves it or
`ensemble_top_k` distinct members are in; how often a member was picked is its weight. No
model is fitted to choose it: the members are refit once, at the end. Its CV score is
nested, so it compares fairly with a single trial's: for each fold, members and weights are
chosen on the other folds' rows and scored on that fold.

stacking: the top-k pipelines under a logistic / ridge meta-model, cross-validated on the
trials' folds (one more job in the pool).

Either is kept only if it beats the best single trial in CV; either way it gets its own
leaderboard row.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import Pipeline

from looml.executors import JobFailure
from looml.learn.features import SchemaCoercer
from looml.learn.metrics import better, metric_of, score, stable
from looml.learn.trial import TrialData, TrialJob, fold_summary

if TYPE_CHECKING:
    from looml.learn.spaces import Config
    from looml.learn.tune import TrialRow, _Loop

__all__ = ["likely_members", "make_ensemble", "pool", "try_ensemble"]

_STACK_FOLDS = 3
_POOL_TOP = 10  # the best trials overall whose out-of-fold predictions are kept, besides each family's best
_ROUNDS = 25  # greedy rounds at most (picks, repeats included)
_SELECT_ROWS = 20_000  # rows the members are chosen on; a larger split is sampled down
_GUESS_ROWS = 5_000  # rows of the running guess at the members, made after every trial


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


def pool(ranked: list[TrialRow]) -> list[TrialRow]:
    """The trials a voting ensemble is chosen from, best first: the top few, and each family's best."""
    complete = [r for r in ranked if r.state == "complete"]
    families: set[str] = set()
    out = []
    for i, row in enumerate(complete):
        if i < _POOL_TOP or row.family not in families:
            out.append(row)
        families.add(row.family)
    return out


def likely_members(ranked: list[TrialRow], oof: dict[int, np.ndarray], data: TrialData, limit: int,
                   seed: int) -> tuple[list[TrialRow], float]:
    """The members a vote would pick now (one greedy pass on a sample), which the search must
    leave time to refit, and the seconds choosing the vote at the end will take (scaled from
    this pass: more rows, and a pass per fold besides the final one)."""
    candidates = [r for r in pool(ranked) if r.trial in oof]
    if len(candidates) < 2:
        return candidates[:1], 0.0
    began = time.perf_counter()
    rows = _sample(data.scored, np.random.default_rng(seed), _GUESS_ROWS)
    members = [candidates[i] for i in _greedy([oof[r.trial] for r in candidates], rows, data, limit)]
    scale = min(len(data.y), _SELECT_ROWS) / len(rows) * (len(data.folds) + 1)
    return members, (time.perf_counter() - began) * scale


def try_ensemble(ranked: list[TrialRow], loop: _Loop, deadline: float | None,
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
        members, weights, outcome, single = _vote(candidates, loop)
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
             loop: _Loop) -> Callable[[int], Pipeline]:
    def build(threads: int) -> Pipeline:
        pipelines = [(f"trial_{r.trial}", loop.pipeline(loop.configs[r.trial], threads)) for r in members]
        return make_ensemble(kind, pipelines, loop.features, loop.task, loop.spec.seed, weights)

    return build


def _row(number: int, kind: str, members: list[TrialRow], weights: list[int] | None,
         outcome: dict[str, Any]) -> TrialRow:
    from looml.learn.tune import trial_row

    params: dict[str, Any] = {"members": [r.trial for r in members]}
    if weights is not None:
        params["weights"] = weights
    return trial_row(number, f"{kind}_ensemble", "ensemble", params, outcome)


def _vote(candidates: list[TrialRow], loop: _Loop,
          ) -> tuple[list[TrialRow], list[int], dict[str, Any], float]:
    """Members, weights and the nested-CV outcome of the greedy weighted vote among `candidates`,
    and the nested-CV primary score of picking the best single candidate the same way.

    The leaderboard's best trial was picked on the very rows it is scored on, so its CV score
    flatters it; the vote is compared with that same pick made on the other folds' rows.
    """
    began = time.perf_counter()
    data = loop.data
    predictions = [loop.oof[r.trial] for r in candidates]
    limit = loop.spec.tuning.ensemble_top_k
    rng = np.random.default_rng(loop.spec.seed)
    fold_scores, single_scores = [], []
    scored = data.scored  # rows with out-of-fold predictions
    for train, test in data.folds:
        rows = _sample(np.intersect1d(train, scored), rng)
        if not len(rows):  # forward-chaining: the first fold's past has no out-of-fold predictions
            continue
        fold_scores.append(_score_blend(predictions, _greedy(predictions, rows, data, limit), test, data))
        single = _greedy(predictions, rows, data, 1)
        single_scores.append(_score_blend(predictions, single, test, data)[data.primary])
    counts = _greedy(predictions, _sample(scored, rng), data, limit)
    members = [candidates[i] for i in counts]
    mean, std = fold_summary(fold_scores)
    return members, list(counts.values()), {
        "state": "complete", "seconds": time.perf_counter() - began, "mean": mean, "std": std,
        "fold_fit_seconds": sum(r.timings.get("fold_fit_seconds", 0.0) for r in members),
        "predict_ms_per_1000": sum(r.timings.get("predict_ms_per_1000", 0.0) for r in members),
        "size_bytes": sum(r.size_bytes for r in members)}, stable(float(np.mean(single_scores)))


def _sample(rows: np.ndarray, rng: np.random.Generator, limit: int = _SELECT_ROWS) -> np.ndarray:
    return rows if len(rows) <= limit else np.sort(rng.choice(rows, limit, replace=False))


def _greedy(predictions: list[np.ndarray], rows: np.ndarray, data: TrialData, limit: int) -> Counter[int]:
    """Pick counts per candidate by forward selection with replacement on `rows`, at most `limit`
    distinct members: every round adds the best pick even when it makes the blend worse (a
    repeat is how a member earns a larger weight), and the best blend seen is returned."""
    y = data.y[rows]
    weights = None if data.sample_weight is None else data.sample_weight[rows]
    lower = data.scoring.lower_is_better(data.primary)
    parts = [p[rows] for p in predictions]
    counts: Counter[int] = Counter()
    total: np.ndarray | float = 0.0
    best: tuple[float, Counter[int]] | None = None
    for picks in range(1, (_ROUNDS if limit > 1 else 1) + 1):
        allowed = list(counts) if len(counts) >= limit else range(len(parts))
        value, pick = math.nan, -1
        for i in allowed:
            candidate = metric_of(data.primary, data.task, data.classes, y, (total + parts[i]) / picks,
                                  weights, data.scoring)
            if pick < 0 or math.isnan(value) or better(data.primary, candidate, value, lower):
                value, pick = candidate, i
        counts[pick] += 1
        total = total + parts[pick]
        if best is None or math.isnan(best[0]) or better(data.primary, value, best[0], lower):
            best = (value, Counter(counts))
    assert best is not None
    divisor = math.gcd(*best[1].values())
    return Counter({i: n // divisor for i, n in best[1].items()})


def _score_blend(predictions: list[np.ndarray], counts: Counter[int], rows: np.ndarray,
                 data: TrialData) -> dict[str, float]:
    blend = sum(predictions[i][rows] * n for i, n in counts.items()) / sum(counts.values())
    weights = None if data.sample_weight is None else data.sample_weight[rows]
    if data.task == "regression":
        return score(data.task, data.classes, data.y[rows], blend, None, weights, data.scoring)
    labels = data.classes[np.argmax(blend, axis=1)]
    return score(data.task, data.classes, data.y[rows], labels, blend, weights, data.scoring)


def _cross_validate(loop: _Loop, number: int, pipeline: Pipeline, deadline: float | None) -> dict[str, Any]:
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
