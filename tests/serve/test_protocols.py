"""Wire formats: every request format of shared/reference/protocols.md, the real tritonclient's
encoder and decoder, MLflow's formats and errors, looml's /predict, and every malformed body."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import orjson
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tritonclient.http as httpclient

import looml
from looml.errors import RequestError
from looml.serve import mlflow_scoring as M
from looml.serve import protocols as P
from looml.serve import wire as W
from looml.serve.model import PipelineScorer, Prediction, ServedModel, load_model
from looml.serve.validation import validate_batch
from looml.store.predictions import row_id

Client = httpclient.InferenceServerClient


def infer_input(name: str, array: np.ndarray, datatype: str, binary: bool = True) -> httpclient.InferInput:
    tensor = httpclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def client_body(inputs: list[httpclient.InferInput], **kwargs: Any) -> tuple[bytes, int | None]:
    """The body and Inference-Header-Content-Length exactly as tritonclient's `infer` builds them."""
    return Client.generate_request_body(inputs, **kwargs)


@contextmanager
def raises(match: str, status: int = 400) -> Iterator[None]:
    """`pytest.raises(RequestError, match=...)` that also checks the HTTP status."""
    with pytest.raises(RequestError, match=match) as info:
        yield
    assert info.value.status == status


# ---------------------------------------------------------------------------------------------
# a real registered model, trained once for this module


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    root = tmp_path_factory.mktemp("project")
    rng = np.random.default_rng(0)
    rows = 240
    tenure = rng.integers(0, 72, rows)
    plan = rng.choice(["basic", "pro", "team"], rows)
    score = -0.04 * tenure + (plan == "basic") + rng.normal(size=rows)
    days = rng.integers(0, 300, rows)
    pl.DataFrame({
        "tenure": tenure, "plan": plan, "charges": rng.gamma(2.0, 30.0, rows).round(2),
        "signup": [str(np.datetime64("2024-01-01") + int(d)) for d in days],
        "label": np.where(score > -0.5, "yes", "no"),
    }).write_csv(root / "data.csv")
    spec = root / "looml.yaml"
    spec.write_text("seed: 3\ndata:\n  source: data.csv\n  target: label\nmodels:\n  candidates: [linear]\n"
                    "split:\n  folds: 3\nregistry:\n  model_name: tiny\n", encoding="utf-8")
    result = looml.run(spec)
    return load_model(result.tracking_uri, result.model_name)


ROWS = {"tenure": [12, 40, 3], "plan": ["pro", "basic", "team"], "charges": [50.5, 20.0, 99.9],
        "signup": ["2024-03-01", "2024-05-01", "2024-08-30"]}


def reference_labels(model: ServedModel) -> np.ndarray:
    return model.pipeline.predict(pd.DataFrame(ROWS))


# ---------------------------------------------------------------------------------------------
# Open Inference Protocol: the recorded wire examples


def test_the_recorded_default_tritonclient_request_binary_input_and_binary_outputs() -> None:
    head = (b'{"inputs":[{"name":"age","shape":[2,1],"datatype":"FP64",'
            b'"parameters":{"binary_data_size":16}}],"parameters":{"binary_data_output":true}}')
    assert len(head) == 137  # the recorded Inference-Header-Content-Length
    body = head + np.array([34.0, 22.0], dtype="<f8").tobytes()
    request = P.parse_infer_request(body, 137)
    assert request.id is None and request.outputs is None
    assert request.binary_outputs == {"predict", "predict_proba"}
    np.testing.assert_array_equal(request.inputs["age"], [34.0, 22.0])
    assert request.inputs["age"].flags.writeable
    # the real client builds the same bytes
    built, length = client_body([infer_input("age", np.array([[34.0], [22.0]]), "FP64")])
    assert (built, length) == (body, 137)
    assert P.parse_infer_request(body, "137").inputs.keys() == {"age"}  # the header's text works too


def test_the_recorded_json_only_tritonclient_request() -> None:
    body = (b'{"id":"abc","inputs":[{"name":"age","shape":[2,1],"datatype":"FP64","data":[34.0,22.0]}],'
            b'"outputs":[{"name":"predict","parameters":{"binary_data":false}}]}')
    request = P.parse_infer_request(body, None)
    assert request.id == "abc" and request.outputs == ("predict",) and request.binary_outputs == frozenset()
    np.testing.assert_array_equal(request.inputs["age"], [34.0, 22.0])
    built, length = client_body([infer_input("age", np.array([[34.0], [22.0]]), "FP64", binary=False)],
                                outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)],
                                request_id="abc")
    assert length is None and orjson.loads(built) == orjson.loads(body)


