"""End to end: real data through the CLI and the Python API, real MLflow, real cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

import looml

LOOML = [sys.executable, "-m", "looml"]


def write_project(folder: Path, frame: pd.DataFrame, target: str, *, name: str = "m",
                  candidates: str = "[linear, lightgbm]", extra: str = "") -> Path:
    """A project folder with data.csv and looml.yaml; returns the spec path."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "data.csv", index=False)
    spec = folder / "looml.yaml"
    spec.write_text(
        f"seed: 7\n"
        f"data: {{source: data.csv, target: {json.dumps(target)}}}\n"
        f"split: {{test_size: 0.25, folds: 3}}\n"
        f"models: {{candidates: {candidates}}}\n"
        f"registry: {{model_name: {name}}}\n{extra}"
    )
    return spec


def run_cli(spec: Path, *args: str) -> dict:
    out = subprocess.run([*LOOML, "run", str(spec), "--json", *args], capture_output=True,
                         text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout)


def mixed_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Numeric, categorical and datetime columns with missing values; a learnable target."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue", "rare"], rows, p=[0.4, 0.3, 0.29, 0.01])
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D")
    score = x1 + (colour == "red") * 1.5 + (when.month.to_numpy() > 6) * 0.5
    frame = pd.DataFrame({
        "row_id": np.arange(rows), "x1": x1, "x2": rng.normal(size=rows),
        "colour": colour, "when": when.strftime("%Y-%m-%d"),
        "label": np.where(score + rng.normal(scale=0.5, size=rows) > 0.8, "yes", "no"),
    })
    frame.loc[rng.random(rows) < 0.1, "x1"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "colour"] = None
    return frame


@pytest.mark.parametrize(("loader", "task", "metric"), [
    (load_breast_cancer, "classification", "roc_auc"),
    (load_wine, "classification", "roc_auc"),
    (load_diabetes, "regression", "rmse"),
])
def test_cli_runs_bundled_datasets_end_to_end(tmp_path: Path, loader, task: str, metric: str) -> None:
    frame = loader(as_frame=True).frame
    spec = write_project(tmp_path, frame, "target", name=loader.__name__.removeprefix("load_"))
    result = run_cli(spec)
    assert result["task"] == task
    assert result["primary_metric"] == metric
    assert result["model_version"] == "1" and result["champion"] is True
    # The candidates, and the vote among them when it was scored (decision 42)
    assert {row["name"] for row in result["leaderboard"]} - {"voting_ensemble"} == {"linear", "lightgbm"}
    if task == "classification":
        assert result["metrics"]["roc_auc"] > 0.9
        assert set(result["metrics"]) == {"roc_auc", "accuracy", "precision", "recall", "f1",
                                          "log_loss", "average_precision"}
    else:
        assert result["metrics"]["r2"] > 0.2
        assert set(result["metrics"]) == {"rmse", "mae", "r2", "mape", "rmsle"}
    html = Path(result["report_path"]).read_text()
    assert "<svg" in html and "https://" not in html


def test_mixed_types_with_missing_values_and_dates(tmp_path: Path) -> None:
    spec = write_project(tmp_path, mixed_frame(), "label",
                         candidates="[linear, random_forest, hist_gradient_boosting, lightgbm]")
    result = looml.run(spec)
    assert result.task == "classification"
    assert result.metrics["roc_auc"] > 0.75
    assert any("row_id" in w and "id-like" in w for w in result.warnings)
    candidates = [r for r in result.leaderboard if r["name"] != "voting_ensemble"]
    assert len(candidates) == 4 and not any(r["error"] for r in result.leaderboard)


def test_unchanged_rerun_does_no_work_and_model_change_retrains_only(tmp_path: Path) -> None:
    spec = write_project(tmp_path, mixed_frame(), "label")
    first = looml.run(spec)
    assert all(s.status == "ran" for s in first.stages)

    second = looml.run(spec)
    assert [s.status for s in second.stages] == ["cached"] * len(second.stages)
    assert second.model_version == first.model_version  # nothing registered again

    spec.write_text(spec.read_text().replace(
        "[linear, lightgbm]", "[linear, {name: lightgbm, params: {n_estimators: 50}}]"))
    third = looml.run(spec)
    status = {s.name: s.status for s in third.stages}
    assert status["ingest"] == status["profile"] == status["split"] == "cached"
    assert status["train"] == "ran"
    assert "spec section" in next(s.reason for s in third.stages if s.name == "train")
    assert third.model_version == "2"

    forced = looml.run(spec, force=True)
    assert all(s.status == "ran" for s in forced.stages)


