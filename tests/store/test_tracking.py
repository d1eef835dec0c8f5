"""Registering in MLflow: the trusted types of the skops file, found without writing it first."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import looml
from looml.store import tracking, versions
from looml.store.params import settings_params


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
    pipeline, _ = versions.load_pipeline(result.tracking_uri, "m", result.model_version)
    assert result.model_version == "1" and result.champion
    assert set(pipeline.predict(pd.DataFrame({"x": [1.0, -1.0], "c": ["a", "b"]}))) <= {"p", "n"}


def test_a_model_that_cannot_answer_its_input_example_is_not_registered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    from looml.errors import RegistryError
    from looml.store import pyfunc

    def refuse(self: object, data: pd.DataFrame, params: dict | None = None) -> None:
        raise ValueError(f"cannot read column 'x' of {len(data)} rows")

    monkeypatch.setattr(pyfunc._Pyfunc, "predict", refuse)
    with pytest.raises(RegistryError) as caught:
        looml.run(_project(tmp_path))

    problem = caught.value.problems[0]
    assert problem.value == "m" and "input example" in problem.message
    assert "cannot read column 'x'" in problem.message
    client = MlflowClient(f"sqlite:///{tmp_path / '.looml' / 'mlflow.db'}")
    assert client.search_model_versions("name = 'm'") == []
    assert [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])] == []


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

    from looml.store.connect import check_reachable

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check_reachable(f"http://127.0.0.1:{server.server_address[1]}")  # 501 to every GET: it answers
        check_reachable("sqlite:///nowhere/mlflow.db")  # a local store is not probed
    finally:
        server.shutdown()


def test_a_store_another_process_keeps_locked_stops_the_run_before_any_work(
        make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    import polars as pl

    from looml.errors import RegistryError
    from looml.pipeline import run
    from looml.store import connect

    frame = pl.DataFrame({"x": [i % 7 for i in range(60)], "label": ["a", "b"] * 30})
    spec = make_project(frame)
    first = run(spec)
    monkeypatch.setattr(connect, "LOCK_WAIT_S", 0.5)
    holder = sqlite3.connect(first.tracking_uri.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process mid-write (a script, a database tool)
    stages: list[str] = []
    try:
        with pytest.raises(RegistryError) as caught:
            run(spec, force=True, on_start=stages.append)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert stages == []  # not even ingest ran
    problem = caught.value.problems[0]
    assert problem.loc == "tracking.uri" and problem.value == first.tracking_uri
    assert "locked by another process" in problem.message and "nothing was changed" in problem.message
    assert run(spec).model_version == "1"  # once it is free: the cached run, nothing lost


def test_mlflows_database_is_locked_names_the_store_and_other_errors_pass() -> None:
    import sqlalchemy.exc

    from looml.errors import RegistryError
    from looml.store.connect import names_the_store

    @names_the_store
    def read(tracking_uri: str, error: Exception) -> None:
        raise error

    locked = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("database is locked"))
    with pytest.raises(RegistryError, match="tracking store is locked by another process") as caught:
        read("sqlite:////p/mlflow.db", locked)
    assert caught.value.problems[0].value == "sqlite:////p/mlflow.db"
    with pytest.raises(ValueError, match="something else"):
        read("sqlite:////p/mlflow.db", ValueError("something else"))


def test_the_run_is_named_after_the_model_the_winner_and_the_data_and_logs_every_setting(
        tmp_path: Path) -> None:
    from mlflow import MlflowClient

    spec = _project(tmp_path)
    spec.write_text(spec.read_text() + "alerts:\n  webhook_url: https://hooks.example.com/T01/B02/s3cret\n"
                    "  headers: {Authorization: Bearer abc123}\n  retries: 5\n")
    result = looml.run(spec)

    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.info.run_name == f"m-{result.best_model}-{result.data_digest[:8]}"
    params = run.data.params
    assert params["spec.alerts.retries"] == "5" and params["spec.seed"] == "42"
    assert params["spec.split.folds"] == "2" and params["spec.registry.model_name"] == "m"
    assert (params["spec.models.candidates.0.name"], params["spec.models.candidates.1.name"]) == (
        "linear", "lightgbm")
    assert params["spec.data.source.path"] == "d.csv"
    assert params["spec.alerts.webhook_url"] == "***" and params["spec.alerts.headers.Authorization"] == "***"
    assert not [k for k, v in params.items() if "s3cret" in v or "abc123" in v]
    assert len([k for k in params if k.startswith("spec.")]) > 100  # more than one MLflow batch
    assert params["best_model"] == result.best_model  # the run's own params stay


def test_settings_params_flatten_redact_and_cut() -> None:
    params = settings_params({
        "data": {"source": {"kind": "sql", "url": "postgresql://ml:hunter2@db:5432/shop",
                            "password_env": "PGPW", "query": "select 1", "headers": {"X-Api-Key": "k"},
                            "auth_env": "TOKEN_VAR"},
                 "id_columns": ["a", "b"], "drop_columns": [], "nested": [{"a": 1}, {"b": None}],
                 "unset": None},
        "tracking": {"uri": "https://u:p4ss@mlflow.example.com/?token=t0k&x=1"},
        "models": {"note": "x" * 7000, "seed": 3, "on": True, "ratio": 0.5},
    })
    assert params == {
        "spec.data.source.kind": "sql", "spec.data.source.url": "postgresql://ml:***@db:5432/shop",
        "spec.data.source.password_env": "PGPW", "spec.data.source.query": "select 1",
        "spec.data.source.headers.X-Api-Key": "***", "spec.data.source.auth_env": "TOKEN_VAR",
        "spec.data.id_columns": '["a", "b"]', "spec.data.drop_columns": "[]", "spec.data.nested.0.a": "1",
        "spec.tracking.uri": "https://u:***@mlflow.example.com/?token=***&x=1",
        "spec.models.note": "x" * 5997 + "...", "spec.models.seed": "3", "spec.models.on": "True",
        "spec.models.ratio": "0.5"}
