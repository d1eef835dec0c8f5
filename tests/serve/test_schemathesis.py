"""Schemathesis against the live server: whatever a client sends, the answer is never a 5xx.

The fuzzing reads the server's own /openapi.json, whose request schemas name the served model's
columns, so most generated bodies reach validation and scoring. Below it, one plain regression
test per server error it found. For a longer local search:
`FUZZ_EXAMPLES=300 FUZZ_SEED=1 python -m pytest tests/serve/test_schemathesis.py`.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import polars as pl
import pytest
import schemathesis
from prometheus_client.parser import text_string_to_metric_families
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

import looml
from liveserver import LiveServer
from looml.errors import Problem, RequestError
from looml.serve import protocols
from looml.serve.validation import validate_batch
from looml.store.feedback import parse_feedback

ROW = {"tenure": 12, "plan": "basic", "charges": 40.5, "joined": "2024-01-05"}
CONFIG = {
    "seed": int(os.environ.get("FUZZ_SEED", "20251122")),
    # deterministic: Hypothesis derandomized, so CI runs the same requests every time
    "generation": {"deterministic": True, "database": "none",
                   "max-examples": int(os.environ.get("FUZZ_EXAMPLES", "50"))},
    "phases": {"stateful": {"enabled": False}},
    "parameters": {"name": "tiny", "model_version": "1"},  # the served model, so requests reach it
}
schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("fuzzed")
    rng = np.random.default_rng(0)
    rows = 200
    tenure = rng.integers(0, 72, rows)
    plan = rng.choice(["basic", "pro", "team"], rows)
    score = -0.04 * tenure + (plan == "basic") + rng.normal(size=rows)
    days = rng.integers(0, 2000, rows).astype("timedelta64[D]") + np.datetime64("2018-01-01")
    pl.DataFrame({"tenure": tenure, "plan": plan, "charges": rng.gamma(2.0, 30.0, rows).round(2),
                  "joined": days.astype(str).tolist(),
                  "label": np.where(score > -0.5, "yes", "no")}).write_csv(folder / "data.csv")
    spec = folder / "looml.yaml"
    spec.write_text("seed: 3\ndata:\n  source: data.csv\n  target: label\nsplit:\n  folds: 3\n"
                    "models:\n  candidates: [linear]\nregistry:\n  model_name: tiny\n"
                    "serve:\n  log: {flush_seconds: 0.2}\n")
    looml.run(spec)
    with LiveServer(spec, log_level="critical") as running:
        yield running


@pytest.fixture(scope="module")
def api_schema(server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json",
                                         config=schemathesis.Config.from_dict(CONFIG))


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's from_fixture reads Function._nodeid, which pytest 9.2 renamed.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])


def log_counts(server: LiveServer) -> dict[str, float]:
    """Rows scored, and rows the prediction log wrote or dropped, from the server's /metrics."""
    found = {"scored": 0.0, "written": 0.0, "dropped": 0.0}
    for family in text_string_to_metric_families(server.client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "looml_rows_predicted_total":
                found["scored"] += sample.value
            elif sample.name == "looml_prediction_log_rows":
                found[sample.labels["outcome"]] = sample.value
    return found


# Odd requests the server accepts: extreme numbers, text that is not a known category, dates
# in other formats, each protocol's own shape.
ODD_ACCEPTED = [
    ("/predict", {"records": [{**ROW, "tenure": 1e308, "charges": -1e-308, "plan": "日本\u0000 ✓"},
                              {**ROW, "joined": "5 Jan 2024 10:00 +0100"},
                              {**ROW, "joined": "2024-03-31T10:00+02:00", "plan": ""}]}),
    ("/invocations", {"dataframe_records": [ROW, {**ROW, "plan": "team"}]}),
    ("/invocations", {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}}),
    ("/v2/models/tiny/infer", {"inputs": [
        {"name": "tenure", "datatype": "FP64", "shape": [2], "data": [0.0, -3.5]},
        {"name": "plan", "datatype": "BYTES", "shape": [2], "data": ["pro", "zzz"]},
        {"name": "charges", "datatype": "FP64", "shape": [2], "data": [0.0, 1e9]},
        {"name": "joined", "datatype": "BYTES", "shape": [2], "data": ["2024-01-05", "1970-01-01"]}]}),
]


