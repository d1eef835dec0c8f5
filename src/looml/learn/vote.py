"""The voting ensemble's members and weights, chosen from the trials' out-of-fold predictions.

    pool(ranked) -> the trials a vote is chosen from
    likely_members(ranked, oof, data, limit, seed) -> (members now, seconds choosing will take)
    choose_vote(candidates, oof, data, limit, seed) -> (members, weights, nested-CV outcome, single)

Greedy forward selection with replacement (Caruana et al., 2004) over a pool of trials whose
out-of-fold predictions were kept (the best few overall and each family's best). It starts
from the best trial and adds, round by round, the member whose inclusion most improves the
primary metric of the averaged predictions, until nothing improves it or `limit` distinct
members are in; how often a member was picked is its weight. No model is fitted to choose
it. Its CV score is nested, so it compares fairly with a single trial's: for each fold,
members and weights are chosen on the other folds' rows and scored on that fold.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import numpy as np

from looml.learn.leaderboard import TrialRow
from looml.learn.metrics import better, metric_of, score, stable
from looml.learn.trial import TrialData, fold_summary

__all__ = ["choose_vote", "likely_members", "pool"]

_POOL_TOP = 10  # the best trials overall whose out-of-fold predictions are kept, besides each family's best
_ROUNDS = 25  # greedy rounds at most (picks, repeats included)
_SELECT_ROWS = 20_000  # rows the members are chosen on; a larger split is sampled down
_GUESS_ROWS = 5_000  # rows of the running guess at the members, made after every trial


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


def choose_vote(candidates: list[TrialRow], oof: dict[int, np.ndarray], data: TrialData, limit: int,
                seed: int) -> tuple[list[TrialRow], list[int], dict[str, Any], float]:
    """Members, weights and the nested-CV outcome of the greedy weighted vote among `candidates`,
    and the nested-CV primary score of picking the best single candidate the same way.

    The leaderboard's best trial was picked on the very rows it is scored on, so its CV score
    flatters it; the vote is compared with that same pick made on the other folds' rows.
    """
    began = time.perf_counter()
    predictions = [oof[r.trial] for r in candidates]
    rng = np.random.default_rng(seed)
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


