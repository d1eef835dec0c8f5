"""A model with calibration and a chosen threshold (employee_attrition): every protocol, the
compiled scorer, `looml predict` and the MLflow pyfunc model give `proba[:, pos] >= threshold`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest

import looml
from liveserver import LiveServer
from looml.batch import predict
from looml.serve.model import PipelineScorer, ServedModel, load_model

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("decision")
    frame = pl.read_parquet(CORPUS / "employee_attrition.parquet").sample(400, seed=0)
    frame.write_csv(folder / "data.csv")
    spec = folder / "looml.yaml"
    spec.write_text("seed: 3\ndata:\n  source: data.csv\n  target: Attrition\n  positive_class: 'Yes'\n"
                    "split:\n  folds: 3\nmodels:\n  candidates: [linear]\ntuning: {trials: 2}\n"
                    "evaluation:\n  calibration: sigmoid\n  threshold: {optimize: f1}\n"
                    "registry:\n  model_name: attrition\n")
    looml.run(spec)
    return spec


@pytest.fixture(scope="module")
def model(project: Path) -> ServedModel:
    return load_model(f"sqlite:///{project.parent / '.looml' / 'mlflow.db'}", "attrition")


@pytest.fixture(scope="module")
def rows(project: Path, model: ServedModel) -> pd.DataFrame:
    """Rows of the table, the first ones those whose label the threshold changes from argmax."""
    frame = pd.read_csv(project.parent / "data.csv").drop(columns=["Attrition"])
    proba = model.pipeline.predict_proba(frame)[:, list(model.classes).index("Yes")]
    moved = (proba >= model.threshold) != (proba >= 0.5)
    assert moved.sum() >= 3  # the threshold matters on this table
    return pd.concat([frame[moved].head(10), frame[~moved].head(10)], ignore_index=True)


def expected(model: ServedModel, rows: pd.DataFrame) -> list[str]:
    proba = model.pipeline.predict_proba(rows)[:, list(model.classes).index("Yes")]
    return np.where(proba >= model.threshold, "Yes", "No").tolist()


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[LiveServer]:
    with LiveServer(project) as running:
        yield running


def test_the_compiled_scorer_applies_calibration_and_the_threshold(model: ServedModel,
                                                                   rows: pd.DataFrame) -> None:
    assert model.scorer.name == "compiled:linear+sigmoid+threshold", model.fallback
    assert model.decision["calibration"] == "sigmoid" and 0 < model.threshold < 0.5
    batch = {c: rows[c].tolist() for c in model.features}
    compiled, reference = model.predict(batch), PipelineScorer(model.pipeline, model.features).predict(batch)
    assert compiled.labels.tolist() == reference.labels.tolist() == expected(model, rows)
    np.testing.assert_allclose(compiled.proba, reference.proba, atol=1e-9)
    assert model.pipeline.predict(rows).tolist() == expected(model, rows)


def test_every_protocol_answers_the_thresholded_label_and_reports_the_threshold(
        server: LiveServer, model: ServedModel, rows: pd.DataFrame) -> None:
    records: list[dict[str, Any]] = rows.to_dict(orient="records")
    want = expected(model, rows)

    body = server.client.post("/predict", json={"records": records}).json()
    assert [p["prediction"] for p in body["predictions"]] == want
    assert body["threshold"] == pytest.approx(model.threshold) and body["positive_class"] == "Yes"

    invocations = server.client.post("/invocations", json={"dataframe_records": records})
    assert invocations.json()["predictions"] == want

    inputs = [{"name": c, "shape": [len(rows), 1], "datatype": "FP64" if kind == "numeric" else "BYTES",
               "data": [float(v) for v in rows[c]] if kind == "numeric" else [str(v) for v in rows[c]]}
              for c, kind in model.features.items()]
    infer = server.client.post("/v2/models/attrition/infer", json={"inputs": inputs})
    assert infer.status_code == 200, infer.text
    labels = next(o for o in infer.json()["outputs"] if o["name"] == "predict")["data"]
    assert labels == want

    meta = server.client.get("/v2/models/attrition").json()["parameters"]
    assert meta["threshold"] == pytest.approx(model.threshold)
    assert (meta["positive_class"], meta["calibration"]) == ("Yes", "sigmoid")


def test_the_pyfunc_model_and_looml_predict_give_the_same_labels(project: Path, model: ServedModel,
                                                                 rows: pd.DataFrame, tmp_path: Path) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{project.parent / '.looml' / 'mlflow.db'}")
    pyfunc = mlflow.pyfunc.load_model("models:/attrition@champion")
    assert np.asarray(pyfunc.predict(rows)).tolist() == expected(model, rows)
    run = mlflow.get_run(model.run_id)
    assert float(run.data.params["decision.threshold"]) == pytest.approx(model.threshold, abs=1e-6)
    assert run.data.params["decision.objective"] == "f1"
    report = next((project.parent / ".looml" / "reports").glob("attrition-*.html")).read_text("utf-8")
    assert "calibration sigmoid (sigmoid asked" in report
    assert "on P(Yes): the best f1 on the out-of-fold predictions" in report

    source, out = tmp_path / "batch.csv", tmp_path / "scored.parquet"
    rows.to_csv(source, index=False)
    predict(project, str(source), out)
    assert pl.read_parquet(out)["prediction"].to_list() == expected(model, rows)


def test_a_calibrated_vote_of_member_pipelines_is_fitted_on_the_coercer_s_frame_and_compiles() -> None:
    from sklearn.linear_model import LogisticRegression

    from looml.learn.ensemble import make_ensemble
    from looml.learn.train import decide_on
    from looml.learn.trial import candidate_pipeline
    from looml.learn.tune import refit
    from looml.serve.compiled import compile_or_reason
    from looml.spec import Spec

    columns = ["Age", "MonthlyIncome", "OverTime", "JobRole", "MaritalStatus", "Attrition"]
    frame = pl.read_parquet(CORPUS / "employee_attrition.parquet").sample(300, seed=1).select(columns)
    frame = frame.to_pandas()
    y = frame.pop("Attrition").to_numpy()
    features = {c: "numeric" if frame[c].dtype.kind in "if" else "categorical" for c in frame.columns}
    spec = Spec.model_validate({"data": {"source": "d.csv", "target": "Attrition", "positive_class": "Yes"},
                                "registry": {"model_name": "m"},
                                "evaluation": {"calibration": "sigmoid", "threshold": {"optimize": "f1"}}})
    members = [(name, candidate_pipeline(features, spec, "classification", model)) for name, model in (
        ("linear", LogisticRegression(max_iter=500)), ("strong", LogisticRegression(C=0.05, max_iter=500)))]
    template = make_ensemble("voting", members, features, "classification", 0)

    fitted = refit(template, frame, y, spec)
    pipeline, decided_template, decision = decide_on(fitted, template, frame, y, spec, "classification", 3)

    assert decision["calibration"] == "sigmoid" and decision["positive_class"] == "Yes"
    assert type(decided_template.steps[-1][1]).__name__ == "DecisionModel"
    reference = PipelineScorer(pipeline, features)
    scorer, reason = compile_or_reason(pipeline, features, None, None, reference)
    assert scorer is not None and scorer.name.endswith("+sigmoid+threshold"), reason
    batch = {c: frame[c].tolist() for c in features}
    proba = pipeline.predict_proba(frame)[:, 1]
    assert scorer.predict(batch).labels.tolist() == np.where(proba >= decision["threshold"], "Yes",
                                                             "No").tolist()