def test_the_server_predicts_and_logs_every_row_of_odd_requests_without_an_error(
        server: LiveServer) -> None:
    # Its own requests, so this holds run alone; after the fuzzing, the fuzzed rows are logged too.
    for path, body in ODD_ACCEPTED:
        answer = server.client.post(path, json=body)
        assert answer.status_code == 200, (path, answer.text)
    response = server.client.post("/predict", json={"records": [ROW]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["prediction"] in ("yes", "no")

    deadline = time.monotonic() + 60  # the log flushes every 0.2 s; this only bounds a hang
    while (counts := log_counts(server))["written"] + counts["dropped"] < counts["scored"]:
        assert time.monotonic() < deadline, f"the prediction log did not write every scored row: {counts}"
        time.sleep(0.05)
    assert counts["dropped"] == 0 and counts["written"] == counts["scored"] >= 9, counts
    assert [r.getMessage() for r in server.errors.records] == []


def test_the_openapi_document_names_the_served_models_columns(server: LiveServer) -> None:
    document = server.client.get("/openapi.json").json()

    record = document["components"]["schemas"]["Record"]
    assert list(record["properties"]) == ["tenure", "plan", "charges", "joined"]
    assert record["properties"]["tenure"] == {"type": "number"}
    assert set(record["properties"]["plan"]["examples"]) == {"basic", "pro", "team"}
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/PredictRequest"}
    assert "4XX" in document["paths"]["/feedback"]["post"]["responses"]


# --- regressions: each request below got a 500 before its fix --------------------------------

@pytest.mark.parametrize(("path", "body", "status", "message"), [
    # a datatype that is a JSON object was looked up in a dict (unhashable)
    ("/v2/models/tiny/infer", {"inputs": [{"name": "tenure", "datatype": {}, "shape": [0], "data": []}]},
     400, r"inputs\[0\] \('tenure'\)\.datatype: not a datatype looml reads"),
    # records that are all empty objects: itemgetter() of no keys
    ("/predict", {"records": [{}]}, 422, r"records: every record is an empty object \(1 row\)"),
    ("/invocations", {"dataframe_records": [{}, {}]}, 422,
     r"dataframe_records: every record is an empty object \(2 rows\)"),
    # an offending integer beyond 64 bits in a problem: orjson could not write the error body
    ("/feedback", [{"row_id": 10**30, "label": "yes"}], 422,
     r"records\[0\]\.row_id: must be a non-empty string \(got 10{30}\)"),
    # a row index beyond Int64: polars could not store the feedback
    ("/feedback", [{"request_id": "r", "row": 2**63, "label": "yes"}], 422,
     r"records\[0\]\.row: must be an integer >= 0 and <= 9223372036854775807"),
])
def test_requests_that_got_a_server_error_get_a_4xx_naming_the_problem(
        server: LiveServer, path: str, body: Any, status: int, message: str) -> None:
    response = server.client.post(path, json=body)

    assert response.status_code == status, response.text
    answer = response.json()
    assert re.search(message, answer.get("error") or answer["message"]), answer
    assert answer["problems"], answer


def test_a_row_id_with_a_row_beyond_int64_is_read_as_an_opaque_key(server: LiveServer) -> None:
    response = server.client.post("/feedback", json={"row_id": "r:99999999999999999999999", "label": "no"})

    # parsed (not a 500 on the Int64 row column), then refused: no served row has that id
    assert response.status_code == 422, response.text
    assert "not in the prediction log: 'r:99999999999999999999999'" in response.text


def test_the_fixed_checks_raise_request_errors_naming_the_problem(server: LiveServer) -> None:
    model = server.app.state.holder.model
    # times with different UTC offsets (a daylight-saving change) are read in UTC, instant by instant
    assert validate_batch({"tenure": [1, 2], "plan": ["basic", "pro"], "charges": [1, 2],
                           "joined": ["2024-03-30T10:00+01:00", "2024-03-31T10:00+02:00"]}, model, 10) == []
    assert validate_batch({"tenure": [1, 2], "plan": ["basic", "pro"], "charges": [1, 2],
                           "joined": ["5 Jan 2024 10:00 +0100", "2024-01-05"]}, model, 10) == []
    with pytest.raises(RequestError, match=r"records: every record is an empty object \(3 rows\)"):
        protocols.parse_records(b'[{}, {}, {}]')
    with pytest.raises(RequestError, match=r"\.datatype: not a datatype looml reads"):
        protocols.parse_infer_request(b'{"inputs": [{"name": "a", "datatype": [], "shape": [0], '
                                      b'"data": []}]}')
    with pytest.raises(RequestError, match=r"records\[0\]\.row: must be an integer >= 0 and <= "):
        parse_feedback(b'{"request_id": "r", "row": 9223372036854775808, "label": 1}')
    body = orjson.loads(protocols.predict_error_body(RequestError(Problem("x", "bad", value=-(2**64)))))
    assert body["problems"][0]["value"] == str(-(2**64))
    # same offset written two ways, and times all in UTC: accepted
    assert validate_batch({"tenure": [1, 2], "plan": ["basic", "pro"], "charges": [1, 2],
                           "joined": ["2024-01-05T10:00:00Z", "2024-01-05T11:00:00+00:00"]}, model, 10) == []


def test_concurrent_requests_with_different_utc_offsets_are_each_scored(server: LiveServer) -> None:
    bodies = [{"records": [{**ROW, "joined": "2024-01-05T10:00:00+01:00" if i % 2 else "2024-01-05"}]}
              for i in range(20)]

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            return await asyncio.gather(*[client.post("/predict", json=body) for body in bodies])

    assert [r.status_code for r in asyncio.run(send())] == [200] * 20
