"""Train: search the candidates (`tune`), refit the winner on the whole training split as ONE
Pipeline, and report the leaderboard.

Everything learned (imputers, encoders, selection, the model) is fitted inside each CV fold,
so a validation fold never informs the preprocessing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from looml.learn.metrics import primary_metric, scoring_for
from looml.learn.spaces import check_search
from looml.learn.tune import TrialRow, tune
from looml.spec import Spec

__all__ = ["Trained", "train"]


@dataclass(frozen=True)
class Trained:
    """The refit pipeline, the leaderboard (best first) and how the search went."""

    pipeline: Pipeline
    leaderboard: list[dict[str, Any]]
    best: str
    primary_metric: str
    search: dict[str, Any] = field(default_factory=dict)
    template: Pipeline | None = None  # the best configuration unfitted (see `looml.learn.tune.refit`)


def train(X: pd.DataFrame, y: np.ndarray, features: dict[str, str], spec: Spec, task: str,
          on_trial: Callable[[TrialRow], None] | None = None, deadline: float | None = None,
          refit_rows: int = 0, split_keys: np.ndarray | None = None,
          sample_weight: np.ndarray | None = None) -> Trained:
    """Check the search, run it, and refit the best configuration on all of X.

    `split_keys` are the rows' times or groups under `split.by` (the CV folds follow them);
    `sample_weight` the rows' `data.sample_weight`.

    `deadline` (a `time.monotonic()` instant) is when the search and refit must be done; by
    default `tuning.time_budget` seconds from now; `refit_rows` > 0 keeps time in it for one more
    refit of the best configuration on that many rows, later.

    Raises `SpecError` for candidates, spaces or a budget that cannot work, before any trial;
    `DataError` when no trial completes.
    """
    check_search(spec)
    primary = primary_metric(spec.evaluation.primary_metric, task)
    scoring = scoring_for(spec, np.unique(y) if task == "classification" else np.array([]))
    tuned = tune(X, y, features, spec, task, primary, on_trial, deadline=deadline, refit_rows=refit_rows,
                 split_keys=split_keys, sample_weight=sample_weight, scoring=scoring)
    states = Counter(r.state for r in tuned.rows if r.family != "ensemble")
    return Trained(
        pipeline=tuned.pipeline, leaderboard=[r.to_dict() for r in tuned.rows], best=tuned.best.name,
        primary_metric=primary,
        search={"method": tuned.method, "seconds": round(tuned.seconds, 3),
                "trials": sum(states.values()), "folds": tuned.folds,
                "states": dict(sorted(states.items())), "best_trial": tuned.best.trial,
                "time_budget": spec.tuning.time_budget, "seconds_allowed": tuned.allowed,
                "notes": tuned.notes},
        template=tuned.template,
    )