def test_the_mlserver_pandas_codec_request_is_one_input_per_column() -> None:
    body = orjson.dumps({"parameters": {"content_type": "pd"}, "inputs": [
        {"name": "First Name", "datatype": "BYTES", "parameters": {"content_type": "str"}, "shape": [2],
         "data": ["Joanne", "Michael"]},
        {"name": "Age", "datatype": "INT32", "shape": [2], "data": [34, 22]}]})
    request = P.parse_infer_request(body)
    assert request.parameters == {"content_type": "pd"}
    assert request.inputs["First Name"] == ["Joanne", "Michael"]
    assert request.inputs["Age"].dtype == np.int32 and request.inputs["Age"].tolist() == [34, 22]


def test_the_spec_example_is_refused_with_both_problems_at_once() -> None:
    body = orjson.dumps({"id": "42", "inputs": [
        {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
        {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True]}],
        "outputs": [{"name": "output0"}]})
    with pytest.raises(RequestError, match=r"2 problems") as info:
        P.parse_infer_request(body)
    text = str(info.value)
    assert re.search(r"inputs\[0\] \('input0'\)\.shape: looml takes one input per column, with shape \[n\] "
                     r"or \[n, 1\] for n rows \(got \[2, 2\]\)", text)
    assert "inputs[1] ('input1').data: 1 values, but the shape says 3 rows" in text


# ---------------------------------------------------------------------------------------------
# Open Inference Protocol: every datatype through the real client's encoder

NUMERIC = {"BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
           "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
           "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", list(NUMERIC))
def test_every_numeric_datatype_from_tritonclient(datatype: str, binary: bool) -> None:
    values = np.array([[1], [0], [1]], dtype=NUMERIC[datatype]) if datatype == "BOOL" \
        else np.array([[3], [0], [100]], dtype=NUMERIC[datatype])
    body, length = client_body([infer_input("x", values, datatype, binary)])
    got = P.parse_infer_request(body, length).inputs["x"]
    assert got.dtype == values.dtype and got.shape == (3,)
    np.testing.assert_array_equal(got, values.ravel())


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_bytes_from_tritonclient_become_strings(binary: bool) -> None:
    values = np.array(["pro", "Zürich", "", "a,b"], dtype=object)
    as_bytes = np.array([v.encode() for v in values], dtype=object)
    body, length = client_body([infer_input("city", values, "BYTES", binary),
                                infer_input("raw", as_bytes, "BYTES", binary)])
    request = P.parse_infer_request(body, length)
    assert request.inputs["city"] == request.inputs["raw"] == ["pro", "Zürich", "", "a,b"]


def test_binary_and_json_inputs_mixed_in_one_request_keep_their_order() -> None:
    inputs = [infer_input("a", np.array([1.5, 2.5]), "FP64", True),
              infer_input("b", np.array(["x", "y"], dtype=object), "BYTES", False),
              infer_input("c", np.array(["long text", "z"], dtype=object), "BYTES", True),
              infer_input("d", np.array([7, 8], dtype=np.int32), "INT32", True)]
    outputs = [httpclient.InferRequestedOutput("predict_proba"),
               httpclient.InferRequestedOutput("predict", binary_data=False)]
    body, length = client_body(inputs, outputs=outputs, request_id="r-9", parameters={"custom": 1})
    request = P.parse_infer_request(body, length)
    assert request.id == "r-9" and request.parameters == {"custom": 1}
    assert request.outputs == ("predict_proba", "predict") and request.binary_outputs == {"predict_proba"}
    assert request.inputs["a"].tolist() == [1.5, 2.5] and request.inputs["b"] == ["x", "y"]
    assert request.inputs["c"] == ["long text", "z"] and request.inputs["d"].tolist() == [7, 8]


def test_json_data_nested_by_row_nulls_and_numeric_text_are_read() -> None:
    body = orjson.dumps({"inputs": [
        {"name": "a", "shape": [3, 1], "datatype": "FP64", "data": [[1.0], [None], [3.0]]},
        {"name": "b", "shape": [3], "datatype": "INT64", "data": [1, None, 3]},
        {"name": "c", "shape": [3], "datatype": "INT64", "data": [1.5, 2, 3]},
        {"name": "d", "shape": [3], "datatype": "FP32", "data": ["1.5", 2, 3]},
        {"name": "e", "shape": [3], "datatype": "BOOL", "data": [True, None, False]}]})
    got = P.parse_infer_request(body).inputs
    assert np.isnan(got["a"][1]) and got["a"][2] == 3.0
    assert got["b"].dtype == np.float64 and np.isnan(got["b"][1])  # null in integers: missing
    assert got["c"].tolist() == [1.5, 2.0, 3.0]  # fractions in INT64 data are never truncated
    assert got["d"].dtype == np.float32 and got["d"].tolist() == [1.5, 2.0, 3.0]
    assert got["e"] == [True, None, False]


