"""`looml monitor` end to end: a real registered model, its logged reference, files and a real
prediction log as the current data, the JSON and HTML reports and the exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import looml
from looml.cli import app
from looml.monitor.reference import load_reference
from looml.serve.model import Prediction
from looml.spec import PredictionLogSpec
from looml.store.connect import local_tracking_uri
from looml.store.predictions import PredictionLog, RowsToLog
from looml.store.versions import load_pipeline

FEATURES = {"tenure": "numeric", "plan": "categorical", "charges": "numeric"}
PLANS = ["basic", "pro", "<i>team</i>"]


def churn(rows: int, seed: int, shift: float = 0.0) -> pl.DataFrame:
    """Three features and a label; `shift` moves tenure and charges (two of the three)."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows) + int(30 * shift)
    plan = rng.choice(PLANS, rows)
    charges = rng.gamma(2.0, 30.0, rows).round(6) + 60 * shift
    score = -0.04 * tenure + (plan == "basic") + rng.normal(size=rows)
    return pl.DataFrame({"tenure": tenure, "plan": plan, "charges": charges,
                         "label": np.where(score > -0.5, "yes", "no")})


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("monitored")
    churn(500, seed=0).write_csv(folder / "data.csv")
    churn(400, seed=1).drop("label").write_csv(folder / "same.csv")
    churn(400, seed=2, shift=1.0).drop("label").write_parquet(folder / "shifted.parquet")
    churn(400, seed=3).drop("plan").write_csv(folder / "no-plan.csv")
    spec = folder / "looml.yaml"
    spec.write_text("seed: 3\ndata:\n  source: data.csv\n  target: label\nsplit:\n  folds: 3\n"
                    "models:\n  candidates: [linear]\nregistry:\n  model_name: tiny\n", encoding="utf-8")
    looml.run(spec)
    return spec


def tracking(project: Path) -> str:
    return local_tracking_uri("sqlite:///.looml/mlflow.db", project.parent)


def test_the_reference_is_logged_with_the_model_from_the_training_split(project: Path) -> None:
    reference = load_reference(tracking(project), "tiny")

    assert reference is not None and reference.model_version == "1"
    assert reference.rows == 400  # the training split of 500 rows, not the holdout, not the whole
    assert set(reference.columns) == set(FEATURES)
    assert set(reference.predictions) == {"prediction", "proba_yes"}
    assert reference.predictions["prediction"].rows == 100  # the holdout's predictions
    assert set(reference.columns["plan"].counts) == set(PLANS)
    assert set(reference.importance) <= set(FEATURES)
    assert sum(reference.importance.values()) == pytest.approx(1.0, abs=1e-4)
    assert "training split (400 rows)" in reference.origin


def test_unchanged_data_gives_no_drift_and_both_reports(project: Path, tmp_path: Path) -> None:
    result = looml.monitor(project, data=str(project.parent / "same.csv"), out_dir=tmp_path)

    assert result.exit_code == 0 and not result.drift
    assert result.report.drifted == [] and result.report.prediction_drift is False
    assert result.json_path.parent == tmp_path and result.html_path.is_file()
    written = json.loads(result.json_path.read_text(encoding="utf-8"))
    assert written["model"] == "tiny version 1" and written["dataset_drift"] is False
    assert {c["column"] for c in written["predictions"]} == {"prediction", "proba_yes"}


def test_shifted_data_exits_6_and_names_the_shifted_columns(project: Path, tmp_path: Path) -> None:
    shifted = str(project.parent / "shifted.parquet")
    result = CliRunner().invoke(app, ["monitor", str(project), "--data", shifted, "--out", str(tmp_path)])

    assert result.exit_code == 6, result.output
    assert "dataset drift" in result.output and "html" in result.output
    written = json.loads(next(tmp_path.glob("drift-*.json")).read_text(encoding="utf-8"))
    assert written["drifted"] == ["tenure", "charges"] and written["dataset_drift"] is True


def test_json_output_and_fail_on_never(project: Path, tmp_path: Path) -> None:
    spec = project.parent / "never.yaml"
    spec.write_text(project.read_text(encoding="utf-8") + "monitor:\n  drift:\n    fail_on: never\n",
                    encoding="utf-8")

    shifted = str(project.parent / "shifted.parquet")
    result = CliRunner().invoke(app, ["monitor", str(spec), "--data", shifted, "--out", str(tmp_path),
                                      "--json"])

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["drift"] is False and out["report"]["dataset_drift"] is True


