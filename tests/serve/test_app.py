"""The server end to end: a real uvicorn on 127.0.0.1, driven by httpx and tritonclient."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import polars as pl
import pytest
import tritonclient.http as triton
from mlflow import MlflowClient

import looml
from liveserver import LiveServer
from looml.store.feedback import join_feedback, read_feedback
from looml.store.predictions import read_predictions

ROW = {"tenure": 12, "plan": "basic", "charges": "40.5", "joined": "2024-01-05"}


def churn(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    plan = rng.choice(["basic", "pro", "team"], rows)
    score = -0.04 * tenure + (plan == "basic") + rng.normal(size=rows)
    joined = pd.to_datetime(rng.integers(1_500_000_000, 1_700_000_000, rows), unit="s").strftime("%Y-%m-%d")
    return pl.DataFrame({"tenure": tenure, "plan": plan, "charges": rng.gamma(2.0, 30.0, rows).round(2),
                         "joined": list(joined), "label": np.where(score > -0.5, "yes", "no")})


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_project(tmp_path_factory.mktemp("served"))


def trained_project(folder: Path) -> Path:
    """The served project: `tiny` version 1, the champion. A test that moves the alias makes its own."""
    churn(400, seed=0).write_csv(folder / "data.csv")
    spec = folder / "looml.yaml"
    spec.write_text("seed: 3\ndata:\n  source: data.csv\n  target: label\nsplit:\n  folds: 3\n"
                    "models:\n  candidates: [linear, lightgbm]\nregistry:\n  model_name: tiny\n"
                    "serve:\n  reload_seconds: 0.2\n  log: {flush_seconds: 0.2}\n")
    looml.run(spec)
    return spec


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[LiveServer]:
    with LiveServer(project) as running:
        yield running


def reference(server: LiveServer, rows: list[dict[str, Any]]) -> tuple[list[Any], np.ndarray]:
    model = server.app.state.holder.model
    frame = pd.DataFrame(rows)
    return model.pipeline.predict(frame).tolist(), model.pipeline.predict_proba(frame)


def test_health_and_metadata(server: LiveServer) -> None:
    c = server.client
    assert c.get("/v2/health/live").status_code == 200
    assert c.get("/v2/health/ready").status_code == 200
    assert c.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    meta = c.get("/v2/models/tiny").json()
    assert [i["name"] for i in meta["inputs"]] == ["tenure", "plan", "charges", "joined"]
    assert meta["versions"] == ["1"]
    assert c.get("/v2/models/tiny/versions/1/ready").status_code == 200
    assert c.get("/v2/models/other/ready").status_code == 400
    assert c.get("/v2/models/other").status_code == 404
    assert c.get("/ping").status_code == 200 and c.get("/health").status_code == 200
    assert c.get("/version").text == "3.17.2"
    assert "/predict" in c.get("/openapi.json").json()["paths"]


def test_the_docs_page_loads_its_swagger_files_from_the_server_not_a_cdn(server: LiveServer) -> None:
    import re

    page = server.client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert sources and all(s.startswith("/") for s in sources), sources  # nothing from another host
    assets = (("/docs/assets/swagger-ui-bundle.js", 500_000), ("/docs/assets/swagger-ui.css", 50_000))
    for asset, size in assets:
        got = server.client.get(asset)
        assert got.status_code == 200 and len(got.content) > size, asset


def test_predict_returns_labels_probabilities_and_row_ids(server: LiveServer) -> None:
    rows = [ROW, {**ROW, "tenure": "7", "plan": "gold"}]

    response = server.client.post("/predict", json={"records": rows}, headers={"x-request-id": "abc"})

    assert response.status_code == 200, response.text
    body = response.json()
    labels, proba = reference(server, rows)
    assert [p["prediction"] for p in body["predictions"]] == labels
    assert [p["row_id"] for p in body["predictions"]] == ["abc:0", "abc:1"]
    np.testing.assert_allclose([[p["probabilities"]["no"], p["probabilities"]["yes"]]
                                for p in body["predictions"]], proba, rtol=1e-9)
    assert body["model_version"] == "1"
    assert any("'gold'" in w for w in body["warnings"])


@pytest.mark.parametrize("payload", [
    {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}},
    {"dataframe_records": [ROW]},
    {"instances": [ROW]},
    {"inputs": {k: [v] for k, v in ROW.items()}},
])
def test_mlflow_formats_answer_like_mlflow(server: LiveServer, payload: dict[str, Any]) -> None:
    response = server.client.post("/invocations", json=payload)

    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": reference(server, [ROW])[0]}


def test_invocations_give_probabilities_as_the_registered_pyfunc_does(server: LiveServer,
                                                                       project: Path) -> None:
    import mlflow

    rows = [ROW, {**ROW, "tenure": 50, "plan": "pro"}]
    params = {"predict_method": "predict_proba"}

    response = server.client.post("/invocations", json={"dataframe_records": rows, "params": params})

    assert response.status_code == 200, response.text
    mlflow.set_tracking_uri(f"sqlite:///{project.parent / '.looml' / 'mlflow.db'}")
    pyfunc = mlflow.pyfunc.load_model("models:/tiny/1").predict(pd.DataFrame(rows), params=params)
    got = response.json()["predictions"]
    assert [list(p) for p in got] == [list(pyfunc.columns)] * 2 == [["no", "yes"]] * 2
    np.testing.assert_allclose([list(p.values()) for p in got], pyfunc.to_numpy(), rtol=1e-9)
    typo = server.client.post("/invocations", json={"dataframe_records": rows,
                                                    "params": {"predict_method": "predict_prob"}})
    message = typo.json()["message"]
    assert typo.status_code == 400
    assert "params.predict_method: is not a method of this model (got 'predict_prob')" in message
    assert "did you mean 'predict_proba'?" in message


def test_mlflow_csv_and_its_415(server: LiveServer) -> None:
    csv = "tenure,plan,charges,joined\n12,basic,40.5,2024-01-05\n"
    response = server.client.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert response.json() == {"predictions": reference(server, [ROW])[0]}

    response = server.client.post("/invocations", content=csv, headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.text.startswith("This predictor only supports the following content types")


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_with_binary_and_json_tensors(server: LiveServer, binary: bool) -> None:
    client = triton.InferenceServerClient(server.address)
    assert client.is_server_live() and client.is_model_ready("tiny")
    inputs = []
    for name, value, datatype in (("tenure", np.array([[12.0]]), "FP64"),
                                  ("plan", np.array([["basic"]], dtype=object), "BYTES"),
                                  ("charges", np.array([[40.5]]), "FP64"),
                                  ("joined", np.array([["2024-01-05"]], dtype=object), "BYTES")):
        tensor = triton.InferInput(name, [1, 1], datatype)
        tensor.set_data_from_numpy(value, binary_data=binary)
        inputs.append(tensor)
    outputs = None if binary else [triton.InferRequestedOutput("predict", binary_data=False),
                                   triton.InferRequestedOutput("predict_proba", binary_data=False)]

    result = client.infer("tiny", inputs, outputs=outputs, request_id="t1")

    labels, proba = reference(server, [ROW])
    assert [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict").ravel()] == labels
    np.testing.assert_allclose(result.as_numpy("predict_proba"), proba, rtol=1e-9)
    assert result.get_response()["id"] == "t1"
    # which column of predict_proba is which class, from the model metadata
    meta = {o["name"]: o for o in client.get_model_metadata("tiny")["outputs"]}
    classes = orjson.loads(meta["predict_proba"]["parameters"]["classes"])
    assert classes == list(server.app.state.holder.model.pipeline.classes_) == ["no", "yes"]


@pytest.mark.parametrize(("path", "body", "status", "fragment"), [
    ("/predict", {"records": [{**ROW, "tenure": "abc"}]}, 422, "columns.tenure row 0"),
    ("/predict", {"records": [{"plan": "basic"}]}, 422, "tenure"),
    ("/predict", {"records": [ROW, {**ROW, "charges": None}]}, 422, "columns.charges row 1"),
    ("/predict", {"rows": []}, 400, "no 'records' key"),
    ("/invocations", {"dataframe_records": [ROW], "instances": [ROW]}, 400, "exactly one of"),
    ("/v2/models/tiny/infer", {"inputs": [{"name": "tenure", "shape": [2], "datatype": "FP64",
                                           "data": [1.0]}]}, 400, "inputs[0]"),
    ("/v2/models/nope/infer", {"inputs": []}, 404, "no such model"),
    ("/feedback", [{"label": "yes"}], 422, "row_id"),
])
def test_bad_requests_get_4xx_with_every_problem_and_the_server_keeps_serving(
        server: LiveServer, path: str, body: Any, status: int, fragment: str) -> None:
    response = server.client.post(path, content=orjson.dumps(body))

    assert response.status_code == status, response.text
    assert fragment in response.text
    assert server.client.post("/predict", json={"records": [ROW]}).status_code == 200


class _Broken:
    name = "broken"

    def predict(self, batch: Any) -> Any:
        raise RuntimeError("a scorer bug")


@pytest.mark.parametrize(("path", "body", "key"), [
    ("/predict", {"records": [ROW]}, "error"),
    ("/invocations", {"dataframe_records": [ROW]}, "error_code"),
    ("/v2/models/tiny/infer", {"inputs": [
        {"name": k, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1], "data": [v]}
        for k, v in ROW.items()]}, "error"),
])
def test_a_failing_scorer_is_a_500_in_the_protocol_s_error_format_and_is_logged(
        project: Path, path: str, body: Any, key: str) -> None:
    with LiveServer(project) as running:
        holder = running.app.state.holder
        holder.model = dataclasses.replace(holder.model, scorer=_Broken())

        response = running.client.post(path, content=orjson.dumps(body), headers={"x-request-id": "r500"})

        assert response.status_code == 500
        assert key in response.json() and "internal server error (RuntimeError)" in response.text
        assert response.headers["x-request-id"] == "r500"
        assert any("failed" in r.getMessage() and r.exc_info for r in running.errors.records)
        metrics = running.client.get("/metrics").text
        route = path.replace("tiny", "{name}")
        assert f'looml_requests_total{{endpoint="{route}",status="500"}} 1.0' in metrics


def test_the_scoring_paths_answer_other_methods_through_fastapi(server: LiveServer) -> None:
    for path in ("/predict", "/invocations", "/v2/models/tiny/infer"):
        response = server.client.get(path)
        assert response.status_code == 405, path
        assert response.headers["x-request-id"]


def test_a_body_over_the_limit_is_413(project: Path) -> None:
    with LiveServer(project, max_body_bytes=2048) as small:
        response = small.client.post("/predict", json={"records": [ROW] * 100})
        assert response.status_code == 413
        assert "more than the server's limit of 2048" in response.text


def test_every_served_row_is_logged_and_feedback_joins(server: LiveServer, project: Path) -> None:
    ids = [f"log{i}" for i in range(20)]
    for request_id in ids:
        response = server.client.post("/predict", json={"records": [ROW, ROW]},
                                      headers={"x-request-id": request_id})
        assert response.status_code == 200
    feedback = [{"row_id": f"{request_id}:1", "label": "yes"} for request_id in ids[:5]]
    assert server.client.post("/feedback", json=feedback).json() == {"stored": 5}

    root = project.parent / ".looml" / "logs"
    deadline = time.time() + 10
    logged = pl.DataFrame()
    while time.time() < deadline:
        logged = read_predictions(root)
        if logged.height and logged.filter(pl.col("request_id").is_in(ids)).height == 40:
            break
        time.sleep(0.1)
    mine = logged.filter(pl.col("request_id").is_in(ids))
    assert mine.height == 40
    assert set(mine["row_id"]) == {f"{i}:{r}" for i in ids for r in (0, 1)}
    assert set(mine["model_version"]) == {"1"}
    joined = join_feedback(mine, read_feedback(root))
    assert joined.filter(pl.col("label").is_not_null())["row_id"].sort().to_list() == sorted(
        f"{i}:1" for i in ids[:5])


def test_feedback_is_checked_against_the_log_and_the_classes_and_nothing_bad_is_stored(
        server: LiveServer, project: Path) -> None:
    root = project.parent / ".looml" / "logs"
    served = server.client.post("/predict", json={"records": [ROW]}, headers={"x-request-id": "fb1"})
    assert served.status_code == 200
    before = read_feedback(root).height

    unknown = server.client.post("/feedback", json=[{"row_id": "nope:0", "label": "yes"},
                                                    {"row_id": "fb1:0", "label": "maybe"}])

    assert unknown.status_code == 422
    problems = {p["loc"]: p for p in unknown.json()["problems"]}
    assert "1 row id(s) not in the prediction log: 'nope:0'" in problems["records[0].row_id"]["msg"]
    assert problems["records[1].label"]["value"] == "maybe"
    assert "'no', 'yes'" in problems["records[1].label"]["fix"]
    assert read_feedback(root).height == before  # all or nothing
    # the row was served a moment ago, not yet flushed by the log's timer: still found
    assert server.client.post("/feedback", json={"row_id": "fb1:0", "label": "no"}).status_code == 200


def test_a_label_is_corrected_by_a_later_one_and_withdrawn_by_a_retraction(
        server: LiveServer, project: Path) -> None:
    root = project.parent / ".looml" / "logs"
    assert server.client.post("/predict", json={"records": [ROW, ROW]},
                              headers={"x-request-id": "fb2"}).status_code == 200
    for body in ([{"row_id": "fb2:0", "label": "yes"}, {"row_id": "fb2:1", "label": "yes"}],
                 {"row_id": "fb2:0", "label": "no"}, {"row_id": "fb2:1", "retract": True}):
        assert server.client.post("/feedback", json=body).status_code == 200, body

    logged = read_predictions(root).filter(pl.col("request_id") == "fb2")
    labels = dict(join_feedback(logged, read_feedback(root)).select("row_id", "label").iter_rows())

    assert labels == {"fb2:0": "no", "fb2:1": None}
    both = server.client.post("/feedback", json={"row_id": "fb2:0", "label": "no", "retract": True})
    assert both.status_code == 422 and "retract" in both.text


def test_metrics_count_requests_rows_and_the_version(server: LiveServer) -> None:
    server.client.post("/predict", json={"records": [ROW]})

    text = server.client.get("/metrics").text

    assert 'looml_requests_total{endpoint="/predict",status="200"}' in text
    assert 'looml_model_info{model="tiny",version="1"} 1.0' in text
    scorer = server.client.get("/v2/models/tiny").json()["parameters"]["scorer"]
    assert scorer.startswith("compiled:")
    assert f'looml_scorer_info{{kind="{scorer}",model="tiny",version="1"}} 1.0' in text
    assert "looml_rows_predicted_total" in text and "looml_request_duration_seconds_bucket" in text


def test_bearer_token_guards_predictions_but_not_health(project: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOML_TEST_TOKEN", "s3cret")
    with LiveServer(project, auth_token_env="LOOML_TEST_TOKEN") as guarded:
        assert guarded.client.post("/predict", json={"records": [ROW]}).status_code == 401
        ok = guarded.client.post("/predict", json={"records": [ROW]},
                                 headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert guarded.client.get("/v2/health/ready").status_code == 200
        assert guarded.client.get("/metrics").status_code == 200


def test_the_champion_swaps_under_load_without_a_failed_request(tmp_path: Path) -> None:
    # Its own project: moving the shared one's alias would swap the module's server too.
    project = trained_project(tmp_path)
    data = project.parent / "data.csv"
    churn(500, seed=9).write_csv(data)
    second = looml.run(project)
    assert second.model_version == "2" and not second.champion
    failures: list[str] = []
    versions: list[str] = []
    stop = threading.Event()

    with LiveServer(project) as running:
        def client_loop() -> None:
            with httpx.Client(base_url=f"http://{running.address}", timeout=30) as c:
                while not stop.is_set():
                    r = c.post("/predict", json={"records": [ROW]})
                    if r.status_code != 200:
                        failures.append(r.text)
                    else:
                        versions.append(r.json()["model_version"])

        clients = [threading.Thread(target=client_loop) for _ in range(4)]
        for t in clients:
            t.start()
        time.sleep(0.5)
        MlflowClient(second.tracking_uri).set_registered_model_alias("tiny", "champion", "2")
        deadline = time.time() + 30
        while running.client.get("/v2/models/tiny").json()["versions"] != ["2"]:
            assert time.time() < deadline, "the server did not follow the champion"
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for t in clients:
            t.join()

    assert failures == []
    assert versions[0] == "1" and versions[-1] == "2" and len(versions) > 20


def test_metrics_name_the_new_version_as_soon_as_the_server_follows_the_alias(tmp_path: Path) -> None:
    # Its own project: no request is scored between the swap and the scrape.
    churn(400, seed=0).write_csv(tmp_path / "data.csv")
    spec = tmp_path / "looml.yaml"
    spec.write_text("data: {source: data.csv, target: label}\nsplit: {folds: 2}\n"
                    "models: {candidates: [linear]}\nregistry: {model_name: quiet}\n"
                    "serve: {reload_seconds: 0.2}\n")
    first = looml.run(spec)
    churn(400, seed=4).write_csv(tmp_path / "data.csv")
    assert looml.run(spec).model_version == "2"
    with LiveServer(spec) as running:
        MlflowClient(first.tracking_uri).set_registered_model_alias("quiet", "champion", "2")
        deadline = time.time() + 30
        while running.client.get("/v2/models/quiet").json()["versions"] != ["2"]:
            assert time.time() < deadline, "the server did not follow the champion"
            time.sleep(0.1)
        text = running.client.get("/metrics").text
    assert 'looml_model_info{model="quiet",version="2"} 1.0' in text
    assert 'looml_model_info{model="quiet",version="1"} 0.0' in text


def test_serve_refuses_to_start_without_a_champion(tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = tmp_path / "looml.yaml"
    spec.write_text("data:\n  source: x.csv\n  target: y\nregistry:\n  model_name: nothing\n")

    out = subprocess.run([sys.executable, "-m", "looml", "serve", str(spec)], capture_output=True, text=True,
                         timeout=60)

    assert out.returncode == 5
    assert "the registered model has no 'champion' alias yet (got 'nothing')" in out.stderr