# ---------------------------------------------------------------------------------------------
# Open Inference Protocol: malformed requests


@pytest.mark.parametrize(("body", "match"), [
    (b"", r"body: empty: the request needs a JSON body"),
    (b"{nope", r"body: not valid JSON: unexpected character"),
    (b"[1, 2]", r"body: a JSON list, not an object"),
    (b"{}", r"inputs: missing or empty: the request needs one input per feature column"),
    (b'{"inputs": [3]}', r"inputs\[0\]: a JSON number, not an input object"),
    (b'{"inputs": [{"shape": [1], "datatype": "FP64", "data": [1]}]}', r"inputs\[0\]\.name: missing"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "BF16", "data": [1]}]}',
     r"inputs\[0\] \('a'\)\.datatype: not a datatype looml reads; one of BOOL, UINT8"),
    (b'{"inputs": [{"name": "a", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}',
     r"looml takes one input per column, with shape \[n\] or \[n, 1\]"),
    (b'{"inputs": [{"name": "a", "shape": "2", "datatype": "FP64", "data": [1, 2]}]}',
     r"\.shape: looml takes one input per column"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64"}]}',
     r"inputs\[0\] \('a'\)\.data: missing"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": 5}]}',
     r"must be a list of values"),
    (b'{"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [[1, 2], [3]]}]}',
     r"nested lists must hold one value per row"),
    (b'{"inputs": [{"name": "a", "shape": [3], "datatype": "FP64", "data": [1, "x", "y"]}]}',
     r"data rows 1, 2: not numbers, and the datatype is FP64: 'x', 'y' \(2 rows\)"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "BOOL", "data": [2]}]}',
     r"BOOL data must be true or false: 2"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": [["x", "y"]]}]}',
     r"nested lists must hold one value per row"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": [[["x"]]]}]}',
     r"data row 0: holds lists or objects, not single values: \['x'\]"),
    (b'{"inputs": [{"name": "a", "shape": [2], "datatype": "BYTES", "data": ["x", {"k": 1}]}]}',
     r"data row 1: holds lists or objects, not single values: \{'k': 1\}"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]},'
     b' {"name": "a", "shape": [1], "datatype": "FP64", "data": [2]}]}',
     r"inputs\[1\] \('a'\)\.name: a second input with this name"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]},'
     b' {"name": "b", "shape": [2], "datatype": "FP64", "data": [1, 2]}]}',
     r"inputs: the inputs have different numbers of rows: a 1, b 2"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1],'
     b' "parameters": {"shared_memory_region": "r"}}]}', r"shared memory is not supported"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1], "parameters": 3}]}',
     r"inputs\[0\] \('a'\)\.parameters: must be a JSON object"),
    (b'{"id": [1], "inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}]}',
     r"id: must be a string"),
    (b'{"parameters": {"binary_data_output": "yes"}, "inputs": [{"name": "a", "shape": [1],'
     b' "datatype": "FP64", "data": [1]}]}', r"parameters\.binary_data_output: must be true or false"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}], "outputs": {"name": "x"}}',
     r"outputs: must be a list"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}], "outputs": [{}]}',
     r"outputs\[0\]\.name: missing"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}],'
     b' "outputs": [{"name": "predict", "parameters": {"binary_data": 1}}]}',
     r"outputs\[0\]\.parameters\.binary_data: must be true or false"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 8}}]}',
     r"binary data, but the request has no Inference-Header-Content-Length header"),
])
def test_malformed_json_requests_are_400_naming_the_field(body: bytes, match: str) -> None:
    with raises(match):
        P.parse_infer_request(body)


def test_every_bad_input_is_reported_at_once() -> None:
    body = orjson.dumps({"inputs": [
        {"name": "a", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]},
        {"name": "b", "shape": [1], "datatype": "COMPLEX", "data": [1]},
        {"name": "c", "shape": [1], "datatype": "FP64", "data": ["x"]}]})
    with pytest.raises(RequestError, match="3 problems") as info:
        P.parse_infer_request(body)
    assert [p.loc for p in info.value.problems] == ["inputs[0] ('a').shape", "inputs[1] ('b').datatype",
                                                    "inputs[2] ('c').data row 0"]


def binary_request(tensors: list[tuple[str, str, list[int], bytes]], extra: bytes = b"") -> tuple[bytes, int]:
    head = orjson.dumps({"inputs": [{"name": n, "datatype": d, "shape": s,
                                     "parameters": {"binary_data_size": len(raw)}}
                                    for n, d, s, raw in tensors]})
    return head + b"".join(raw for *_, raw in tensors) + extra, len(head)


