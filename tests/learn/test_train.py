"""The train stage end to end: the search under `tuning:`, its leaderboard in the report, its
trials as MLflow child runs, and its cache key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest

import looml
from looml.errors import SpecError
from looml.learn.train import train
from looml.spec import Spec

TUNING = "tuning: {method: random, trials: 5, pruning: false}\n"


def project(make_project: Callable[..., Path], frame: pl.DataFrame, tuning: str = TUNING) -> Path:
    spec = make_project(frame, extra=tuning + "split: {folds: 3}\n")
    spec.write_text(spec.read_text().replace("[linear]", "[linear, decision_tree]"))
    return spec


def test_a_search_is_logged_as_child_runs_and_shown_in_the_report(
        make_project: Callable[..., Path], classification_frame: Callable[..., pl.DataFrame]) -> None:
    result = looml.run(project(make_project, classification_frame(rows=200)))

    assert len(result.leaderboard) == 6  # 5 trials and the voting ensemble a search adds
    assert sum(r["family"] == "ensemble" for r in result.leaderboard) == 1
    assert result.best_model == result.leaderboard[0]["name"]
    client = mlflow.MlflowClient(result.tracking_uri)
    parent = client.get_run(result.run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert len(children) == 6
    by_trial = {int(c.data.params["trial"]): c for c in children}
    for row in result.leaderboard:
        child = by_trial[row["trial"]]
        assert child.data.metrics["cv_roc_auc_mean"] == pytest.approx(row["mean"]["roc_auc"])
        assert child.data.params["model"] == row["name"] and child.data.tags["looml.state"] == "complete"
        assert child.data.metrics["size_bytes"] == row["size_bytes"]
    html = result.report_path.read_text()
    assert "5 trials (random search)" in html and "Predict ms" in html and "Size KB" in html


def test_changing_the_tuning_section_retrains_only(make_project: Callable[..., Path],
                                                   classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = project(make_project, classification_frame(rows=150))
    looml.run(spec)
    spec.write_text(spec.read_text().replace("trials: 5", "trials: 3"))
    again = looml.run(spec)
    status = {s.name: s.status for s in again.stages}
    assert status["split"] == "cached" and status["train"] == "ran"
    assert len(again.leaderboard) == 4  # 3 trials and the ensemble


def test_a_bad_search_is_refused_before_any_work(make_project: Callable[..., Path],
                                                 classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = project(make_project, classification_frame(), tuning="tuning:\n  method: grid\n")
    spec.write_text(spec.read_text().replace(
        "[linear, decision_tree]", "[{name: linear, space: {C: {low: 0.1, high: 1}}}]"))
    with pytest.raises(SpecError, match=r"models\.candidates\[0\]\.space\.C: grid search needs a finite"):
        looml.run(spec)
    assert not (spec.parent / ".looml" / "artifacts").exists()


def test_train_returns_one_pipeline_and_the_search_summary() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=150), "b": rng.choice(["x", "y", "z"], 150)})
    y = (X["a"] + (X["b"] == "x") + rng.normal(scale=0.5, size=150)).to_numpy()
    spec = Spec.model_validate({"data": {"source": "d.csv", "target": "y"}, "registry": {"model_name": "m"},
                                "split": {"folds": 3}, "models": {"candidates": ["ridge", "extra_trees"]},
                                "tuning": {"method": "bayesian", "trials": 4, "pruning": False}})
    trained = train(X, y, {"a": "numeric", "b": "categorical"}, spec, "regression")
    assert trained.primary_metric == "rmse"
    assert trained.search["method"] == "bayesian" and trained.search["states"] == {"complete": 4}
    rmse = [r["mean"]["rmse"] for r in trained.leaderboard]
    assert rmse == sorted(rmse)
    assert trained.pipeline.predict(X.head(3)).shape == (3,)
