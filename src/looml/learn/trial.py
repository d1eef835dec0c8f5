"""One trial: a candidate pipeline cross-validated fold by fold, with its costs.

`run_trial` runs where the executor puts it (in this process or a pool worker). It scores a
trial on every fold or not at all: after each fold but the last it may ask whether to go on
(the pruner's question), and a pruned or failed trial returns no scores.
"""

from __future__ import annotations

import pickle
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from looml.data.split import cv_folds
from looml.learn.features import build_preprocessor
from looml.learn.metrics import Scoring, score, stable
from looml.learn.rows import takes_sample_weight, wrap_model
from looml.learn.spaces import apply_choices
from looml.spec import Spec

__all__ = ["TrialData", "TrialJob", "candidate_pipeline", "fold_indices", "fold_summary",
           "release_fold_features", "run_trial"]

LATENCY_ROWS = 1_000
_FEATURE_CACHE_BYTES = 1 << 30  # transformed fold rows kept per search (see `_FoldFeatures`)


@dataclass(frozen=True)
class TrialData:
    """What every trial reads: sent to each worker once."""

    X: pd.DataFrame
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    task: str
    classes: np.ndarray
    primary: str
    threads: int
    sample_weight: np.ndarray | None = None  # per row of X, from `data.sample_weight`
    scoring: Scoring = field(default_factory=Scoring)

    @property
    def scored(self) -> np.ndarray:
        """The rows some fold scores (with forward-chaining folds the first block is never scored)."""
        return np.unique(np.concatenate([test for _, test in self.folds]))


@dataclass(frozen=True)
class TrialJob:
    """One configuration to score: an unfitted pipeline, and whether it may be pruned."""

    pipeline: Pipeline
    prune: bool = False


def candidate_pipeline(features: dict[str, str], spec: Spec, task: str, estimator: Any,
                       choices: dict[str, Any] | None = None) -> Pipeline:
    """The candidate pipeline: the feature steps (with a trial's choices applied), then the model
    with its training-only row work."""
    applied = apply_choices(spec, choices or {})
    steps = build_preprocessor(features, applied.preprocessing, applied.features, task, spec.seed).steps
    return Pipeline([*steps, ("model", wrap_model(estimator, applied.preprocessing, task, spec.seed))])


def fold_indices(y: np.ndarray, task: str, folds: int, seed: int, kind: str | None = None,
                 keys: np.ndarray | None = None, column: str = "") -> list[tuple[np.ndarray, np.ndarray]]:
    """The CV folds, the same for every trial: stratified k-fold, or by time or group (`kind`, with
    each row's `keys`; see `looml.data.split.cv_folds`)."""
    return cv_folds(y, task, folds, seed, kind, keys, column)


