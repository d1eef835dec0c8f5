"""The model zoo: default estimators per task, with explicit seeds and thread counts."""

from __future__ import annotations

import os
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge

from looml.errors import Problem, SpecError, did_you_mean
from looml.spec import ModelsSpec

__all__ = ["check_params", "make_estimator", "threads_for"]

SMALL_TABLE_ROWS = 20_000


def _lightgbm(task: str, seed: int, n_jobs: int) -> BaseEstimator:
    import lightgbm

    cls = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor
    defaults = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31, "subsample": 0.8,
                "subsample_freq": 1, "colsample_bytree": 0.8, "verbose": -1, "deterministic": True,
                "force_row_wise": True}
    return cls(**defaults, random_state=seed, n_jobs=n_jobs)


def _defaults(name: str, task: str, seed: int, n_jobs: int) -> tuple[type, dict[str, Any]]:
    classification = task == "classification"
    if name == "linear":
        if classification:
            return LogisticRegression, {"max_iter": 2000, "C": 1.0, "random_state": seed}
        return Ridge, {"alpha": 1.0}
    if name == "random_forest":
        cls = RandomForestClassifier if classification else RandomForestRegressor
        # min_samples_leaf keeps forests on large tables from growing one leaf per row.
        return cls, {"n_estimators": 200, "min_samples_leaf": 2, "max_features": "sqrt",
                     "n_jobs": n_jobs, "random_state": seed}
    cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
    return cls, {"max_iter": 200, "learning_rate": 0.1, "early_stopping": "auto", "random_state": seed}


def threads_for(rows: int, n_jobs: int) -> int:
    """Threads per model fit: one for small tables, else `n_jobs` (-1: every core).

    On small tables OpenMP start-up and spin-waiting cost more than the threads gain, and
    far more when another process holds a core (measured: LightGBM on 240 rows took 28 s
    with two threads on a busy 2-core machine, under 1 s with one).
    """
    if rows < SMALL_TABLE_ROWS:
        return 1
    return (os.cpu_count() or 1) if n_jobs == -1 else max(1, n_jobs)


def make_estimator(name: str, task: str, params: dict[str, Any], seed: int, n_jobs: int,
                   loc: str = "models.candidates") -> BaseEstimator:
    """A fresh, unfitted estimator for a candidate name, with the spec's params on top."""
    if name == "lightgbm":
        estimator = _lightgbm(task, seed, n_jobs)
    else:
        cls, defaults = _defaults(name, task, seed, n_jobs)
        estimator = cls(**defaults)
    valid = estimator.get_params(deep=False)
    unknown = [k for k in params if k not in valid]
    if unknown:
        raise SpecError([
            Problem(loc=f"{loc}.params.{k}", message=f"not a parameter of {type(estimator).__name__}",
                    fix=did_you_mean(k, valid) or f"valid parameters: {', '.join(sorted(valid))}")
            for k in unknown
        ])
    return estimator.set_params(**params)


def check_params(models: ModelsSpec) -> None:
    """Raise one `SpecError` for every candidate param that no variant of its model takes.

    A param valid for only one task (`C` of the logistic, not of the ridge) is checked
    again, against the inferred task, when the candidate is built.
    """
    problems = []
    for i, candidate in enumerate(models.candidates):
        bad: dict[str, list[Problem]] = {}
        for task in ("classification", "regression"):
            try:
                make_estimator(candidate.name, task, candidate.params, seed=0, n_jobs=1,
                               loc=f"models.candidates[{i}]")
            except SpecError as exc:
                for problem in exc.problems:
                    bad.setdefault(problem.loc, []).append(problem)
        for found in bad.values():
            if len(found) == 2:  # wrong for both variants; prefer a variant's "did you mean"
                problems.append(next((p for p in found if p.fix.startswith("did you mean")), found[0]))
    if problems:
        raise SpecError(problems)
