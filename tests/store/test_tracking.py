"""Registering in MLflow: the trusted types of the skops file, found without writing it first."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import looml
from looml.store import tracking


def _project(folder: Path) -> Path:
    rng = np.random.default_rng(2)
    x = rng.normal(size=200)
    y = np.where(x + rng.normal(size=200) > 0, "p", "n")
    pd.DataFrame({"x": x, "c": rng.choice(["a", "b"], 200), "y": y}).to_csv(folder / "d.csv", index=False)
    (folder / "looml.yaml").write_text("data: {source: d.csv, target: y}\nsplit: {folds: 2}\n"
                                       "models: {candidates: [linear, lightgbm]}\n"
                                       "registry: {model_name: m}\n")
    return folder / "looml.yaml"


def test_a_type_the_walk_misses_falls_back_to_skops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking, "type_names", lambda obj: [])  # nothing trusted: skops refuses
    result = looml.run(_project(tmp_path))
    pipeline, _ = tracking.load_pipeline(result.tracking_uri, "m", result.model_version)
    assert result.model_version == "1" and result.champion
    assert set(pipeline.predict(pd.DataFrame({"x": [1.0, -1.0], "c": ["a", "b"]}))) <= {"p", "n"}


def test_type_names_follow_state_made_on_the_fly_and_default_factories() -> None:
    from collections import OrderedDict, defaultdict

    class Holder:
        def __getstate__(self) -> dict:
            return {"made": [defaultdict(OrderedDict)], "f": np.log, "t": np.float32}

    names = set(tracking.type_names([Holder(), np.zeros(2), {"k": (1, "s")}]))
    assert {"collections.defaultdict", "collections.OrderedDict", "numpy.log", "numpy.float32",
            "numpy.dtype", "numpy.ndarray"} <= names
    assert not any(n.startswith(("builtins.str", "builtins.int")) for n in names)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_tracking_server_stops_the_run_before_any_work(
        make_project: Callable[..., Path]) -> None:
    import polars as pl

    from looml.errors import RegistryError
    from looml.pipeline import run

    rows = 60
    frame = pl.DataFrame({"x": list(range(rows)), "label": ["a", "b"] * (rows // 2)})
    uri = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    spec = make_project(frame, extra=f"tracking:\n  uri: {uri}\n")
    stages: list[str] = []
    started = time.monotonic()

    with pytest.raises(RegistryError) as caught:
        run(spec, on_start=stages.append)

    assert time.monotonic() - started < 15
    assert stages == []  # not even ingest ran
    problem = caught.value.problems[0]
    assert problem.loc == "tracking.uri" and problem.value == uri
    assert "does not answer" in problem.message and "nothing was trained" in problem.fix


def test_any_http_answer_counts_as_a_reachable_tracking_server() -> None:
    import http.server
    import threading

    from looml.store.tracking import check_reachable

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check_reachable(f"http://127.0.0.1:{server.server_address[1]}")  # 501 to every GET: it answers
        check_reachable("sqlite:///nowhere/mlflow.db")  # a local store is not probed
    finally:
        server.shutdown()
