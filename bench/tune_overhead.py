"""Tuner overhead: N trials through looml's tuner against the same trials with plain Optuna +
scikit-learn, in the same process run.

* looml:    `looml.learn.tune.tune` with `method: random`, `trials: N`, pruning, warm start
            and the ensemble off (the baseline has none), in-process (no budget, one trial at
            a time: the path a plain spec takes), and again through the process pool
            (`--pool`: a huge `time_budget` forces it), so the pool's start and data transfer
            are measured too.
* baseline: an Optuna study (ask-and-tell is not needed: `study.optimize`) with the very same
            configurations enqueued (the params of looml's leaderboard), the same pipelines
            (looml's preprocessing and estimator, built once per trial), the same
            StratifiedKFold folds, scored with `cross_validate` and the same six scorers.

Both sides use one thread per fit (threadpoolctl and the estimators' n_jobs). looml's trials
do more than the baseline's: each also measures predict latency on 1,000 rows and pickles the
fitted pipeline for its size; that work is part of the overhead measured. Sides alternate
order between repeats; the minimum of each side is compared (the machine is shared).

Usage: .venv/bin/python bench/tune_overhead.py [--trials N] [--rows R] [--repeats K] [--pool]
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.model_selection import cross_validate
from threadpoolctl import threadpool_limits

from looml.learn.metrics import scorers
from looml.learn.trial import candidate_pipeline, fold_indices
from looml.learn.tune import tune
from looml.learn.zoo import make_estimator
from looml.spec import Spec

SEED = 42
FOLDS = 5


def data(rows: int) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    X, y = make_classification(n_samples=rows, n_features=20, n_informative=8, random_state=SEED)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)])
    return frame, np.where(y == 1, "yes", "no").astype(object), dict.fromkeys(frame.columns, "numeric")


def spec(trials: int, candidates: list[str], pool: bool) -> Spec:
    return Spec.model_validate({
        "seed": SEED, "data": {"source": "d.csv", "target": "y"}, "registry": {"model_name": "m"},
        "split": {"folds": FOLDS}, "models": {"candidates": candidates, "n_jobs": 1},
        "tuning": {"method": "random", "trials": trials, "pruning": False, "warm_start": False,
                   "ensemble": "none", "time_budget": 10_000 if pool else None}})


def run_looml(X: pd.DataFrame, y: np.ndarray, features: dict[str, str], the_spec: Spec) -> tuple[float, Any]:
    began = time.perf_counter()
    tuned = tune(X, y, features, the_spec, "classification", "roc_auc")
    return time.perf_counter() - began, tuned


def run_baseline(X: pd.DataFrame, y: np.ndarray, features: dict[str, str], the_spec: Spec,
                 rows: list[Any]) -> tuple[float, list[float]]:
    """Plain Optuna + scikit-learn over the same configurations and folds."""
    began = time.perf_counter()
    folds = fold_indices(y, "classification", FOLDS, SEED)
    scoring = scorers("classification", np.unique(y))
    by_name = {c.name: c for c in the_spec.models.candidates}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=SEED))
    ordered = sorted(rows, key=lambda r: r.trial)
    for row in ordered:
        study.enqueue_trial({"model": row.name, **{f"{row.name}.{k}": v for k, v in row.params.items()}})
    scores: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        row = ordered[trial.number]
        assert trial.suggest_categorical("model", list(by_name)) == row.name
        estimator = make_estimator(by_name[row.name], "classification", row.params, SEED, 1)
        pipeline = candidate_pipeline(features, the_spec, "classification", estimator)
        result = cross_validate(pipeline, X, y, cv=folds, scoring=scoring, n_jobs=1)
        scores.append(float(np.mean(result["test_roc_auc"])))
        return scores[-1]

    study.optimize(objective, n_trials=len(ordered))
    return time.perf_counter() - began, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--candidates", nargs="+", default=["lightgbm", "linear", "decision_tree"])
    parser.add_argument("--pool", action="store_true", help="also time looml through the process pool")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, y, features = data(args.rows)
    inline_spec = spec(args.trials, args.candidates, pool=False)
    times: dict[str, list[float]] = {"looml": [], "baseline": [], "looml_pool": []}
    with threadpool_limits(limits=1):
        _, tuned = run_looml(X, y, features, inline_spec)  # untimed warm-up, and the configurations
        rows = [r for r in tuned.rows if r.state == "complete"]
        for repeat in range(args.repeats):
            sides = ["looml", "baseline"] + (["looml_pool"] if args.pool else [])
            for side in sides if repeat % 2 == 0 else reversed(sides):
                if side == "baseline":
                    seconds, scores = run_baseline(X, y, features, inline_spec, rows)
                    same = np.allclose(sorted(scores), sorted(r.mean["roc_auc"] for r in rows), atol=1e-9)
                    assert same, "the baseline's CV scores differ from looml's: not the same work"
                else:
                    seconds, _ = run_looml(X, y, features, spec(args.trials, args.candidates,
                                                                 pool=side == "looml_pool"))
                times[side].append(seconds)
                print(f"repeat {repeat + 1} {side:>10}: {seconds:7.2f} s", flush=True)
    best = {side: min(t) for side, t in times.items() if t}
    print(f"\n{args.trials} trials, {args.rows:,} rows, {FOLDS} folds, candidates {args.candidates}")
    for side, seconds in best.items():
        ratio = seconds / best["baseline"]
        print(f"{side:>10}: {seconds:7.2f} s (min of {len(times[side])})   ratio {ratio:.3f}")
    ratio = best["looml"] / best["baseline"]
    print(f"target looml / baseline <= 1.10: {'PASS' if ratio <= 1.10 else 'FAIL'} ({ratio:.3f})")


if __name__ == "__main__":
    main()
