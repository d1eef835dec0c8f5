"""The models bench/serve.py serves, each trained the way a user would: `looml init`, then `looml run`.

    prepare(key, corpus) -> Served        (trained once into bench/out/serve/<key>/, reused later)

- `synthetic`: 20,000 rows of serve_inprocess.py's table (15 numeric columns with gaps, 5
  categorical of 4-80 Zipf-like levels, the 80-level one target-encoded by the default
  `encoding: auto`), with the spec `looml init` writes;
- `synthetic-budget`: the same rows with `tuning.time_budget: 60` and the default candidate list
  (init's `models.candidates` removed, as bench/corpus.py's budget60): the search may keep a vote;
- corpus tables, with init's spec: `trump_tweet_source` (multiclass: free text, dates, a
  high-cardinality column) and `health_breach_size` (regression: free text, dates,
  high-cardinality columns, a skewed target).

The served rows: the synthetic table's 4,000 rows after the training rows; for a corpus table its
20 % test split (seed 42, as bench/corpus.py), repeated in a seeded order up to 4,000 rows when it
is smaller. Classes of fewer than 10 rows are dropped first (`looml init` refuses a class too
rare for a stratified split, and names that fix). Only the model's feature columns are sent, as
JSON: dates as ISO strings, gaps as null.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from serve_inprocess import make_frame

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "serve"
BIN = Path(sys.executable).parent
TRAIN_ROWS, HELD_OUT = 20_000, 4_000
SEED = 42
_MIN_CLASS_ROWS = 10
ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONWARNINGS": "ignore"}
MODELS = ("synthetic", "synthetic-budget", "trump_tweet_source", "health_breach_size")
QUICK = ("synthetic", "trump_tweet_source")


@dataclass
class Served:
    """One trained project and the rows sent to its servers."""

    key: str
    folder: Path
    spec: Path
    name: str  # the registered model
    held_out: pd.DataFrame  # the feature columns of the rows sent
    task: str
    train_seconds: float | None  # None: trained by an earlier run

    @property
    def tracking_uri(self) -> str:
        """The project's MLflow store."""
        return f"sqlite:///{self.folder / '.looml' / 'mlflow.db'}"


def _rows(key: str, corpus: Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(training frame with the target, the rows to send, the target column)."""
    if key.startswith("synthetic"):
        frame, labels = make_frame(TRAIN_ROWS + HELD_OUT)
        train = frame.iloc[:TRAIN_ROWS].assign(label=labels[:TRAIN_ROWS])
        return train, frame.iloc[TRAIN_ROWS:].reset_index(drop=True), "label"
    from sklearn.model_selection import train_test_split

    meta = json.loads((corpus / "datasets.json").read_text())[key]
    frame = pd.read_parquet(corpus / f"{key}.parquet")
    target = meta["target"]
    if meta["task"] != "regression":  # init's fix for a class too rare to split: drop it
        counts = frame[target].value_counts()
        frame = frame[frame[target].isin(counts.index[counts >= _MIN_CLASS_ROWS])]
    stratify = frame[target] if meta["task"] != "regression" and frame[target].value_counts().min() >= 2 \
        else None
    train, test = train_test_split(frame, test_size=0.2, random_state=SEED, stratify=stratify)
    order = np.random.default_rng(SEED).permutation(np.resize(np.arange(len(test)), max(HELD_OUT, len(test))))
    return train, test.iloc[order[:HELD_OUT]].drop(columns=[target]).reset_index(drop=True), target


def prepare(key: str, corpus: Path) -> Served:
    """The project of `key`, trained now unless an earlier run left its store."""
    from looml.serve.model import load_model

    folder = OUT / key
    train, held_out, target = _rows(key, corpus)
    name = f"bench_{key.replace('-', '_')}"
    spec = folder / "looml.yaml"
    seconds = None
    if not (folder / ".looml" / "mlflow.db").exists():
        folder.mkdir(parents=True, exist_ok=True)
        train.to_parquet(folder / "train.parquet", index=False)
        env = {**os.environ, **ENV}
        looml = [str(BIN / "looml")]
        subprocess.run([*looml, "init", "--data", "train.parquet", "--target", target, "--name", name,
                        "--force"], cwd=folder, env=env, check=True, capture_output=True)
        if key.endswith("-budget"):
            body = yaml.safe_load(spec.read_text(encoding="utf-8"))
            body.setdefault("tuning", {})["time_budget"] = 60
            body.get("models", {}).pop("candidates", None)
            spec.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
        started = time.perf_counter()
        run = subprocess.run([*looml, "run", "looml.yaml", "--json"], cwd=folder, env=env,
                             capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if run.returncode != 0:
            raise SystemExit(f"{key}: looml run exited {run.returncode}:\n"
                             f"{(run.stdout + run.stderr)[-3000:]}")
    for variant, serve in (("nobatch", "batching: {enabled: false}"), ("nolog", "log: {enabled: false}")):
        (folder / f"looml-{variant}.yaml").write_text(
            spec.read_text(encoding="utf-8") + f"\nserve:\n  {serve}\n", encoding="utf-8")
    model = load_model(f"sqlite:///{folder / '.looml' / 'mlflow.db'}", name)
    return Served(key=key, folder=folder, spec=spec, name=name, held_out=held_out[list(model.features)],
                  task=model.task, train_seconds=seconds)


def _plain(value: Any) -> Any:
    """A cell as JSON carries it: null for a gap, ISO text for a timestamp, Python numbers."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | dt.date):  # a datetime is a date too
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON records."""
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def v2_body(frame: pd.DataFrame) -> dict[str, Any]:
    """An Open Inference Protocol v2 infer request: one FP64 or BYTES input per column."""
    inputs = []
    for column in frame.columns:
        numeric = frame[column].dtype.kind in "fiu"
        inputs.append({"name": column, "datatype": "FP64" if numeric else "BYTES", "shape": [len(frame)],
                       "data": [_plain(v) if numeric or _plain(v) is None else str(_plain(v))
                                for v in frame[column].tolist()]})
    return {"inputs": inputs}


def write_bodies(served: Served, big: int) -> dict[tuple[str, int], Path]:
    """One file per (endpoint, rows): the JSON bodies, one per line."""
    folder = served.folder / "bodies"
    folder.mkdir(parents=True, exist_ok=True)
    makers = {"/invocations": lambda f: {"dataframe_records": records(f)},
              "/predict": lambda f: {"records": records(f)}, "v2": v2_body}
    files = {}
    held_out = served.held_out
    for endpoint, make in makers.items():
        for rows in (1, big):
            frames = [held_out.iloc[i:i + rows] for i in range(0, big if rows == 1 else len(held_out), rows)]
            path = folder / f"{endpoint.strip('/')}-{rows}.jsonl"
            path.write_text("".join(json.dumps(make(f), separators=(",", ":")) + "\n" for f in frames),
                            encoding="utf-8")
            files[endpoint, rows] = path
    return files
