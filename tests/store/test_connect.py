"""The warm-up: a new SQLite store made under a temporary name while a run trains, moved into
place only when no store appeared meanwhile; leftovers of killed runs removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
