"""`POST /explain` and `explain: true` on `/predict` on a live server; the explanations logged
with the version and shown in the report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import looml
from liveserver import LiveServer
from looml.learn.explanations import EXPLANATIONS_ARTIFACT
from looml.store.versions import model_documents
from serve.test_app import ROW, churn

TOKEN = "explain-token"


def project(folder: Path, candidate: str) -> tuple[Path, looml.RunResult]:
    churn(240, seed=0).write_csv(folder / "data.csv")
    spec = folder / "looml.yaml"
    spec.write_text("seed: 3\ndata:\n  source: data.csv\n  target: label\nsplit:\n  folds: 2\n"
                    f"models:\n  candidates: [{candidate}]\ntuning: {{trials: 2, ensemble: none}}\n"
                    "registry:\n  model_name: tiny\nserve:\n  auth_token_env: LOOML_EXPLAIN_TOKEN\n")
    return spec, looml.run(spec)


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, looml.RunResult]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOOML_EXPLAIN_TOKEN", TOKEN)
        spec, result = project(tmp_path_factory.mktemp("trees"), "lightgbm")
        with LiveServer(spec) as running:
            running.client.headers["authorization"] = f"Bearer {TOKEN}"
            yield running, result


def test_the_version_carries_its_explanations_and_the_report_shows_them(
        trees: tuple[LiveServer, looml.RunResult]) -> None:
    _, result = trees
    _, documents = model_documents(result.tracking_uri, "tiny", result.model_version,
                                   paths=(EXPLANATIONS_ARTIFACT,))
    logged = json.loads(documents[EXPLANATIONS_ARTIFACT])

    assert logged["method"] == "tree_shap" and logged["output"] == ["log-odds of 'yes'"]
    assert set(logged["shap"]["mean_abs"]) == {"tenure", "plan", "charges", "joined"}
    reference = json.loads(model_documents(result.tracking_uri, "tiny", result.model_version,
                                           paths=("monitor/reference.json",))[1]["monitor/reference.json"])
    assert logged["permutation_importance"] == pytest.approx(reference["importance"])  # reused, not redone
    html = result.report_path.read_text(encoding="utf-8")
    assert 'id="explanations"' in html and "SHAP values" in html and "Dependence on <code>" in html


def test_explain_gives_each_column_s_contribution_adding_up_to_the_margin(
        trees: tuple[LiveServer, looml.RunResult]) -> None:
    server, _ = trees
    rows = [ROW, {**ROW, "tenure": 70, "plan": "pro"}]

    answer = server.client.post("/explain", json={"records": rows})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["output"] == ["log-odds of 'yes'"] and body["model_version"] == "1"
    pipeline = server.app.state.holder.model.pipeline
    margin = pipeline.steps[-1][1].predict(pipeline[:-1].transform(pd.DataFrame(rows)), raw_score=True)
    for row, expected in zip(body["explanations"], margin, strict=True):
        assert set(row["contributions"][0]) == {"tenure", "plan", "charges", "joined"}
        assert row["base"][0] + sum(row["contributions"][0].values()) == pytest.approx(expected, abs=1e-9)
        assert row["total"][0] == pytest.approx(expected, abs=1e-9)


def test_predict_with_explain_true_carries_the_same_contributions(
        trees: tuple[LiveServer, looml.RunResult]) -> None:
    server, _ = trees
    explained = server.client.post("/explain", json={"records": [ROW]}).json()["explanations"][0]

    answer = server.client.post("/predict", json={"records": [ROW], "explain": True})
    plain = server.client.post("/predict", json={"records": [ROW]}).json()

    assert answer.status_code == 200, answer.text
    row = answer.json()["predictions"][0]
    assert row["prediction"] == plain["predictions"][0]["prediction"]
    assert np.allclose(list(row["explanation"]["contributions"][0].values()),
                       list(explained["contributions"][0].values()))
    assert "explanation" not in plain["predictions"][0]


def test_explain_is_guarded_by_the_token_and_checks_the_rows(
        trees: tuple[LiveServer, looml.RunResult]) -> None:
    server, _ = trees

    refused = server.client.post("/explain", json={"records": [ROW]}, headers={"authorization": ""})
    bad = server.client.post("/explain", json={"records": [{**ROW, "tenure": "many"}]})
    flag = server.client.post("/predict", json={"records": [ROW], "explain": "yes"})

    assert refused.status_code == 401
    assert bad.status_code == 422 and "tenure" in bad.json()["error"]
    assert flag.status_code == 400 and 'explain: expected true or false' in flag.json()["error"]


def test_a_model_without_explanations_is_a_422_that_says_why(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOML_EXPLAIN_TOKEN", TOKEN)
    spec, _ = project(tmp_path, "knn")
    with LiveServer(spec) as server:
        server.client.headers["authorization"] = f"Bearer {TOKEN}"
        answer = server.client.post("/explain", json={"records": [ROW]})
        predicted = server.client.post("/predict", json={"records": [ROW], "explain": True})
        assert server.client.post("/predict", json={"records": [ROW]}).status_code == 200

    assert answer.status_code == 422
    assert "model: this model has no per-row explanations: a KNeighborsClassifier model has no per-row " \
           "contributions" in answer.json()["error"]
    assert "fix: serve a tree model" in answer.json()["error"]
    assert predicted.status_code == 422
