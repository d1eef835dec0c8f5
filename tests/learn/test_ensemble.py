"""The voting ensemble: chosen greedily on out-of-fold predictions, scored by nested CV, refit as
one weighted soft vote; stacking cross-validated in the pool."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, make_friedman1
from sklearn.ensemble import VotingClassifier, VotingRegressor

from looml.learn.leaderboard import TrialRow
from looml.learn.tune import Tuned, tune
from looml.learn.vote import pool
from looml.spec import Spec


def make_spec(candidates: list[Any], **tuning: Any) -> Spec:
    return Spec.model_validate({"seed": 3, "data": {"source": "d.csv", "target": "y"},
                                "registry": {"model_name": "m"}, "split": {"folds": 3},
                                "models": {"candidates": candidates}, "tuning": tuning})


def digits(rows: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    frame = load_digits(as_frame=True)
    return frame.data.iloc[:rows], frame.target.to_numpy()[:rows].astype(str)


def tune_digits(**tuning: Any) -> Tuned:
    X, y = digits()
    spec = make_spec(["linear", {"name": "lightgbm", "params": {"n_estimators": 60}}, "knn"], **tuning)
    return tune(X, y, dict.fromkeys(X.columns, "numeric"), spec, "classification", "log_loss")


def friedman(rows: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_friedman1(n_samples=rows, noise=1.0, random_state=0)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]), y


def test_a_weighted_vote_of_different_families_beats_each_and_is_refit_as_one_pipeline() -> None:
    X, y = friedman()
    spec = make_spec(["decision_tree", "knn", "linear"], method="bayesian", trials=8)
    result = tune(X, y, dict.fromkeys(X.columns, "numeric"), spec, "regression", "rmse")
    ensemble = result.best
    assert ensemble.family == "ensemble" and ensemble.name == "voting_ensemble"
    singles = [r for r in result.rows if r.family != "ensemble" and r.state == "complete"]
    assert ensemble.mean["rmse"] < min(r.mean["rmse"] for r in singles)
    assert set(ensemble.mean) == {"rmse", "mae", "r2", "mape", "rmsle"}  # friedman1: y >= 0
    members = [r for r in singles if r.trial in ensemble.params["members"]]
    assert len({r.family for r in members}) >= 2 and len(members) <= 5  # ensemble_top_k
    assert ensemble.size_bytes == sum(r.size_bytes for r in members)
    model = result.pipeline.named_steps["model"]
    assert isinstance(model, VotingRegressor) and model.weights == ensemble.params["weights"]
    # the refit pipeline is the weighted mean of its refit members' predictions
    expected = np.average([m.predict(X) for m in model.estimators_], axis=0, weights=model.weights)
    np.testing.assert_allclose(result.pipeline.predict(X), expected)
    assert any("voting ensemble of trials" in note and "kept" in note for note in result.notes)


def test_a_classification_vote_is_kept_only_when_it_beats_the_best_trial() -> None:
    result = tune_digits(method="bayesian", trials=6)
    ensemble = next(r for r in result.rows if r.family == "ensemble")
    assert set(ensemble.mean) == {"roc_auc", "accuracy", "precision", "recall", "f1", "log_loss",
                                  "average_precision"}
    kept = isinstance(result.pipeline.named_steps["model"], VotingClassifier)
    assert kept == (result.best is ensemble)
    [note] = [n for n in result.notes if "voting ensemble" in n]
    found = re.search(r"CV (\w+) ([0-9.]+) against ([0-9.]+)", note)
    assert found is not None, note
    metric, vote, single = found.group(1), float(found.group(2)), float(found.group(3))
    assert vote == pytest.approx(ensemble.mean[metric], abs=1e-4)
    assert kept == (vote < single if metric == "log_loss" else vote > single)
    assert ("not kept" in note) == (not kept)


def test_the_ensemble_is_scored_by_nested_cv_so_random_labels_stay_at_chance() -> None:
    """Picking members on the same out-of-fold rows it is scored on would look better than chance."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 8)), columns=[f"x{i}" for i in range(8)])
    y = rng.choice(["a", "b"], size=400)
    spec = make_spec(["linear", "knn", "decision_tree", {"name": "lightgbm", "params": {"n_estimators": 30}}],
                     method="random", trials=16, pruning=False)
    result = tune(X, y, dict.fromkeys(X.columns, "numeric"), spec, "classification", "roc_auc")
    ensemble = next(r for r in result.rows if r.family == "ensemble")
    assert abs(ensemble.mean["roc_auc"] - 0.5) < 0.06


def test_ensemble_none_adds_no_row_and_method_none_votes_among_the_candidates() -> None:
    assert all(r.family != "ensemble" for r in tune_digits(method="bayesian", trials=3, ensemble="none").rows)
    plain = tune_digits()  # method none: 'auto' still votes, among the candidates with their params
    vote = next(r for r in plain.rows if r.family == "ensemble")
    assert vote.name == "voting_ensemble" and vote.state == "complete"
    assert set(vote.params["members"]) <= {r.trial for r in plain.rows if r.family != "ensemble"}


def test_stacking_is_cross_validated_in_the_pool() -> None:
    result = tune_digits(method="random", trials=4, ensemble="stacking", ensemble_top_k=2)
    ensemble = next(r for r in result.rows if r.family == "ensemble")
    assert ensemble.name == "stacking_ensemble" and ensemble.state == "complete"
    assert len(ensemble.params["members"]) == 2 and "weights" not in ensemble.params


def row(trial: int, family: str, value: float) -> TrialRow:
    return TrialRow(trial=trial, name=family, family=family, params={}, mean={"rmse": value})


def test_the_pool_is_the_best_trials_and_each_familys_best() -> None:
    ranked = [row(i, "lightgbm", 1.0 + i / 100) for i in range(12)]
    ranked += [row(12, "knn", 2.0), row(13, "knn", 2.1)]
    assert [r.trial for r in pool(ranked)] == [*range(10), 12]