@pytest.mark.parametrize(("tensors", "extra", "match"), [
    ([("a", "FP64", [2], b"\0" * 12)], b"", r"binary_data_size: 2 rows of FP64 take 16 bytes \(got 12\)"),
    ([("a", "FP64", [1], b"\0" * 8)], b"\0\0", r"body: 2 bytes after the last input's binary data"),
    ([("a", "BYTES", [1], struct.pack("<I", 9) + b"abc")], b"",
     r"unreadable BYTES tensor: an element runs past the input's binary_data_size"),
    ([("a", "BYTES", [1], struct.pack("<I", 2) + b"\xff\xfe")], b"",
     r"unreadable BYTES tensor: an element is not valid UTF-8"),
    ([("a", "BYTES", [2], struct.pack("<I", 1) + b"x")], b"",
     r"binary data: 1 elements, but the shape says 2 rows"),
    ([("a", "BYTES", [1], b"\1\0")], b"", r"unreadable BYTES tensor: unpack_from requires a buffer"),
])
def test_malformed_binary_tensors_are_400(tensors: list[Any], extra: bytes, match: str) -> None:
    body, length = binary_request(tensors, extra)
    with raises(match):
        P.parse_infer_request(body, length)


def test_a_binary_size_beyond_the_body_and_a_bad_header_length_are_400() -> None:
    body, length = binary_request([("a", "FP64", [1], b"\0" * 8)])
    with raises(r"binary_data_size: reaches byte 8 of the binary part, which holds 4"):
        P.parse_infer_request(body[:-4], length)
    for bad in ("abc", 0, len(body) + 1, "-1", "²", "9" * 5000):  # the last two: isdigit(), not int()
        with raises(r"headers\.Inference-Header-Content-Length: must be the length in bytes of the JSON "
                    rf"part, from 1 to the body's {len(body)} bytes"):
            P.parse_infer_request(body, bad)
    with raises(r"binary_data_size: must be a whole number of bytes \(got -1\)"):
        P.parse_infer_request(b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64",'
                              b' "parameters": {"binary_data_size": -1}}]}')
    head = (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1],'
            b' "parameters": {"binary_data_size": 8}}]}')
    with raises(r'has both "data" and parameters\.binary_data_size'):
        P.parse_infer_request(head + b"\0" * 8, len(head))


# ---------------------------------------------------------------------------------------------
# Open Inference Protocol: outputs and responses, read back by tritonclient's own InferResult


def decode(body: bytes, headers: dict[str, str]) -> httpclient.InferResult:
    length = headers.get(P.BINARY_HEADER)
    return Client.parse_response_body(body, header_length=int(length) if length else None)


def test_select_outputs_defaults_to_all_and_names_unknown_ones() -> None:
    request = P.parse_infer_request(b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64",'
                                    b' "data": [1]}], "outputs": [{"name": "predict"},'
                                    b' {"name": "predict_prob"}, {"name": "labels"}]}')
    with pytest.raises(RequestError, match=r"2 problems") as info:
        P.select_outputs(request, [P.PREDICT, P.PREDICT_PROBA])
    text = str(info.value)
    assert ("outputs: not an output of this model (got 'predict_prob')\n"
            "    fix: did you mean 'predict_proba'? available: predict, predict_proba") in text
    assert "(got 'labels')\n    fix: available: predict, predict_proba" in text
    everything = P.parse_infer_request(b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64",'
                                       b' "data": [1]}]}')
    assert P.select_outputs(everything, ["predict"]) == ["predict"]


@pytest.mark.parametrize("binary", [set(), {"predict"}, {"predict_proba"}, {"predict", "predict_proba"}])
def test_responses_decode_with_tritonclient_json_binary_or_mixed(binary: set[str]) -> None:
    labels = np.array(["yes", "no", "héllo"], dtype=object)
    proba = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]])
    outputs = {"predict": labels, "predict_proba": proba}
    body, headers = P.encode_infer_response("m", "3", "r1", outputs, binary)
    assert (P.BINARY_HEADER in headers) == bool(binary)
    result = decode(body, headers)
    got = result.as_numpy("predict")
    assert got.shape == (3,)
    assert [v.decode() if isinstance(v, bytes) else v for v in got] == ["yes", "no", "héllo"]
    np.testing.assert_array_equal(result.as_numpy("predict_proba"), proba)
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("m", "3", "r1")
    assert [(o["name"], o["datatype"], o["shape"]) for o in response["outputs"]] == [
        ("predict", "BYTES", [3]), ("predict_proba", "FP64", [3, 2])]


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize(("labels", "datatype"), [
    (np.array([0, 2, 1]), "INT64"), (np.array([0, 2, 1], dtype=np.int32), "INT64"),
    (np.array([1.5, -2.0, 3.25]), "FP64"), (np.array([1.5, -2.0, 3.25], dtype=np.float32), "FP64"),
    (np.array([True, False, True]), "BOOL"), (np.array(["a", "b", "c"]), "BYTES"),
])
def test_label_datatypes_round_trip(labels: np.ndarray, datatype: str, binary: bool) -> None:
    body, headers = P.encode_infer_response("m", None, None, {"predict": labels},
                                            {"predict"} if binary else set())
    result = decode(body, headers)
    output = result.get_output("predict")
    assert output["datatype"] == datatype and "model_version" not in result.get_response()
    assert "id" not in result.get_response()
    got = result.as_numpy("predict")
    if datatype == "BYTES":
        got = np.array([v.decode() if isinstance(v, bytes) else v for v in got])
    np.testing.assert_array_equal(got, labels)


