"""Reading a registered version: on the embedded SQLite store straight from its tables and folders,
with the same answers MLflow gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import looml
from looml.errors import RegistryError
from looml.store import versions


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> looml.RunResult:
    folder = tmp_path_factory.mktemp("versions")
    rng = np.random.default_rng(4)
    x = rng.normal(size=240)
    pd.DataFrame({"x": x, "c": rng.choice(["a", "b"], 240),
                  "y": np.where(x + rng.normal(size=240) > 0, "p", "n")}).to_csv(folder / "d.csv",
                                                                                 index=False)
    (folder / "looml.yaml").write_text("data: {source: d.csv, target: y}\nsplit: {folds: 2}\n"
                                       "models: {candidates: [linear]}\n"
                                       "registry: {model_name: m}\n")
    return looml.run(folder / "looml.yaml")


def test_the_tables_give_what_mlflow_gives(registered: looml.RunResult,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    uri = registered.tracking_uri
    direct = versions.model_documents(uri, "m"), versions.model_documents(uri, "m", "1")
    pipeline, run_id = versions.load_pipeline(uri, "m", "1")
    monkeypatch.setattr(versions, "_local_version", lambda *args: None)
    through_mlflow = versions.model_documents(uri, "m"), versions.model_documents(uri, "m", "1")
    reference, reference_run = versions.load_pipeline(uri, "m", "1")

    assert direct == through_mlflow
    assert direct[0][0] == "1" and set(direct[0][1]) == {versions.SCHEMA_ARTIFACT, versions.PROFILE_ARTIFACT}
    assert json.loads(direct[0][1][versions.PROFILE_ARTIFACT])["columns"]
    assert run_id == reference_run == registered.run_id
    rows = pd.DataFrame({"x": [-2.0, 0.1, 3.0], "c": ["a", "b", None]})
    assert (pipeline.predict_proba(rows) == reference.predict_proba(rows)).all()


def test_serving_reads_a_version_without_importing_mlflow(registered: looml.RunResult) -> None:
    code = ("import sys\nfrom looml.store.versions import load_pipeline, model_documents\n"
            f"found, docs = model_documents({registered.tracking_uri!r}, 'm')\n"
            f"load_pipeline({registered.tracking_uri!r}, 'm', found)\n"
            "print(found, *sorted(docs), 'mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "data/profile.json", "data/schema.yaml", "False"]


def test_a_version_the_tables_lack_is_a_registry_error_worded_by_mlflow(registered: looml.RunResult) -> None:
    with pytest.raises(RegistryError, match="has no version 7"):
        versions.model_documents(registered.tracking_uri, "m", "7")
    with pytest.raises(RegistryError, match="the registered model has no 'champion' alias"):
        versions.model_documents(registered.tracking_uri, "nobody")
    with pytest.raises(RegistryError, match="cannot load the model"):
        versions.load_pipeline(registered.tracking_uri, "m", "7")


@pytest.mark.parametrize(("uri", "expected"), [
    ("file:///srv/ml/artifacts", Path("/srv/ml/artifacts")),
    ("file://localhost/srv/a%20b", Path("/srv/a b")),
    ("/srv/ml/artifacts", Path("/srv/ml/artifacts")),
    ("s3://bucket/artifacts", None),
    ("mlflow-artifacts:/0/abc/artifacts", None),
    ("file://otherhost/srv", None),
    ("relative/folder", None),
    (None, None),
])
def test_only_local_artifact_folders_are_read_directly(uri: str | None, expected: Path | None) -> None:
    assert versions._local_path(uri) == expected