def test_user_errors_exit_with_their_codes_and_name_the_problem(project: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["monitor", str(project), "--data", str(project.parent / "no-plan.csv"),
                                  "--out", str(tmp_path)])
    duration = runner.invoke(app, ["monitor", str(project), "--last", "3 fortnights"])
    both = runner.invoke(app, ["monitor", str(project), "--data", "x.csv", "--rows", "5"])
    typo = project.parent / "typo.yaml"
    typo.write_text(project.read_text(encoding="utf-8") + "monitor:\n  drift:\n    columns:\n"
                    "      charge: {skip: true}\n", encoding="utf-8")
    unknown = runner.invoke(app, ["monitor", str(typo), "--data", str(project.parent / "same.csv"),
                                  "--out", str(tmp_path)])

    assert missing.exit_code == 3 and "column 'plan': a feature of the model is missing" in missing.output
    assert duration.exit_code == 2 and "--last: not a duration" in duration.output
    assert both.exit_code == 2 and "either --data or a log window" in both.output
    assert unknown.exit_code == 2 and "did you mean 'charges'?" in unknown.output


def log_rows(project: Path, frame: pl.DataFrame) -> None:
    """Score `frame` with the registered model and write it through the real prediction log."""
    pipeline, _ = load_pipeline(tracking(project), "tiny", "1")
    X = frame.select(list(FEATURES)).to_pandas()
    log = PredictionLog(project.parent / ".looml" / "logs", PredictionLogSpec(flush_seconds=0.05))
    log.append(RowsToLog(request_id="req-1", timestamp=datetime.now(UTC), model_name="tiny",
                         model_version="1", endpoint="/predict", features=FEATURES,
                         batch={c: frame.get_column(c).to_numpy() for c in FEATURES},
                         prediction=Prediction(labels=pipeline.predict(X), proba=pipeline.predict_proba(X)),
                         classes=list(pipeline.classes_)))
    log.close()


def test_a_window_of_the_prediction_log_is_compared_outputs_included(project: Path, tmp_path: Path) -> None:
    logged = churn(300, seed=4, shift=1.0)
    log_rows(project, logged)

    result = looml.monitor(project, last="1h", out_dir=tmp_path)
    newest = looml.monitor(project, rows=150, out_dir=tmp_path)

    assert result.source.startswith("prediction log, last 1h: 300 rows of model version 1")
    assert result.report.drifted == ["tenure", "charges"] and result.exit_code == 6
    # The outputs read from the log drifted too: the labels' shares are those the model gave.
    outputs = {p.column: p for p in result.report.predictions}
    assert result.report.prediction_drift is True
    assert sorted(outputs) == ["prediction", "proba_yes"] and all(p.drifted for p in outputs.values())
    pipeline, _ = load_pipeline(tracking(project), "tiny", "1")
    said = pipeline.predict(logged.select(list(FEATURES)).to_pandas())
    bins = outputs["prediction"].bins
    assert bins["labels"] == ["no", "yes"]
    assert bins["current"] == [round(float(np.mean(said == label)), 6) for label in ("no", "yes")]
    assert bins["current"][1] < bins["reference"][1]  # 30 months more tenure: fewer churners foreseen
    assert newest.report.rows == 150
    # The reports carry the live-performance verdict the command prints (here: no labels yet).
    assert result.performance is not None and result.performance.verdict == "too few labels"
    written = json.loads(result.json_path.read_text(encoding="utf-8"))
    assert written["performance"] == json.loads(json.dumps(result.performance.to_dict()))
    assert f"Live {result.performance.metric}: too few labels" in result.html_path.read_text(encoding="utf-8")


def test_the_html_report_is_small_escaped_and_holds_no_rows(project: Path, tmp_path: Path) -> None:
    current = churn(400, seed=5, shift=0.5)
    current.drop("label").write_csv(tmp_path / "rows.csv")

    result = looml.monitor(project, data=str(tmp_path / "rows.csv"), out_dir=tmp_path)
    page = result.html_path.read_text(encoding="utf-8")

    assert len(page.encode()) < 120_000
    assert "<script" not in page and "http" not in page.replace('xmlns="http', "")
    assert "&lt;i&gt;team&lt;/i&gt;" in page and "<i>team</i>" not in page
    assert page.count("<svg") == len(result.report.columns) + len(result.report.predictions)
    raw = {f"{v:.6f}".rstrip("0") for v in current.get_column("charges").to_list()}
    assert not any(value in page for value in raw)