def test_response_parameters_nan_and_an_empty_output() -> None:
    body, headers = P.encode_infer_response("m", "1", "x", {"predict": np.array([1.0, np.nan]),
                                                            "predict_proba": np.empty((0, 2))},
                                            {"predict_proba"}, parameters={"warnings": "w"})
    assert headers["Content-Type"] == "application/octet-stream"
    result = decode(body, headers)
    assert result.get_response()["parameters"] == {"warnings": "w"}
    assert result.get_output("predict")["data"] == [1.0, None]  # NaN is null in JSON
    assert result.as_numpy("predict_proba").shape == (0, 2)


def test_metadata_describes_the_model_and_the_server(model: ServedModel) -> None:
    meta = P.model_metadata(model)
    assert meta == {
        "name": "tiny", "versions": [model.version], "platform": "looml-sklearn",
        "inputs": [{"name": "tenure", "datatype": "FP64", "shape": [-1, 1]},
                   {"name": "plan", "datatype": "BYTES", "shape": [-1, 1],
                    "parameters": {"content_type": "str"}},
                   {"name": "charges", "datatype": "FP64", "shape": [-1, 1]},
                   {"name": "signup", "datatype": "BYTES", "shape": [-1, 1],
                    "parameters": {"content_type": "str"}}],
        "outputs": [{"name": "predict", "datatype": "BYTES", "shape": [-1]},
                    {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2],
                     "parameters": {"classes": '["no","yes"]'}}],
        "parameters": {"scorer": model.scorer.name}}
    assert model.scorer.name == "compiled:linear" and model.fallback is None  # the logistic model, compiled
    assert P.available_outputs(model) == ["predict", "predict_proba"]
    fallback = dataclasses.replace(model, scorer=PipelineScorer(model.pipeline, model.features),
                                   fallback="no compiled form of KNeighborsClassifier")
    assert P.model_metadata(fallback)["parameters"] == {
        "scorer": "pipeline", "scorer_fallback": "no compiled form of KNeighborsClassifier"}
    assert P.server_metadata() == {"name": "looml", "version": looml.__version__,
                                   "extensions": ["binary_tensor_data"]}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_tritonclient_request_end_to_end_matches_the_pipeline(model: ServedModel, binary: bool) -> None:
    inputs = [infer_input("tenure", np.array(ROWS["tenure"], dtype=np.int64).reshape(-1, 1), "INT64", binary),
              infer_input("plan", np.array(ROWS["plan"], dtype=object).reshape(-1, 1), "BYTES", binary),
              infer_input("charges", np.array(ROWS["charges"]), "FP64", binary),
              infer_input("signup", np.array(ROWS["signup"], dtype=object), "BYTES", binary)]
    body, length = client_body(inputs, request_id="e2e")
    request = P.parse_infer_request(body, length)
    assert validate_batch(request.inputs, model, 100) == []
    prediction = model.predict(request.inputs)
    outputs = P.prediction_outputs(prediction)
    names = P.select_outputs(request, P.available_outputs(model))
    response, headers = P.encode_infer_response(model.name, model.version, request.id,
                                                {n: outputs[n] for n in names}, request.binary_outputs)
    result = decode(response, headers)
    got = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict")]
    assert got == reference_labels(model).tolist()
    np.testing.assert_allclose(result.as_numpy("predict_proba"),
                               model.pipeline.predict_proba(pd.DataFrame(ROWS)))


def test_the_oip_error_body_carries_the_message_tritonclient_shows() -> None:
    try:
        P.parse_infer_request(b"{}")
    except RequestError as exc:
        doc = orjson.loads(P.infer_error_body(exc))
    assert doc["error"].startswith("invalid request: 1 problem\n  - inputs: missing or empty")
    assert doc["problems"][0]["loc"] == "inputs"


