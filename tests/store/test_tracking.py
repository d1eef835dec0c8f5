"""Registering in MLflow: the trusted types of the skops file, found without writing it first."""

from __future__ import annotations

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
