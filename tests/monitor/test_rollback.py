"""Rollback walks back through the promotions; two in a row do not undo each other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import looml
from looml.errors import RegistryError
from looml.monitor.moves import history, promote, rollback
from looml.spec import load_spec
from looml.store.connect import local_tracking_uri
from looml.store.versions import champion_version


def test_rollbacks_walk_back_v3_v2_v1_then_say_there_is_nothing_left(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=300)
    pl.DataFrame({"x": x, "y": x * 2 + rng.normal(size=300)}).write_csv(tmp_path / "d.csv")
    spec = tmp_path / "looml.yaml"
    for alpha in (1.0, 2.0, 3.0):  # a changed param retrains and registers a new version
        spec.write_text("data: {source: d.csv, target: y}\nsplit: {folds: 2}\nregistry: {model_name: r}\n"
                        f"models: {{candidates: [{{name: linear, params: {{alpha: {alpha}}}}}]}}\n")
        version = looml.run(spec).model_version
        if version != "1":
            promote(spec, version)
    uri = local_tracking_uri(load_spec(spec).tracking.uri, tmp_path)
    assert champion_version(uri, "r") == "3"
    assert rollback(spec).champion_after == "2" and champion_version(uri, "r") == "2"
    assert rollback(spec).champion_after == "1" and champion_version(uri, "r") == "1"
    with pytest.raises(RegistryError, match="no recorded promotion made this version champion"):
        rollback(spec)
    assert champion_version(uri, "r") == "1"
    assert [d.action for d in history(spec)] == ["promote", "promote", "rollback", "rollback"]
    promote(spec, "3")  # a promotion after rollbacks is walked back like any other
    assert rollback(spec).champion_after == "1"


def test_a_promotion_killed_before_or_after_its_alias_move_leaves_a_trail_that_agrees(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(5)
    x = rng.normal(size=300)
    pl.DataFrame({"x": x, "y": x * 2 + rng.normal(size=300)}).write_csv(tmp_path / "d.csv")
    spec = tmp_path / "looml.yaml"
    for alpha in (1.0, 2.0):
        spec.write_text("data: {source: d.csv, target: y}\nsplit: {folds: 2}\nregistry: {model_name: k}\n"
                        f"models: {{candidates: [{{name: linear, params: {{alpha: {alpha}}}}}]}}\n")
        looml.run(spec)
    uri = local_tracking_uri(load_spec(spec).tracking.uri, tmp_path)
    cli = [str(Path(sys.executable).with_name("looml")), "models", "promote", "2", "-s", str(spec)]

    def killed_at(point: str) -> None:
        out = subprocess.run(cli, env={**os.environ, "LOOML_FAULT": point}, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == -9, out.stderr  # SIGKILL at the point

    killed_at("audit.after_pending")  # recorded as pending; the alias never moved
    assert champion_version(uri, "k") == "1"
    assert [(d.action, d.state) for d in history(spec)] == [("promote", "interrupted")]

    killed_at("audit.after_move")  # the alias moved; its done record never written
    assert champion_version(uri, "k") == "2"
    assert [(d.action, d.state, d.champion_after) for d in history(spec)] == [
        ("promote", "interrupted", "2"), ("promote", "done", "2")]

    assert rollback(spec).champion_after == "1"  # the settled promotion is walked back
    assert champion_version(uri, "k") == "1"
    assert [d.state for d in history(spec)] == ["interrupted", "done", "done"]