# ---------------------------------------------------------------------------------------------
# MLflow /invocations

MLFLOW_BODIES = {
    "dataframe_split": {"dataframe_split": {"columns": ["age", "city"], "data": [[34.0, "a"], [22.0, "b"]]}},
    "dataframe_split with index": {"dataframe_split": {"index": [5, 6], "columns": ["age", "city"],
                                                       "data": [[34.0, "a"], [22.0, "b"]]}},
    "dataframe_records": {"dataframe_records": [{"age": 34.0, "city": "a"}, {"age": 22.0, "city": "b"}]},
    "instances": {"instances": [{"age": 34.0, "city": "a"}, {"age": 22.0, "city": "b"}]},
    "instances as lists": {"instances": [[34.0, "a"], [22.0, "b"]]},
    "inputs": {"inputs": {"age": [34.0, 22.0], "city": ["a", "b"]}},
    "inputs as records": {"inputs": [{"age": 34.0, "city": "a"}, {"age": 22.0, "city": "b"}]},
    "inputs as lists": {"inputs": [[34.0, "a"], [22.0, "b"]]},
}


@pytest.mark.parametrize("name", list(MLFLOW_BODIES))
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON;charset=UTF-8", None])
def test_every_mlflow_json_format_gives_the_same_batch(name: str, content_type: str | None) -> None:
    batch, params = M.parse_invocations(orjson.dumps(MLFLOW_BODIES[name]), content_type, ["age", "city"])
    assert batch == {"age": [34.0, 22.0], "city": ["a", "b"]} and params is None


def test_mlflow_csv_and_parquet_bodies() -> None:
    batch, params = M.parse_invocations(b"age,city\n34.0,a\n22.0,b\n", "text/csv")
    assert batch == {"age": ["34.0", "22.0"], "city": ["a", "b"]} and params is None
    csv_text = pd.DataFrame({"age": [34.0, None], "city": ["a, b", "c"]}).to_csv(index=False)
    batch, _ = M.parse_invocations(("\ufeff" + csv_text).encode(), "text/csv; charset=utf-8")
    assert batch == {"age": ["34.0", None], "city": ["a, b", "c"]}
    assert M.parse_invocations(b"age,city\n", "text/csv")[0] == {"age": [], "city": []}
    sink = io.BytesIO()
    pq.write_table(pa.table({"age": [34.0, 22.0], "city": ["a", "b"]}), sink)
    batch, _ = M.parse_invocations(sink.getvalue(), "application/vnd.apache.parquet")
    assert batch == {"age": [34.0, 22.0], "city": ["a", "b"]}


def test_mlflow_params_single_rows_and_single_feature_tensors() -> None:
    body = orjson.dumps({"inputs": {"age": 34.0, "city": "a"}, "params": {"threshold": 0.3}})
    assert M.parse_invocations(body, "application/json") == (
        {"age": [34.0], "city": ["a"]}, {"threshold": 0.3})
    assert M.parse_invocations(b'{"instances": [1.0, 2.0]}', None, ["age"])[0] == {"age": [1.0, 2.0]}
    assert M.parse_invocations(b'{"dataframe_records": [{"a": 1}, {"b": 2}]}', None)[0] == {
        "a": [1, None], "b": [None, 2]}


@pytest.mark.parametrize(("content_type", "message"), [
    ("text/plain", "This predictor only supports the following content types: Types: ['text/csv', "
                   "'application/json', 'application/vnd.apache.parquet']. Got 'text/plain'."),
    ("application/x-www-form-urlencoded", "This predictor only supports the following content types: "
     "Types: ['text/csv', 'application/json', 'application/vnd.apache.parquet']. "
     "Got 'application/x-www-form-urlencoded'."),
    ("application/json; charset=latin-1", "The scoring server only supports UTF-8"),
    ("application/json; format=pandas-split", "Unrecognized content type parameters: format. The MLflow "
                                              "scoring protocol changed in MLflow 2.0"),
])
def test_other_media_types_and_charsets_are_415_with_mlflows_message(content_type: str, message: str) -> None:
    with pytest.raises(RequestError, match=re.escape(message)) as info:
        M.parse_invocations(b"{}", content_type)
    assert info.value.status == 415
    body, media_type = M.mlflow_error(info.value)
    assert media_type == "text/plain" and body.decode().startswith(message)


