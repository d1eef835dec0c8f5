"""Train: cross-validate each candidate (preprocessing fitted inside each fold), pick the
best by the primary metric, and refit it on the whole training split as ONE Pipeline."""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline

from looml.errors import DataError, Problem
from looml.learn.metrics import better, scorers, stable

__all__ = ["CandidateScore", "cross_validate_candidates", "fit_best"]


@dataclass(frozen=True)
class CandidateScore:
    """One leaderboard row: CV mean and std of every metric, or why the candidate failed."""

    name: str
    params: dict[str, Any]
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)


def cross_validate_candidates(
    candidates: dict[str, Pipeline], X: pd.DataFrame, y: np.ndarray, task: str, folds: int,
    seed: int, primary: str,
) -> list[CandidateScore]:
    """Score each candidate pipeline with k-fold CV; return the leaderboard, best first.

    Everything learned (imputers, encoders, model) is refitted inside each fold by
    `cross_validate`, so the validation fold never informs the preprocessing.
    """
    classes = np.unique(y) if task == "classification" else np.array([])
    splitter = (StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
                if task == "classification" else KFold(n_splits=folds, shuffle=True, random_state=seed))
    scoring = scorers(task, classes)
    rows = []
    for name, pipeline in candidates.items():
        started = time.perf_counter()
        params = {k: v for k, v in pipeline.named_steps["model"].get_params(deep=False).items()
                  if _jsonable(v)}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                result = cross_validate(pipeline, X, y, cv=splitter, scoring=scoring, n_jobs=1,
                                        error_score="raise")
        except (ValueError, TypeError, ArithmeticError, MemoryError) as exc:
            rows.append(CandidateScore(name=name, params=params, error=f"{type(exc).__name__}: {exc}",
                                       fit_seconds=time.perf_counter() - started))
            continue
        rows.append(CandidateScore(
            name=name, params=params,
            mean={m: stable(np.mean(result[f"test_{m}"])) for m in scoring},
            std={m: stable(np.std(result[f"test_{m}"])) for m in scoring},
            fit_seconds=time.perf_counter() - started,
        ))
    ok = [r for r in rows if not r.error]
    if not ok:
        raise DataError([Problem(loc=f"models.candidates.{r.name}", message=f"training failed: {r.error}",
                                 fix="check the data and the candidate's params") for r in rows])
    # A candidate whose primary score is undefined (NaN) cannot win: it ranks after the rest.
    defined = [r for r in ok if r.mean[primary] == r.mean[primary]]
    return _rank(defined, primary) + [r for r in ok if r not in defined] + [r for r in rows if r.error]


def _rank(rows: list[CandidateScore], primary: str) -> list[CandidateScore]:
    ranked: list[CandidateScore] = []
    for row in rows:  # a stable insertion sort keeps candidate order on ties
        i = 0
        while i < len(ranked) and not better(primary, row.mean[primary], ranked[i].mean[primary]):
            i += 1
        ranked.insert(i, row)
    return ranked


def fit_best(candidate: Pipeline, X: pd.DataFrame, y: np.ndarray) -> Pipeline:
    """Refit a fresh copy of the winning candidate on the whole training split."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clone(candidate).fit(X, y)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
