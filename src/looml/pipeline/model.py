"""The model's steps: train (the search) on the training split, refit on every row, evaluate on the
holdout, and the drift reference; each reads its rows from the snapshot and the split's indices."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import polars as pl

from looml.data.validate import ValidationReport
from looml.spec import Spec
from looml.store.artifacts import ArtifactStore

# Under a time budget, the stages after training (evaluate, report, reference, register; the
# refit on every row is planned inside the search) are
# planned at this share of it, at most this many seconds (measured on the corpus: 3-10 s).
AFTER_TRAIN_SHARE = 0.15
AFTER_TRAIN_SECONDS = 10.0


def rows_of(frame: pl.DataFrame, indices: np.ndarray, report: ValidationReport,
            part: str) -> tuple[Any, np.ndarray]:
    """The features (pandas, as scikit-learn takes them) and target of the train or test part."""
    n_train = int(indices[0])
    rows = indices[1:n_train + 1] if part == "train" else indices[n_train + 1:]
    picked = frame.select([*report.features, report.target])[rows]
    X = picked.drop(report.target).to_pandas()
    y = picked.get_column(report.target).to_numpy()
    return X, y


def side_of(frame: pl.DataFrame, indices: np.ndarray, spec: Spec,
            part: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """What travels beside the features of the train or test part (or 'all': both, train first):
    each row's time or group under `split.by` (see `looml.data.split.split_keys`) and its
    `data.sample_weight`; None where the spec has none. Neither column is a feature."""
    from looml.data.split import split_keys

    n_train = int(indices[0])
    rows = {"train": indices[1:n_train + 1], "test": indices[n_train + 1:], "all": indices[1:]}[part]
    by, weight = spec.split.by, spec.data.sample_weight
    keys = split_keys(frame.get_column(by.column)[rows], by.kind) if by else None
    weights = frame.get_column(weight)[rows].cast(pl.Float64).to_numpy() if weight else None
    return keys, weights


def train_deadline(spec: Spec, started: float) -> float | None:
    """When the search and refit must be done for the run to end inside `tuning.time_budget`:
    the budget counts from the start of the run, and the stages after training (evaluate,
    report, reference, register) get their share back."""
    budget = spec.tuning.time_budget
    if budget is None:
        return None
    return started + budget - min(AFTER_TRAIN_SHARE * budget, AFTER_TRAIN_SECONDS)


def train_model(frame: pl.DataFrame, indices: np.ndarray, report: ValidationReport, spec: Spec,
                store: ArtifactStore, deadline: float | None = None) -> dict[str, Any]:
    """The search on the training split: the best pipeline and its template, stored; the leaderboard."""
    from looml.learn.train import train

    X, y = rows_of(frame, indices, report, "train")
    keys, weights = side_of(frame, indices, spec, "train")
    later = len(indices) - 1 if spec.split.refit_all else 0  # the refit on every row, after evaluate
    trained = train(X, y, report.features, spec, report.task, deadline=deadline, refit_rows=later,
                    split_keys=keys, sample_weight=weights)
    digest = store.put_bytes(pickle.dumps(trained.pipeline, protocol=5))
    template = store.put_bytes(pickle.dumps(trained.template, protocol=5))
    return {"artifacts": {"pipeline": digest, "template": template}, "leaderboard": trained.leaderboard,
            "best": trained.best, "primary_metric": trained.primary_metric, "search": trained.search}


def refit_all(template: Any, frame: pl.DataFrame, indices: np.ndarray, report: ValidationReport,
              spec: Spec, store: ArtifactStore) -> dict[str, Any]:
    """The evaluated configuration fitted on the training and holdout rows together."""
    import pandas as pd

    from looml.learn.tune import refit

    X_train, y_train = rows_of(frame, indices, report, "train")
    X_test, y_test = rows_of(frame, indices, report, "test")
    X = pd.concat([X_train, X_test], ignore_index=True)
    weights = side_of(frame, indices, spec, "all")[1]
    fitted = refit(template, X, np.concatenate([y_train, y_test]), spec, weights)
    return {"artifacts": {"pipeline": store.put_bytes(pickle.dumps(fitted, protocol=5))}}


def evaluate_model(fitted: Any, frame: pl.DataFrame, indices: np.ndarray, report: ValidationReport,
                   spec: Spec, primary: str, store: ArtifactStore) -> dict[str, Any]:
    """The fitted pipeline's holdout metrics, plots and analysis; its holdout predictions, stored.

    The analysed columns that are not features (sensitive or slice columns) are read from the
    same holdout rows and handed to the analysis beside the features, never to the model.
    """
    from threadpoolctl import threadpool_limits

    from looml.learn.evaluate import evaluate
    from looml.learn.metrics import scoring_for
    from looml.learn.zoo import threads_for

    X, y = rows_of(frame, indices, report, "test")
    n_train = int(indices[0])
    others = [c for c in spec.evaluation.analysed_columns if c not in report.features]
    extra = frame.select(others)[indices[n_train + 1:]].to_pandas() if others else None
    with threadpool_limits(limits=threads_for(len(X), spec.models.n_jobs), user_api="openmp"):
        evaluation, predictions = evaluate(fitted, X, y, report.task, spec.evaluation, primary=primary,
                                           seed=spec.seed, extra=extra,
                                           sample_weight=side_of(frame, indices, spec, "test")[1],
                                           scoring=scoring_for(spec, np.asarray(getattr(fitted, "classes_",
                                                                                        []))))
    table = pl.DataFrame({"row": indices[n_train + 1:], "prediction": predictions})
    digest = store.put_file(lambda path: table.write_parquet(path, statistics=False))
    return {"artifacts": {"predictions": digest}, "evaluation": evaluation.to_dict()}


def make_reference(fitted: Any, frame: pl.DataFrame, indices: np.ndarray, report: ValidationReport,
                   seed: int) -> str:
    """The drift reference logged with the model: the training split's features, the model's
    outputs and permutation importance on the holdout split."""
    from looml.monitor.reference import reference_for_model

    X, y = rows_of(frame, indices, report, "test")
    train = frame[indices[1:int(indices[0]) + 1]]
    return reference_for_model(fitted, train, X, y, report.features, report.task, seed).to_json()