@pytest.mark.parametrize(("body", "match"), [
    (b'[{"age": 1}]', r"The input must be a JSON dictionary with exactly one of the input fields "
                      r"\{'dataframe_split', 'dataframe_records', 'instances', 'inputs'\}\. "
                      r"Received a list\."),
    (b'{"data": [[1, 2]]}', r"exactly one of the input fields .*\. Received dictionary with input fields: "
                            r"\['data'\]\."),
    (b'{"instances": [], "inputs": []}', r"Received dictionary with input fields: \['instances', 'inputs'\]"),
    (b'{"inputs": {"a": [1]}, "params": 3}', r"params: must be a JSON object"),
    (b'{"dataframe_split": [1]}', r"dataframe_split: a JSON list, not an object"),
    (b'{"dataframe_split": {"data": [[1]]}}', r"dataframe_split\.columns: must be the list of column names"),
    (b'{"dataframe_split": {"columns": ["a"], "data": [1]}}',
     r"dataframe_split\.data: must be a list of rows"),
    (b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3], [4, 5, 6]]}}',
     r"dataframe_split\.data rows 1, 2: rows whose number of values differs from the columns \(2\); "
     r"value counts: 1, 3 \(2 rows\)"),
    (b'{"dataframe_records": {"a": 1}}', r"dataframe_records: a JSON object, not a list of records"),
    (b'{"dataframe_records": [{"a": 1}, 2, "x"]}',
     r"dataframe_records rows 1, 2: rows that are not JSON objects; found: 'number', 'string'"),
    (b'{"instances": [[1, 2]]}', r"instances: rows given as plain lists need the model's feature order"),
    (b'{"inputs": {"a": [1, 2], "b": [3]}}', r"inputs: the columns have different lengths: a 2, b 1"),
    (b'{"inputs": {"a": [1, 2], "b": 3}}', r"inputs\.b: every column must be a list of values \(not: 'b'\)"),
    (b'not json', r"body: not valid JSON"),
])
def test_malformed_mlflow_bodies_are_400(body: bytes, match: str) -> None:
    with raises(match):
        M.parse_invocations(body, "application/json")


def test_rows_of_the_wrong_width_against_the_models_features() -> None:
    with raises(r"inputs row 0: rows whose number of values differs from the model's 2 features "
                r"\(age, city\)"):
        M.parse_invocations(b'{"inputs": [[1, "a", 3]]}', None, ["age", "city"])


@pytest.mark.parametrize(("body", "content_type", "match"), [
    (b"", "text/csv", r"body: the CSV has no header row"),
    (b"a,b\n1,2\n3\n", "text/csv", r"body row 1: CSV rows \(counted after the header\) whose number of "
                                   r"fields differs from the header's 2; field counts: 1 \(1 row\)"),
    (b"a\n\xff\n", "text/csv", r"body: not UTF-8 text"),
    (b"PAR1 nope", "application/vnd.apache.parquet", r"body: not a readable Parquet file"),
])
def test_malformed_csv_and_parquet_are_400(body: bytes, content_type: str, match: str) -> None:
    with raises(match):
        M.parse_invocations(body, content_type)


def test_mlflow_error_bodies_and_the_predictions_response() -> None:
    with pytest.raises(RequestError) as info:
        M.parse_invocations(b'{"data": 1}', "application/json")
    doc = orjson.loads(M.mlflow_error_body(info.value))
    assert doc["error_code"] == "BAD_REQUEST" and "Received dictionary with input fields" in doc["message"]
    schema_error = RequestError("columns.age: missing", status=422)
    assert orjson.loads(M.mlflow_error_body(schema_error))["error_code"] == "INVALID_PARAMETER_VALUE"
    assert M.mlflow_error(schema_error)[1] == "application/json"
    assert orjson.loads(M.mlflow_error_body(RequestError("x", status=503)))["error_code"] == "INTERNAL_ERROR"
    prediction = Prediction(labels=np.array(["yes", "no"], dtype=object), proba=np.array([[0.2, 0.8]] * 2))
    assert M.encode_invocations_response(prediction) == b'{"predictions":["yes","no"]}'
    assert M.encode_invocations_response(Prediction(labels=np.array([1, 0]))) == b'{"predictions":[1,0]}'


@pytest.mark.parametrize("name", ["dataframe_split", "instances as lists", "inputs"])
def test_an_mlflow_request_end_to_end_matches_the_pipeline(model: ServedModel, name: str) -> None:
    columns = list(ROWS)
    bodies = {"dataframe_split": {"dataframe_split": {"columns": columns, "data": list(map(list, zip(
        *ROWS.values(), strict=True)))}},
              "instances as lists": {"instances": list(map(list, zip(*ROWS.values(), strict=True)))},
              "inputs": {"inputs": ROWS}}
    batch, _ = M.parse_invocations(orjson.dumps(bodies[name]), "application/json", list(model.features))
    assert validate_batch(batch, model, 100) == []  # every shape parses into the columns training saw
    body = M.encode_invocations_response(model.predict(batch))
    assert orjson.loads(body) == {"predictions": reference_labels(model).tolist()}


