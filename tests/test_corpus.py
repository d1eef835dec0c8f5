"""Real tables: `looml init` then `looml run`, as a user runs them, on a subset of the corpus
(`../shared/corpus`) chosen so that every messy tag in `datasets.json` is met at least once.

Each table is cut to a seeded sample of at most `ROWS` rows and trained with two candidates on
two folds, so the whole subset stays a few minutes on two cores; the full corpus, at full size
and with the default settings, is `bench/corpus.py`. A run must end with a model, or with a
clear data error (exit 2 or 3, the problems as JSON) where the table leaks its target; never a
traceback, never exit 1 (`looml init` may refuse a target no spec can fix, with exit 3). The
registered model must predict the held-back rows as `pd.read_csv` reads them, through
`mlflow.pyfunc`, and the server must score it on the compiled fast path (issue 17's guard).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest
import yaml

from looml.serve.model import PipelineScorer, load_model

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus"))
ROWS = 2500
SEED = 42
LOOML = [sys.executable, "-m", "looml"]


def _datasets() -> dict[str, dict]:
    path = CORPUS / "datasets.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def covering_subset(datasets: dict[str, dict]) -> list[str]:
    """Fewest tables (greedily, smaller first on ties) whose `messy` tags cover every tag."""
    left = {tag for meta in datasets.values() for tag in meta["messy"]}
    chosen: list[str] = []
    while left:
        name = max(sorted(datasets, key=lambda n: datasets[n]["rows"]),
                   key=lambda n: len(left & set(datasets[n]["messy"])))
        chosen.append(name)
        left -= set(datasets[name]["messy"])
    return chosen


DATASETS = _datasets()
SUBSET = covering_subset(DATASETS) if DATASETS else []


def test_the_corpus_is_there() -> None:
    # In CI a missing corpus fails the run rather than skipping the tests below.
    assert DATASETS, f"no corpus at {CORPUS} (set LOOML_CORPUS to its folder)"
    assert len(DATASETS) == 42
    tags = {tag for meta in DATASETS.values() for tag in meta["messy"]}
    assert tags == {tag for name in SUBSET for tag in DATASETS[name]["messy"]}


def _split(name: str, meta: dict, folder: Path) -> tuple[Path, pd.DataFrame]:
    frame = pl.read_parquet(CORPUS / f"{name}.parquet")
    if frame.height > ROWS:
        frame = frame.sample(ROWS, seed=SEED)
    frame = frame.to_pandas()
    rng = np.random.default_rng(SEED)
    test = rng.random(len(frame)) < 0.2
    train_csv = folder / "train.csv"
    frame[~test].to_csv(train_csv, index=False)
    held = folder / "held.csv"
    pl.from_pandas(frame[test].drop(columns=[meta["target"]])).write_csv(held)
    return train_csv, pd.read_csv(held)


@pytest.mark.parametrize("name", SUBSET)
def test_a_real_table_runs_end_to_end_or_stops_clearly(name: str, tmp_path: Path) -> None:
    meta = DATASETS[name]
    _, held = _split(name, meta, tmp_path)
    init = subprocess.run([*LOOML, "init", "--data", "train.csv", "--target", meta["target"],
                           "--name", "corpus"], cwd=tmp_path, capture_output=True, text=True, check=False)
    if init.returncode == 3:  # a data problem no spec can fix is refused before a spec is written
        said = init.stdout + init.stderr
        assert "too few for a stratified split" in said and "fix: merge or drop" in said
        assert "Traceback" not in said and not (tmp_path / "looml.yaml").exists()
        return
    assert init.returncode == 0, init.stdout + init.stderr
    spec = yaml.safe_load((tmp_path / "looml.yaml").read_text())
    spec["models"]["candidates"] = ["linear", "lightgbm"]
    spec["split"]["folds"] = 2
    (tmp_path / "looml.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    run = subprocess.run([*LOOML, "run", "looml.yaml", "--json"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600, check=False)

    output = run.stdout + run.stderr
    assert "Traceback" not in output, output[-3000:]
    assert run.returncode in (0, 2, 3), output[-3000:]
    body = json.loads(run.stdout)
    if run.returncode != 0:
        messages = [p["msg"] for p in body["problems"]]
        assert body["problems"] and all(p["fix"] for p in body["problems"]), body
        # Only a leaking column may stop a real table (some leaks are not tagged in the corpus).
        assert all("target_leakage" in m for m in messages), messages
        return
    mlflow.set_tracking_uri(body["tracking_uri"])
    model = mlflow.pyfunc.load_model("models:/corpus@champion")
    predicted = np.asarray(model.predict(held))
    # The guard of the serving fast path: the default pipeline compiles (a default that loses it
    # would cost tens of times the latency in production), and scores as the pipeline does.
    served = load_model(body["tracking_uri"], "corpus")
    assert served.scorer.name.startswith("compiled:"), (served.scorer.name, name)
    rows = held.head(200)
    got = served.predict({c: rows[c].tolist() for c in rows.columns if c in served.features})
    want = PipelineScorer(served.pipeline, served.features).predict(
        {c: rows[c].tolist() for c in rows.columns if c in served.features})
    if want.proba is None:
        np.testing.assert_allclose(np.asarray(got.labels, dtype=float), want.labels, rtol=1e-9)
    else:
        np.testing.assert_allclose(got.proba, want.proba, atol=1e-9)
    assert len(predicted) == len(held)
    if meta["task"] == "regression":
        assert np.isfinite(predicted.astype(float)).all()