def run_trial(job: TrialJob, data: TrialData, ask: Callable[[Any], Any]) -> dict[str, Any]:
    """Cross-validate `job.pipeline`; a dict with `state` complete / pruned / failed.

    A complete trial has `mean` and `std` of every metric, `fold_fit_seconds` (mean fit time
    of a fold), `predict_ms_per_1000` and `size_bytes` (pickled fitted pipeline), measured
    on the last fold's model, and `oof`: every row's out-of-fold prediction (class
    probabilities, or values), which the ensemble is chosen from; None when a classifier has
    no probabilities. `ask((fold, running mean of the primary metric))` returns True to stop
    the trial there.
    """
    started = time.perf_counter()
    scores: list[dict[str, float]] = []
    fit_seconds: list[float] = []
    model: Pipeline | None = None
    classification = data.task == "classification"
    oof: np.ndarray | None = np.zeros((len(data.y), len(data.classes)) if classification else len(data.y))
    try:
        with threadpool_limits(limits=data.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated")
            for i, (_, test) in enumerate(data.folds):
                model, seconds, predictor, X_test = _FOLD_FEATURES.fit(job.pipeline, data, i)
                fit_seconds.append(seconds)
                fold_scores, predicted = _score(predictor, X_test, test, data)
                scores.append(fold_scores)
                if oof is not None and predicted is not None:
                    oof[test] = predicted
                elif classification:
                    oof = None
                last = i == len(data.folds) - 1
                if job.prune and not last and ask((i, float(np.mean([s[data.primary] for s in scores])))):
                    return {"state": "pruned", "seconds": time.perf_counter() - started,
                            "error": f"pruned after fold {i + 1} of {len(data.folds)}"}
            latency = _latency(model, data.X.iloc[data.folds[-1][1]])
    except Exception as exc:  # an error of a configuration fails only its trial
        return {"state": "failed", "seconds": time.perf_counter() - started,
                "error": f"{type(exc).__name__}: {exc}"[:500]}
    mean, std = fold_summary(scores)
    return {
        "state": "complete", "seconds": time.perf_counter() - started, "mean": mean, "std": std,
        "fold_fit_seconds": float(np.mean(fit_seconds)), "predict_ms_per_1000": latency,
        "size_bytes": len(pickle.dumps(model, protocol=5)), "oof": oof,
    }


def fold_summary(scores: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and standard deviation over folds of each metric every fold has (rmsle is missing
    where a fold has a negative target), over the folds where it is defined: a forward-chaining
    block may hold one class only, where ranking metrics are undefined (NaN)."""
    metrics = [m for m in scores[0] if all(m in s for s in scores)]
    out: tuple[dict[str, float], dict[str, float]] = ({}, {})
    for m in metrics:
        values = np.array([s[m] for s in scores], dtype=float)
        defined = values[~np.isnan(values)]
        out[0][m] = stable(float(np.mean(defined))) if len(defined) else float("nan")
        out[1][m] = stable(float(np.std(defined))) if len(defined) else float("nan")
    return out


class _FoldFeatures:
    """Each fold's fitted feature steps (every step of a trial's pipeline but the model: a looml
    pipeline starts with its coercer, so there is always one) and transformed rows, shared by
    the trials whose feature steps are the same (the same params, so the same fitted result:
    every step is seeded).

    Without it every candidate fits the same preprocessing on every fold again; with text
    (TF-IDF + SVD) or target encoding that was most of a trial (bird_strike_phase: a linear
    model's trial was 21 s, nearly all of it features). Kept for one `TrialData` (one search)
    and up to `_FEATURE_CACHE_BYTES` of transformed rows. A trial's `fold_fit_seconds` still
    counts the feature steps' fit, as the refit will pay it.
    """

    def __init__(self) -> None:
        self.owner: TrialData | None = None
        self.entries: dict[tuple[str, int], tuple[Pipeline, float, np.ndarray, np.ndarray]] = {}
        self.size = 0

    def fit(self, pipeline: Pipeline, data: TrialData, fold: int) -> tuple[Pipeline, float, Any, Any]:
        """(the fitted pipeline, its fit seconds, what predicts the fold's validation rows, and
        those rows as that predictor reads them)."""
        train, test = data.folds[fold]
        if self.owner is not data:
            self.release()
            self.owner = data
        key = (joblib.hash(pipeline[:-1]), fold)
        entry = self.entries.get(key)
        if entry is None:
            began = time.perf_counter()
            features = clone(pipeline[:-1])
            Z_train = features.fit_transform(data.X.iloc[train], data.y[train])
            entry = (features, time.perf_counter() - began, Z_train, features.transform(data.X.iloc[test]))
            size = _nbytes(Z_train) + _nbytes(entry[3])
            if self.size + size <= _FEATURE_CACHE_BYTES:
                self.entries[key] = entry
                self.size += size
        features, seconds, Z_train, Z_test = entry
        estimator = clone(pipeline.steps[-1][1])
        weights = ({"sample_weight": data.sample_weight[train]}
                   if data.sample_weight is not None and takes_sample_weight(estimator) else {})
        began = time.perf_counter()
        estimator.fit(Z_train, data.y[train], **weights)
        seconds += time.perf_counter() - began
        model = Pipeline([*features.steps, (pipeline.steps[-1][0], estimator)])
        return model, seconds, estimator, Z_test

    def release(self) -> None:
        """Forget the kept folds (the search is over)."""
        self.owner, self.entries, self.size = None, {}, 0


def _nbytes(Z: Any) -> int:
    if hasattr(Z, "data") and hasattr(Z, "indices"):  # scipy sparse
        return int(Z.data.nbytes + Z.indices.nbytes + Z.indptr.nbytes)
    return int(getattr(Z, "nbytes", 0)) or int(np.asarray(Z).nbytes)


_FOLD_FEATURES = _FoldFeatures()
release_fold_features = _FOLD_FEATURES.release


def _score(model: Any, X: Any, test: np.ndarray,
           data: TrialData) -> tuple[dict[str, float], np.ndarray | None]:
    """Every metric on one fold (rows `test`), and what the ensemble blends: class probabilities
    or values. `model` is the fitted pipeline with raw rows, or its last step with transformed rows."""
    y = data.y[test]
    weights = None if data.sample_weight is None else data.sample_weight[test]
    predicted = model.predict(X)
    if data.task == "regression":
        return (score(data.task, data.classes, y, predicted, None, weights, data.scoring),
                np.asarray(predicted, dtype=float))
    proba = None
    if hasattr(model, "predict_proba"):
        proba = _aligned(model.predict_proba(X), np.asarray(model.classes_), data.classes)
    return score(data.task, data.classes, y, predicted, proba, weights, data.scoring), proba


def _aligned(proba: np.ndarray, seen: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Probabilities with one column per class of the whole training split (a fold may lack one)."""
    if len(seen) == len(classes) and np.array_equal(seen, classes):
        return proba
    out = np.zeros((len(proba), len(classes)))
    out[:, np.searchsorted(classes, seen)] = proba
    return out


def _latency(model: Pipeline, X: pd.DataFrame) -> float:
    """Milliseconds to predict 1,000 rows (validation rows repeated as needed); best of two."""
    rows = X.iloc[np.resize(np.arange(len(X)), LATENCY_ROWS)]
    best = float("inf")
    for _ in range(2):
        began = time.perf_counter()
        model.predict(rows)
        best = min(best, time.perf_counter() - began)
    return round(best * 1000, 3)
