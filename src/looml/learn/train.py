"""Train: search the candidates (`tune`), refit the winner on the whole training split as ONE
Pipeline, and report the leaderboard.

Everything learned (imputers, encoders, selection, the model) is fitted inside each CV fold,
so a validation fold never informs the preprocessing.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from looml.learn.leaderboard import TrialRow
from looml.learn.metrics import primary_metric, scoring_for
from looml.learn.spaces import check_search
from looml.learn.tune import tune
from looml.spec import Spec

__all__ = ["Trained", "decide_on", "train"]


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
    pipeline, template, decision = decide_on(tuned.pipeline, tuned.template, X, y, spec, task, tuned.folds,
                                             sample_weight)
    return Trained(
        pipeline=pipeline, leaderboard=[r.to_dict() for r in tuned.rows], best=tuned.best.name,
        primary_metric=primary,
        search={"method": tuned.method, "seconds": round(tuned.seconds, 3),
                "trials": sum(states.values()), "folds": tuned.folds,
                "states": dict(sorted(states.items())), "best_trial": tuned.best.trial,
                "time_budget": spec.tuning.time_budget, "seconds_allowed": tuned.allowed,
                "notes": [*tuned.notes, *decision_notes(decision)],
                **({"decision": decision} if decision else {})},
        template=template,
    )


def decide_on(pipeline: Pipeline, template: Pipeline | None, X: pd.DataFrame, y: np.ndarray, spec: Spec,
              task: str, folds: int, sample_weight: np.ndarray | None = None
              ) -> tuple[Pipeline, Pipeline | None, dict[str, Any] | None]:
    """(pipeline, template, decision): with `evaluation.calibration` or `evaluation.threshold`, the
    model step becomes a `DecisionModel` fitted on the training rows after the pipeline's fitted
    feature steps (its out-of-fold predictions use `folds` folds), and the template's model step
    the same, unfitted; the decision it learned (see `decision_of`). Unchanged otherwise."""
    if task != "classification" or template is None:
        return pipeline, template, None
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    from looml.learn.decision import decision_of, wrap_decision
    from looml.learn.ensemble import ENSEMBLES
    from looml.learn.metrics import positive_index
    from looml.learn.rows import takes_sample_weight
    from looml.learn.zoo import threads_for

    classes = np.unique(y)
    positive = (classes[max(positive_index(classes, spec.data.positive_class), 0)] if len(classes) == 2
                else None)
    inner = template.steps[-1][1]
    model = wrap_decision(inner, spec.evaluation, len(classes), _plain(positive), folds, spec.seed)
    if model is inner:
        return pipeline, template, None
    if not hasattr(pipeline, "predict_proba"):
        from looml.errors import Problem, SpecError

        loc = "evaluation.calibration" if spec.evaluation.calibration != "none" else "evaluation.threshold"
        raise SpecError(Problem(loc=loc, value=type(inner).__name__,
                                message="the chosen model gives no class probabilities (predict_proba) to "
                                        "calibrate or threshold",
                                fix="remove the setting, or list only candidates with predict_proba"))
    features = pipeline[:-1]
    weighted = sample_weight is not None and not isinstance(inner, ENSEMBLES) and takes_sample_weight(inner)
    with threadpool_limits(limits=threads_for(len(X), spec.models.n_jobs)), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = clone(model).fit(features.transform(X), y,
                                  **({"sample_weight": sample_weight} if weighted else {}))
    decided = Pipeline([*features.steps, (template.steps[-1][0], fitted)])
    return decided, Pipeline([*template.steps[:-1], (template.steps[-1][0], model)]), decision_of(decided)


def decision_notes(decision: dict[str, Any] | None) -> list[str]:
    """The report's lines on the calibration and the threshold the model learned."""
    if decision is None:
        return []
    notes = []
    losses = decision["log_loss"]
    if losses:
        tried = ", ".join(f"{k} {v:.4f}" for k, v in losses.items())
        asked = decision["calibration_asked"]
        notes.append(f"calibration {decision['calibration']} ({asked} asked; cross-validated log loss of the "
                     f"out-of-fold predictions: {tried})")
    if decision["threshold"] is None and decision["objective"] in ("precision", "recall"):
        floor = decision["min_recall"] or decision["min_precision"]
        other = "recall" if decision["objective"] == "precision" else "precision"
        notes.append(f"no decision threshold: no cut of the out-of-fold predictions keeps {other} >= "
                     f"{floor:g}; the most probable class is predicted")
    if decision["threshold"] is not None:
        costs = decision["objective"] == "costs"
        value = -decision["objective_value"] if costs else decision["objective_value"]
        rule = (f"the least total cost of {decision['costs']}" if costs
                else f"the best {decision['objective']}")
        floor = (f" with recall >= {decision['min_recall']:g}" if decision["min_recall"] else
                 f" with precision >= {decision['min_precision']:g}" if decision["min_precision"] else "")
        notes.append(f"decision threshold {decision['threshold']:.4f} on P({decision['positive_class']}): "
                     f"{rule}{floor} on the out-of-fold predictions ({value:.4g}); "
                     "the holdout metrics and the confusion matrix are at this threshold")
    return notes


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
