"""The warm-up: a new SQLite store made under a temporary name while a run trains, moved into
place only when no store appeared meanwhile; leftovers of killed runs removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from looml.store.connect import warm_up


def test_a_new_store_is_made_aside_and_moved_into_place(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    ready = warm_up(f"sqlite:///{db}")
    ready()
    assert db.exists()
    assert list(tmp_path.glob(".mlflow-*.tmp")) == []
    import mlflow

    names = [e.name for e in mlflow.MlflowClient(f"sqlite:///{db}").search_experiments()]
    assert names == ["Default"]


def test_a_store_that_appeared_meanwhile_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    ready = warm_up(f"sqlite:///{db}")
    db.write_bytes(b"another run's store")  # a second run registered first
    ready()
    assert db.read_bytes() == b"another run's store"
    assert list(tmp_path.glob(".mlflow-*.tmp")) == []


def test_a_killed_run_s_leftover_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead = tmp_path / f".mlflow-{gone.stdout.strip()}-0badc0de.db.tmp"
    live = tmp_path / f".mlflow-{os.getppid()}-0badc0de.db.tmp"
    dead.write_bytes(b"")
    live.write_bytes(b"")
    warm_up(f"sqlite:///{tmp_path / 'mlflow.db'}")()
    assert not dead.exists() and live.exists()


def test_an_existing_store_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"the project's store")
    warm_up(f"sqlite:///{db}")()
    assert db.read_bytes() == b"the project's store"
    assert list(tmp_path.glob(".mlflow-*.tmp")) == []


def test_a_second_new_store_is_a_copy_of_the_machines_empty_one_and_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv("LOOML_CACHE_DIR", str(tmp_path / "cache"))
    first, second = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    first.parent.mkdir()
    second.parent.mkdir()
    warm_up(f"sqlite:///{first}")()  # MLflow's migrations, kept as the template
    [template] = (tmp_path / "cache").glob("mlflow-*-empty.db")
    assert template.name == f"mlflow-{mlflow.__version__}-empty.db"
    template_bytes = template.read_bytes()

    monkeypatch.chdir(second.parent)
    warm_up(f"sqlite:///{second}")()

    assert template.read_bytes() == template_bytes  # a copy was taken, the template untouched
    client = mlflow.MlflowClient(f"sqlite:///{second}")
    [default] = client.search_experiments()
    assert default.artifact_location == str(second.parent.resolve() / "mlruns" / "0")
    assert client.get_experiment("0").creation_time > 0
    experiment = client.create_experiment("looml", artifact_location=str(tmp_path / "artifacts"))
    client.create_registered_model("tiny")
    assert client.get_experiment(experiment).name == "looml"
    assert [m.name for m in client.search_registered_models()] == ["tiny"]
    assert [m.name for m in mlflow.MlflowClient(f"sqlite:///{first}").search_registered_models()] == []
