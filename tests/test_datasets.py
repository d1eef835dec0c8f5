"""Data versions and checks end to end: the schema file, corrupted batches, `looml validate --data`,
`looml data` and re-running from a snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

import looml
from looml.datasets import snapshots, validate_batch
from looml.errors import DataError, RegistryError
from looml.store.connect import local_tracking_uri
from looml.store.versions import model_documents

LOOML = [sys.executable, "-m", "looml"]


def churn_frame(rows: int = 400, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    plan = rng.choice(["basic", "pro", "team"], rows)
    score = -0.04 * tenure + (plan == "basic") + rng.normal(size=rows)
    return pl.DataFrame({"tenure": tenure, "plan": plan, "charges": rng.gamma(2.0, 30.0, rows).round(2),
                         "label": np.where(score > -0.5, "yes", "no")})


def corrupt(frame: pl.DataFrame) -> pl.DataFrame:
    """A renamed column, a new category, out-of-range values and nulls in a column that had none."""
    first = pl.int_range(pl.len()) < 4
    return frame.rename({"charges": "charge"}).with_columns(
        pl.when(first).then(pl.lit("platinum")).otherwise(pl.col("plan")).alias("plan"),
        pl.when(first).then(pl.lit(-500)).otherwise(pl.col("tenure")).alias("tenure"),
        pl.when(pl.int_range(pl.len()) >= pl.len() - 3).then(None).otherwise(pl.col("label")).alias("label"),
    )


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project(churn_frame(), extra="split:\n  folds: 3\n")


def test_first_run_writes_the_schema_and_logs_it_with_the_model(project: Path) -> None:
    result = looml.run(project)

    schema_file = project.parent / "looml.schema.yaml"
    text = schema_file.read_text()
    assert text.startswith("# looml data schema, inferred on ")
    schema = yaml.safe_load(text)
    assert schema["target"] == "label"
    assert schema["columns"]["plan"]["categories"] == ["basic", "pro", "team"]
    assert schema["columns"]["tenure"]["type"] == "numeric" and schema["columns"]["tenure"]["max"] >= 71
    assert [s.name for s in result.stages if s.status == "ran"][:4] == ["ingest", "profile", "validate",
                                                                        "schema"]
    version, documents = model_documents(result.tracking_uri, "tiny")
    assert version == result.model_version
    assert documents["data/schema.yaml"] == text
    assert json.loads(documents["data/profile.json"])["rows"] == 400

    again = looml.run(project)
    assert {s.name: s.status for s in again.stages} == {
        "ingest": "cached", "profile": "cached", "validate": "cached", "check": "cached",
        "split": "cached", "train": "cached", "evaluate": "cached", "report": "cached",
        "reference": "cached", "explain": "cached", "refit": "cached", "register": "cached"}


def test_a_corrupted_training_batch_stops_the_run_with_every_problem(project: Path) -> None:
    looml.run(project)
    data = project.parent / "data.csv"
    corrupt(pl.read_csv(data)).write_csv(data)

    with pytest.raises(DataError) as exc:
        looml.run(project)

    text = exc.value.render()
    for expected in ("column 'charges': missing_column: the column is absent",
                     "column 'plan': new_category: 4 rows (1.0%) with values not in the schema: 'platinum'",
                     "column 'tenure': out_of_range: 4 rows (1.0%) outside the range, from -500 to",
                     "column 'label': unexpected_nulls: 3 missing values"):
        assert expected in text, text
    assert len(exc.value.problems) == 4
    with pytest.raises(RegistryError, match="the registered model has no version 2"):
        model_documents(local_tracking_uri("sqlite:///.looml/mlflow.db", project.parent), "tiny", "2")


def test_relaxing_the_schema_file_lets_the_batch_through(project: Path) -> None:
    looml.run(project)
    schema_file = project.parent / "looml.schema.yaml"
    schema = yaml.safe_load(schema_file.read_text())
    del schema["columns"]["plan"]["categories"]
    schema_file.write_text(yaml.safe_dump(schema, sort_keys=False))
    data = project.parent / "data.csv"
    frame = pl.read_csv(data)
    frame.with_columns(pl.when(pl.int_range(pl.len()) < 4).then(pl.lit("platinum"))
                       .otherwise(pl.col("plan")).alias("plan")).write_csv(data)

    result = looml.run(project)

    assert result.model_version == "2"


def test_validate_data_checks_a_batch_against_the_champion_schema(project: Path, tmp_path: Path) -> None:
    looml.run(project)
    batch = tmp_path / "batch.csv"
    corrupt(churn_frame(200, seed=5)).drop("label").write_csv(batch)

    check = validate_batch(project, str(batch))

    assert check.schema_origin == "model tiny version 1"
    assert [(a.column, a.check, a.severity) for a in check.anomalies] == [
        ("charges", "missing_column", "error"), ("charge", "extra_column", "warning"),
        ("tenure", "out_of_range", "error"), ("plan", "new_category", "error")]

    out = subprocess.run([*LOOML, "validate", str(project), "--data", str(batch), "--json"],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 3, out.stderr
    body = json.loads(out.stdout)
    assert body["valid"] is False and len(body["anomalies"]) == 4

    good = tmp_path / "good.csv"
    churn_frame(200, seed=6).drop("label").write_csv(good)
    out = subprocess.run([*LOOML, "validate", str(project), "--data", str(good)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "checked against the schema of model tiny version 1" in out.stdout
    assert "valid: no anomaly of severity error" in out.stdout


def test_validate_data_without_a_model_uses_the_schema_file(project: Path, tmp_path: Path) -> None:
    looml.check(project)
    batch = tmp_path / "batch.csv"
    churn_frame(50, seed=2).write_csv(batch)

    check = validate_batch(project, str(batch))

    assert check.schema_origin == "looml.schema.yaml (no registered champion yet)"
    assert check.anomalies == []


def test_snapshots_list_each_data_version_with_its_users_and_a_run_can_replay_one(project: Path) -> None:
    first = looml.run(project)
    data = project.parent / "data.csv"
    churn_frame(500, seed=1).write_csv(data)
    second = looml.run(project)
    assert second.data_digest != first.data_digest

    entries = snapshots(project)

    assert [e.digest for e in entries] == [second.data_digest, first.data_digest]
    assert entries[1].rows == 400 and entries[1].source == "data.csv"
    assert entries[1].used_by[0]["version"] == first.model_version
    out = subprocess.run([*LOOML, "data", str(project)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert first.data_digest[:12] in out.stdout and "tiny v1" in out.stdout

    replay = looml.run(project, snapshot=first.data_digest[:10])

    assert replay.data_digest == first.data_digest
    assert replay.model_version == first.model_version  # the same inputs: the cached registration
    assert replay.stages[0].reason.startswith(f"from snapshot {first.data_digest[:12]}")
    with pytest.raises(DataError, match=r"--snapshot: no such data snapshot \(got 'beef00'\)"):
        looml.run(project, snapshot="beef00")