def test_a_version_deleted_from_the_registry_is_registered_again(tmp_path: Path) -> None:
    spec = write_project(tmp_path, mixed_frame(), "label", candidates="[linear]", name="gone")
    first = looml.run(spec)
    mlflow.MlflowClient(first.tracking_uri).delete_model_version("gone", first.model_version)

    again = looml.run(spec)

    register = next(s for s in again.stages if s.name == "register")
    assert register.status == "ran" and "out of date" in register.reason
    assert again.model_version == "2" and again.champion is True
    assert {s.name: s.status for s in again.stages}["train"] == "cached"


def test_changed_data_reruns_everything(tmp_path: Path) -> None:
    spec = write_project(tmp_path, mixed_frame(seed=0), "label")
    looml.run(spec)
    mixed_frame(seed=1).to_csv(tmp_path / "data.csv", index=False)
    again = looml.run(spec)
    assert all(s.status == "ran" for s in again.stages)
    assert next(s for s in again.stages if s.name == "ingest").reason == "changed: input source"


def test_two_fresh_projects_give_identical_metrics_and_predictions(tmp_path: Path) -> None:
    results = [looml.run(write_project(tmp_path / name, mixed_frame(), "label",
                                       candidates="[linear, random_forest, lightgbm]"))
               for name in ("a", "b")]
    a, b = results
    assert a.metrics == b.metrics
    timeless = [[{k: v for k, v in row.items() if k not in ("fit_seconds", "timings")}
                 for row in r.leaderboard] for r in results]
    assert timeless[0] == timeless[1]
    assert a.data_digest == b.data_digest
    assert a.artifacts["predictions"] == b.artifacts["predictions"]


def test_results_are_the_same_whether_earlier_stages_came_from_the_cache(tmp_path: Path) -> None:
    frame = mixed_frame()
    frame = frame[["x2", "label", "when", "x1", "colour", "row_id"]]  # not in sorted order
    candidates = "[linear, random_forest, lightgbm]"
    fresh = looml.run(write_project(tmp_path / "fresh", frame, "label", candidates=candidates))
    spec = write_project(tmp_path / "resumed", frame, "label", candidates=candidates)
    looml.check(spec)  # ingest, profile and validate now come from the cache
    resumed = looml.run(spec)
    assert [s.status for s in resumed.stages][:3] == ["cached"] * 3
    assert [r["mean"] for r in resumed.leaderboard] == [r["mean"] for r in fresh.leaderboard]
    assert resumed.artifacts["predictions"] == fresh.artifacts["predictions"]