def test_an_mlflow_csv_request_end_to_end_matches_the_pipeline(model: ServedModel) -> None:
    text = pd.DataFrame(ROWS).to_csv(index=False).encode()
    batch, _ = M.parse_invocations(text, "text/csv", list(model.features))
    assert validate_batch(batch, model, 100) == []
    assert orjson.loads(M.encode_invocations_response(model.predict(batch)))["predictions"] == \
        reference_labels(model).tolist()


# ---------------------------------------------------------------------------------------------
# looml /predict


def test_records_canonical_and_bare_list() -> None:
    canonical = P.parse_records(b'{"records": [{"age": 34, "city": "a"}, {"age": 22, "city": "b"}]}')
    bare = P.parse_records(b'[{"age": 34, "city": "a"}, {"age": 22, "city": "b"}]')
    assert canonical == bare == {"age": [34, 22], "city": ["a", "b"]}
    assert P.parse_records(b'[{"age": 34}, {"age": null}]') == {"age": [34, None]}


@pytest.mark.parametrize(("body", "match"), [
    (b'{"rows": []}', r"body: no 'records' key \(got keys: \['rows'\]\)"),
    (b'{"records": {"age": 1}}', r"records: a JSON object, not a list of records"),
    (b'[{"age": 1}, [1]]', r"records row 1: rows that are not JSON objects; found: 'list' \(1 row\)"),
    (b'"x"', r"records: a JSON string, not a list of records"),
    (b'{"records": []}', r"records: no records: the list is empty"),  # not "every column is missing"
    (b'[]', r"records: no records"),
])
def test_malformed_records_are_400(body: bytes, match: str) -> None:
    with raises(match):
        P.parse_records(body)


def test_the_predict_response_has_a_row_id_per_row(model: ServedModel) -> None:
    batch = P.parse_records(orjson.dumps({"records": [dict(zip(ROWS, row, strict=True))
                                                      for row in zip(*ROWS.values(), strict=True)]}))
    warnings = validate_batch(batch, model, 100)
    prediction = model.predict(batch)
    doc = orjson.loads(P.encode_predict_response(model, "req7", prediction, warnings))
    assert (doc["request_id"], doc["model_name"], doc["model_version"]) == ("req7", "tiny", model.version)
    assert doc["warnings"] == []
    rows = doc["predictions"]
    assert [r["row_id"] for r in rows] == [row_id("req7", i) for i in range(3)] == \
        ["req7:0", "req7:1", "req7:2"]
    assert [r["prediction"] for r in rows] == reference_labels(model).tolist()
    expected = model.pipeline.predict_proba(pd.DataFrame(ROWS))
    for row, probs in zip(rows, expected, strict=True):
        assert list(row["probabilities"]) == ["no", "yes"]
        np.testing.assert_allclose(list(row["probabilities"].values()), probs)


def test_the_predict_response_of_a_regressor_and_of_boolean_classes() -> None:
    regressor = ServedModel(name="r", version="2", run_id="x", task="regression", features={"a": "numeric"},
                            classes=None, pipeline=None, scorer=PipelineScorer(None, {"a": "numeric"}))
    doc = orjson.loads(P.encode_predict_response(regressor, "q", Prediction(labels=np.array([1.5])), ["w"]))
    assert doc["predictions"] == [{"row_id": "q:0", "prediction": 1.5}] and doc["warnings"] == ["w"]
    assert P.model_metadata(regressor)["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    flags = ServedModel(name="b", version="1", run_id="x", task="classification", features={"a": "numeric"},
                        classes=[False, True], pipeline=None, scorer=PipelineScorer(None, {"a": "numeric"}))
    doc = orjson.loads(P.encode_predict_response(flags, "q", Prediction(
        labels=np.array([True]), proba=np.array([[0.25, 0.75]]))))
    assert doc["predictions"] == [{"row_id": "q:0", "prediction": True,
                                   "probabilities": {"false": 0.25, "true": 0.75}}]
    assert P.model_metadata(flags)["outputs"][0]["datatype"] == "BOOL"
    assert P.model_metadata(flags)["outputs"][1]["parameters"] == {"classes": "[false,true]"}
    numbered = dataclasses.replace(flags, classes=list(np.array([3, 1, 2])))
    assert json.loads(P.model_metadata(numbered)["outputs"][1]["parameters"]["classes"]) == [3, 1, 2]


def test_a_body_over_the_limit_is_413() -> None:
    W.check_body_size(1024, 1024)
    with raises(r"body: 1025 bytes, more than the server's limit of 1024", status=413):
        W.check_body_size(1025, 1024)
