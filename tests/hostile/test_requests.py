"""Hostile requests against a live server (uvicorn on 127.0.0.1, as `looml serve` runs it).

Binary-tensor v2 requests (the `Inference-Header-Content-Length` extension) with wrong byte
lengths, negative or huge shapes, wrong datatypes and a declared 10 GB tensor in a small body;
JSON nested 100,000 deep or with 100,000 keys; slow-loris clients holding connections. Each gets
a 4xx quickly, without the server allocating what the request claims (tracemalloc: the server
runs in this process), and the server keeps answering everyone else.
"""

from __future__ import annotations

import json
import socket
import struct
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest

import looml
from liveserver import LiveServer

from .corruptions import clear

INFER = "/v2/models/tiny/infer"
ROWS = 3
GOOD = {"inputs": [{"name": "x1", "shape": [ROWS], "datatype": "FP64", "data": [0.1, 0.2, 0.3]},
                   {"name": "x2", "shape": [ROWS], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]}


@pytest.fixture(scope="module")
def server(shared_project: Path) -> Iterator[LiveServer]:
    folder = shared_project
    clear(folder)
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=120)
    rows = ["x1,x2,label", *(f"{a},{b},{'yes' if a + rng.normal() > 0 else 'no'}" for a, b in zip(
        x1, rng.normal(size=120), strict=True))]
    (folder / "data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = folder / "looml.yaml"
    spec.write_text("seed: 3\ndata: {source: data.csv, target: label}\nsplit: {folds: 2}\n"
                    "models: {candidates: [linear]}\ntuning: {trials: 1}\nregistry: {model_name: tiny}\n",
                    encoding="utf-8")
    looml.run(spec)
    with LiveServer(spec, max_body_bytes=4 * 2**20) as running:
        yield running


def binary(inputs: list[tuple[str, list[int], str, int, bytes]], tail: bytes = b"",
           header: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A binary-tensor request: (name, shape, datatype, declared size, bytes) per input."""
    head = json.dumps({"inputs": [
        {"name": n, "shape": s, "datatype": d, "parameters": {"binary_data_size": size}}
        for n, s, d, size, _ in inputs]}).encode()  # json: orjson refuses integers past 64 bits
    body = head + b"".join(data for *_, data in inputs) + tail
    return body, {"Inference-Header-Content-Length": header if header is not None else str(len(head)),
                  "Content-Type": "application/octet-stream"}


def fp64(values: list[float]) -> bytes:
    return np.asarray(values, dtype="<f8").tobytes()


TEN_GB = 10 * 2**30
BAD_BINARY = {
    "size larger than the body": [("x1", [ROWS], "FP64", 24 + 8, fp64([0.1, 0.2, 0.3])),
                                  ("x2", [ROWS], "FP64", 24, fp64([1, 2, 3]))],
    "size smaller than the data": [("x1", [ROWS], "FP64", 16, fp64([0.1, 0.2, 0.3])),
                                   ("x2", [ROWS], "FP64", 24, fp64([1, 2, 3]))],
    "size not a multiple of the item": [("x1", [ROWS], "FP64", 23, fp64([0.1, 0.2, 0.3])[:23]),
                                        ("x2", [ROWS], "FP64", 24, fp64([1, 2, 3]))],
    "negative size": [("x1", [ROWS], "FP64", -24, fp64([0.1, 0.2, 0.3])),
                      ("x2", [ROWS], "FP64", 24, fp64([1, 2, 3]))],
    "negative shape": [("x1", [-3], "FP64", 24, fp64([0.1, 0.2, 0.3])),
                       ("x2", [ROWS], "FP64", 24, fp64([1, 2, 3]))],
    "huge shape": [("x1", [2**62], "FP64", 24, fp64([0.1, 0.2, 0.3])),
                   ("x2", [2**62, 1], "FP64", 24, fp64([1, 2, 3]))],
    "shape beyond 64 bits": [("x1", [2**70], "FP64", 24, fp64([0.1, 0.2, 0.3])),
                             ("x2", [ROWS], "FP64", 24, fp64([1, 2, 3]))],
    "a declared 10 GB tensor": [("x1", [TEN_GB // 8], "FP64", TEN_GB, fp64([0.1, 0.2, 0.3])),
                                ("x2", [TEN_GB // 8], "FP64", TEN_GB, fp64([1, 2, 3]))],
    "a 10 GB BYTES tensor": [("x1", [ROWS], "BYTES", TEN_GB, struct.pack("<I", 2**31) + b"ab")],
    "an element longer than its tensor": [("x1", [1], "BYTES", 8, struct.pack("<I", 2**32 - 1) + b"abcd")],
    "not UTF-8": [("x1", [1], "BYTES", 6, struct.pack("<I", 2) + b"\xff\xfe")],
    "unknown datatype": [("x1", [ROWS], "FP128", 48, fp64([0.1, 0.2, 0.3]) * 2),
                         ("x2", [ROWS], "COMPLEX", 24, fp64([1, 2, 3]))],
    "integer datatype for the float bytes": [("x1", [ROWS], "INT8", 24, fp64([0.1, 0.2, 0.3])),
                                             ("x2", [ROWS], "FP16", 24, fp64([1, 2, 3]))],
}


@pytest.mark.parametrize("case", list(BAD_BINARY))
def test_a_malformed_binary_tensor_is_a_4xx_without_allocating_what_it_claims(
        server: LiveServer, case: str) -> None:
    body, headers = binary(BAD_BINARY[case])
    tracemalloc.start()
    try:
        answer = server.client.post(INFER, content=body, headers=headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 400 <= answer.status_code < 500, (case, answer.status_code, answer.text)
    assert "error" in answer.json()
    assert peak < 20 * 2**20, f"{case}: {peak / 2**20:.0f} MB traced while answering"


@pytest.mark.parametrize("header", ["0", "-1", "abc", "1e3", "9" * 5000, "99999999999999999999"])
def test_a_hostile_header_length_is_a_400(server: LiveServer, header: str) -> None:
    body, headers = binary([("x1", [ROWS], "FP64", 24, fp64([0.1, 0.2, 0.3])),
                            ("x2", [ROWS], "FP64", 24, fp64([1, 2, 3]))], header=header)

    answer = server.client.post(INFER, content=body, headers=headers)

    assert answer.status_code == 400, answer.text
    assert "Inference-Header-Content-Length" in answer.json()["error"]


def test_a_good_binary_request_still_scores(server: LiveServer) -> None:
    body, headers = binary([("x1", [ROWS], "FP64", 24, fp64([0.1, 0.2, 0.3])),
                            ("x2", [ROWS], "FP64", 24, fp64([1, 2, 3]))])

    answer = server.client.post(INFER, content=body, headers=headers)

    assert answer.status_code == 200, answer.text


DEEP = 100_000
WIDE = {f"k{i}": i for i in range(100_000)}
HOSTILE_JSON = {
    "nested lists": (INFER, b"[" * DEEP + b"]" * DEEP),
    "nested objects": (INFER, b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    "nested inputs": ("/predict", b'{"records": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    "nested invocations": ("/invocations", b'{"dataframe_split": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    "100,000 keys in a record": ("/predict", orjson.dumps({"records": [WIDE]})),
    "100,000 keys at the top": (INFER, orjson.dumps(WIDE)),
    "100,000 columns in dataframe_split": ("/invocations", orjson.dumps(
        {"dataframe_split": {"columns": list(WIDE), "data": [list(WIDE.values())]}})),
    "100,000 inputs": (INFER, orjson.dumps({"inputs": [
        {"name": f"c{i}", "shape": [1], "datatype": "FP64", "data": [1.0]} for i in range(100_000)]})),
}


@pytest.mark.parametrize("case", list(HOSTILE_JSON))
def test_deep_or_wide_json_is_a_4xx_quickly(server: LiveServer, case: str) -> None:
    path, body = HOSTILE_JSON[case]
    start = time.perf_counter()

    answer = server.client.post(path, content=body, headers={"Content-Type": "application/json"})

    assert 400 <= answer.status_code < 500, (case, answer.status_code, answer.text[:500])
    assert time.perf_counter() - start < 2, case  # 100,000 keys took 4.7 s of difflib hints
    assert len(answer.content) < 2**20, f"{case}: a {len(answer.content)}-byte error"


def _slow_clients(address: str, n: int) -> list[socket.socket]:
    """`n` connections that each send part of a request and then hold the line."""
    host, port = address.split(":")
    held = []
    for i in range(n):
        s = socket.create_connection((host, int(port)), timeout=5)
        if i % 2:  # headers never finished
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty")
        else:  # a body promised and never sent
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100000\r\n\r\n{\"records\": [")
        held.append(s)
    return held


def test_slow_clients_holding_connections_do_not_stall_the_others(server: LiveServer) -> None:
    held = _slow_clients(server.address, 200)
    try:
        start = time.perf_counter()
        for _ in range(5):
            assert server.client.get("/v2/health/ready").status_code == 200
            assert server.client.post(INFER, json=GOOD).status_code == 200
        assert time.perf_counter() - start < 5
    finally:
        for s in held:
            s.close()