def test_registered_champion_predicts_raw_rows_like_the_run(tmp_path: Path) -> None:
    frame = mixed_frame()
    spec = write_project(tmp_path, frame, "label", name="churn")
    result = looml.run(spec)
    store = tmp_path / ".looml" / "artifacts"
    digest = result.artifacts["predictions"]
    holdout = pl.read_parquet(store / digest[:2] / digest)

    mlflow.set_tracking_uri(result.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/churn@champion")
    # Raw rows as read from the file: date strings, None for missing, the id column still there.
    raw = pd.read_csv(tmp_path / "data.csv").astype(object)
    rows = raw.iloc[holdout["row"].to_numpy()].drop(columns=["label"])
    rows = rows.where(rows.notna(), None)
    assert rows["colour"].isna().any() and rows["x1"].isna().any()
    predicted = model.predict(rows)
    registered = pickle.loads(store.joinpath(result.artifacts["pipeline"][:2], result.artifacts["pipeline"])
                              .read_bytes())
    assert list(predicted) == list(registered.predict(rows))
    # Refit on every row, it still agrees with the evaluated fit on most holdout rows.
    assert np.mean(np.asarray(predicted) == holdout["prediction"].to_numpy()) > 0.85


def test_the_registered_model_is_the_evaluated_configuration_refit_on_every_row(tmp_path: Path) -> None:
    frame = mixed_frame()
    both = looml.run(write_project(tmp_path / "all", frame, "label", candidates="[linear]"))
    spec = write_project(tmp_path / "evaluated", frame, "label", candidates="[linear]")
    spec.write_text(spec.read_text().replace("folds: 3}", "folds: 3, refit_all: false}"))
    alone = looml.run(spec)

    assert both.metrics == alone.metrics  # the holdout estimate is of the same configuration
    assert "refit" in [s.name for s in both.stages] and "refit" not in [s.name for s in alone.stages]
    assert alone.artifacts["pipeline"] == alone.artifacts["evaluated_pipeline"]
    assert both.artifacts["pipeline"] != both.artifacts["evaluated_pipeline"]
    store = tmp_path / "all" / ".looml" / "artifacts"
    fitted = [pickle.loads((store / d[:2] / d).read_bytes()).named_steps["model"]
              for d in (both.artifacts["evaluated_pipeline"], both.artifacts["pipeline"])]
    assert not np.allclose(fitted[0].coef_, fitted[1].coef_)  # more rows, other coefficients


def test_random_labels_score_at_chance_in_cv(tmp_path: Path) -> None:
    # Few, large categories: with small groups every CV scheme is biased *below* 0.5 on
    # random labels (a held-out row's label is missing from its group's training rows).
    rng = np.random.default_rng(3)
    rows = 2000
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(15)})
    frame["city"] = rng.choice([f"c{i}" for i in range(8)], rows)
    frame.loc[rng.random(rows) < 0.1, "x0"] = np.nan
    frame["y"] = rng.integers(0, 2, rows)
    spec = write_project(tmp_path, frame, "y",
                         candidates="[linear, random_forest, hist_gradient_boosting, lightgbm]")
    result = looml.run(spec)
    # The four candidates and the vote among them (its CV is nested, so it is at chance too)
    assert sorted(r["name"] for r in result.leaderboard if r["state"] == "complete") == [
        "hist_gradient_boosting", "lightgbm", "linear", "random_forest", "voting_ensemble"]
    for row in result.leaderboard:
        assert 0.45 <= row["mean"]["roc_auc"] <= 0.55, (row["name"], row["mean"]["roc_auc"])


def test_killed_run_resumes_from_cache_without_corrupt_artifacts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = 2_000
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(10)})
    frame["y"] = (frame["x0"] + rng.normal(size=rows) > 0).astype(int)
    spec = write_project(tmp_path, frame, "y", candidates="[linear, lightgbm]")
    # SIGKILL inside train, with the search done and its pipeline half-written under a temporary
    # name (looml.faults: the run kills itself there, whatever the machine's pace).
    env = {**os.environ, "LOOML_FAULT": "stage.train.before>artifacts.before_rename@1"}
    proc = subprocess.Popen([*LOOML, "run", str(spec), "--json"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    try:
        assert proc.wait(timeout=600) == -signal.SIGKILL
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the pool's workers, if any outlived it
    cache = tmp_path / ".looml" / "cache"
    assert (cache / "split" / "latest.json").exists()
    assert not list((cache / "train").glob("*.json")), "train's manifest was written before the kill"

    stored = list((tmp_path / ".looml" / "artifacts").glob("??/*"))
    assert [p for p in stored if p.name.startswith(".")], "no write was under way at the kill"
    for path in stored:  # every artifact under its digest is whole; the half-written one is aside
        if not path.name.startswith("."):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
    assert not (tmp_path / ".looml" / "mlflow.db").exists()

    result = run_cli(spec)
    status = {s["name"]: s["status"] for s in result["stages"]}
    assert status["ingest"] == status["split"] == "cached"
    assert status["train"] == "ran"
    assert result["model_version"] == "1"
    assert list((tmp_path / ".looml").rglob("*.tmp")) == []


def test_the_time_budget_is_the_whole_runs_wall_clock(tmp_path: Path) -> None:
    from looml.pipeline.model import AFTER_TRAIN_SECONDS, AFTER_TRAIN_SHARE

    # Two trials end the search well inside it: a budget this size is not what makes the run stop,
    # and leaves a loaded machine the time for one trial (20 s did not: no trial finished in it).
    budget = 120.0
    spec = write_project(tmp_path, mixed_frame(), "label", candidates="[linear]",
                         extra=f"tuning: {{time_budget: {budget}, trials: 2}}\n")
    result = looml.run(spec)
    before_train = sum(s.seconds for s in result.stages[:result.stages.index(
        next(s for s in result.stages if s.name == "train"))])
    allowed = result.search["seconds_allowed"]
    # The search is given what the run left: the budget, less the stages before training and
    # the share kept for the stages after it.
    assert allowed <= budget - min(AFTER_TRAIN_SHARE * budget, AFTER_TRAIN_SECONDS) - before_train + 0.5
    assert allowed > 0
