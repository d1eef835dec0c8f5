"""Quality and robustness on the real-table corpus (`../shared/corpus`), the way a user meets looml.

Per table, with a fixed seeded 80/20 split (stratified for classification where every class has
two rows):

* looml sees only the training part, written by pandas as `train.csv`, through `looml init` then
  `looml run --json` in a fresh folder, in a subprocess; two configurations:
    - `init`:     the spec `looml init` writes, unchanged;
    - `budget60`: the same with `tuning.time_budget: 60` and the default candidate list
                  (`models.candidates` removed);
  a clear data stop that names leaking columns (exit 3, `target_leakage`) counts as correct: the
  benchmark drops the named columns (`data.drop_columns`, the fix the error names) and measures
  the second run; the baselines drop the same columns;
* the test part, as `pd.read_csv` reads it, is scored by this script from
  `mlflow.pyfunc.load_model("models:/NAME@champion")`: ROC AUC (binary), log loss (multiclass),
  RMSE (regression). The pyfunc model must predict on the raw rows (the MLflow contract check);
  probabilities come from the same loaded model's `predict_proba`;
* side by side on the same split: LightGBM with default parameters (string columns as pandas
  `category`), and FLAML `AutoML(time_budget=60)` (the `bench` extra).

Results are kept per table and contender under `--out` (default `bench/out/corpus/`), so a killed
run resumes where it stopped; `--fresh` forgets them. `--summary` prints the table and the
wins / ties / losses (noise band: 0.005 ROC AUC, 1 % log loss or RMSE) without running anything.

Usage: .venv/bin/python bench/corpus.py [--only T ...] [--contenders init budget60 lightgbm flaml]
       [--budget 60] [--timeout 900] [--fresh] [--summary]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import yaml

SEED = 42
ROOT = Path(__file__).resolve().parent.parent
# The corpus is ../shared/corpus beside the checkout; LOOML_CORPUS names another place.
CORPUS = Path(os.environ.get("LOOML_CORPUS", ROOT.parent / "shared" / "corpus"))
LOOML = [sys.executable, "-m", "looml"]
CONTENDERS = ("init", "budget60", "lightgbm", "flaml")
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
HIGHER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}


# --- the split -------------------------------------------------------------------------------

def split(name: str, meta: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write `train.csv` and `test.csv` for the table (once) and return their paths."""
    from sklearn.model_selection import train_test_split

    train_csv, test_csv = folder / "train.csv", folder / "test.csv"
    if train_csv.exists() and test_csv.exists():
        return train_csv, test_csv
    folder.mkdir(parents=True, exist_ok=True)
    frame = pl.read_parquet(CORPUS / f"{name}.parquet").to_pandas()
    y = frame[meta["target"]]
    stratify = None
    if meta["task"] != "regression" and y.value_counts().min() >= 2:
        stratify = y
    train, test = train_test_split(frame, test_size=0.2, random_state=SEED, stratify=stratify)
    train.to_csv(train_csv, index=False)  # looml reads what a pandas user writes
    # pandas cannot read back its own CSV when a text holds a lone carriage return (it splits the
    # row: trump_tweet_source); Polars quotes it so that pandas reads the test rows intact.
    pl.from_pandas(test).write_csv(test_csv)
    return train_csv, test_csv


# --- scoring ---------------------------------------------------------------------------------

def score(task: str, y: pd.Series, predicted: np.ndarray, classes: list[Any] | None) -> float:
    """The table's metric on the test part."""
    from sklearn.metrics import log_loss, roc_auc_score, root_mean_squared_error

    if task == "regression":
        return float(root_mean_squared_error(y.astype(float), predicted))
    assert classes is not None
    labels = [str(c) for c in classes]
    truth = y.astype(str)
    if task == "binary":
        return float(roc_auc_score(truth == labels[1], predicted[:, 1]))
    # A class the model never saw (too rare to reach its training rows) gets probability 0.
    unseen = sorted(set(truth) - set(labels))
    if unseen:
        predicted = np.hstack([predicted, np.zeros((len(predicted), len(unseen)))])
        labels += unseen
    return float(log_loss(truth, np.clip(predicted, 1e-15, 1.0), labels=labels))


def score_pyfunc(project: Path, model_name: str, test_csv: Path, meta: dict[str, Any],
                 drop: list[str]) -> dict[str, Any]:
    """Load the champion with MLflow's pyfunc loader and score the raw test rows."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / '.looml' / 'mlflow.db'}")
    test = pd.read_csv(test_csv)
    y = test.pop(meta["target"])
    X = test.drop(columns=[c for c in drop if c in test.columns])
    model = mlflow.pyfunc.load_model(f"models:/{model_name}@champion")
    out: dict[str, Any] = {}
    try:
        labels = np.asarray(model.predict(X))
        out["pyfunc"] = "ok"
    except Exception as exc:  # the contract check: any refusal is a failure to record
        out["pyfunc"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        labels = None
    raw = model.get_raw_model()
    if meta["task"] == "regression":
        predicted = labels if labels is not None else np.asarray(raw.predict(X))
        out["score"] = score("regression", y, predicted.astype(float), None)
    else:
        proba = np.asarray(raw.predict_proba(X))
        out["score"] = score(meta["task"], y, proba, list(raw.classes_))
        same = labels is None or np.array_equal(labels.astype(str), np.asarray(raw.predict(X)).astype(str))
        if not same:
            out["pyfunc"] = "labels differ from the pipeline's predict"
    return out


# --- looml -----------------------------------------------------------------------------------

def _as_written(spec: dict[str, Any], budget: float) -> None:
    """The spec `looml init` wrote, unchanged."""


def _budget(spec: dict[str, Any], budget: float) -> None:
    """`tuning.time_budget` set and the default candidate list (init's `models.candidates` removed)."""
    spec.setdefault("tuning", {})["time_budget"] = budget
    spec.get("models", {}).pop("candidates", None)
    if not spec.get("models"):
        spec.pop("models", None)


# How each looml configuration changes the spec `looml init` writes (an experiment adds its own).
EDITS: dict[str, Callable[[dict[str, Any], float], None]] = {"init": _as_written, "budget60": _budget}


def run_looml(name: str, meta: dict[str, Any], folder: Path, config: str, budget: float,
              timeout: float) -> dict[str, Any]:
    """`looml init` + `looml run --json` in a fresh project folder, then score the champion."""
    train_csv, test_csv = split(name, meta, folder)
    project = folder / config
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    shutil.copy(train_csv, project / "train.csv")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    init = subprocess.run([*LOOML, "init", "--data", "train.csv", "--target", meta["target"],
                           "--name", "model"], cwd=project, capture_output=True, text=True, env=env,
                          check=False)
    result: dict[str, Any] = {"init_exit": init.returncode}
    if init.returncode != 0:
        return result | {"exit": init.returncode, "outcome": "init failed",
                         "error": (init.stdout + init.stderr)[-2000:]}
    spec_path = project / "looml.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    EDITS[config](spec, budget)
    drop: list[str] = []
    for attempt in range(2):
        if config != "init" or attempt:  # the init spec runs as written, comments and all
            spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
        shutil.rmtree(project / ".looml", ignore_errors=True)
        started = time.perf_counter()
        try:
            proc = subprocess.run([*LOOML, "run", "looml.yaml", "--json"], cwd=project,
                                  capture_output=True, text=True, env=env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return result | {"exit": None, "outcome": f"over {timeout:.0f} s", "wall": timeout}
        wall = time.perf_counter() - started
        result |= {"exit": proc.returncode, "wall": round(wall, 2)}
        try:
            body = json.loads(proc.stdout)
        except json.JSONDecodeError:
            return result | {"outcome": "crash", "error": (proc.stdout + proc.stderr)[-3000:]}
        if proc.returncode == 0:
            break
        leaks = _leaking_columns(body)
        result["stop"] = [p.get("msg", "") for p in body.get("problems", [])][:10]
        if proc.returncode == 3 and leaks and attempt == 0:
            drop = leaks
            spec["data"]["drop_columns"] = sorted({*spec["data"].get("drop_columns", []), *leaks})
            result["clear_stop"] = f"target_leakage: {', '.join(leaks)}"
            continue
        outcome = "clear stop" if proc.returncode in (2, 3) else "error"
        return result | {"outcome": outcome, "dropped": drop}
    result |= {"outcome": "registered", "dropped": drop,
               "stages": {s["name"]: s["seconds"] for s in body.get("stages", [])},
               "best": body.get("best_model") or body.get("training", {}).get("best")}
    result["winner"] = _winner(body)
    result |= score_pyfunc(project, "model", test_csv, meta, drop)
    return result


def _leaking_columns(body: dict[str, Any]) -> list[str]:
    found = []
    for problem in body.get("problems", []):
        if "target_leakage" in problem.get("msg", ""):
            match = re.fullmatch(r"column '(.+)'", problem.get("loc", ""))
            if match:
                found.append(match.group(1))
    return found


def _winner(body: dict[str, Any]) -> str | None:
    for key in ("best", "best_model", "model"):
        if isinstance(body.get(key), str):
            return body[key]
    training = body.get("training") or {}
    return training.get("best") if isinstance(training, dict) else None


# --- baselines -------------------------------------------------------------------------------

def _frames(folder: Path, meta: dict[str, Any], drop: list[str]) -> tuple[pd.DataFrame, ...]:
    train = pd.read_csv(folder / "train.csv")
    test = pd.read_csv(folder / "test.csv")
    y_train, y_test = train.pop(meta["target"]), test.pop(meta["target"])
    train, test = (f.drop(columns=[c for c in drop if c in f.columns]) for f in (train, test))
    return train, test, y_train, y_test


def _categories(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """String columns as pandas `category`, with the training part's categories on both sides."""
    train, test = train.copy(), test.copy()
    for column in train.columns:
        if not pd.api.types.is_numeric_dtype(train[column]) or pd.api.types.is_bool_dtype(train[column]):
            train[column] = train[column].astype(str).where(train[column].notna()).astype("category")
            test[column] = pd.Categorical(test[column].astype(str).where(test[column].notna()),
                                          categories=train[column].cat.categories)
    return train, test


def run_lightgbm(name: str, meta: dict[str, Any], folder: Path, drop: list[str]) -> dict[str, Any]:
    import lightgbm

    split(name, meta, folder)
    train, test, y_train, y_test = _frames(folder, meta, drop)
    train, test = _categories(train, test)
    started = time.perf_counter()
    if meta["task"] == "regression":
        model = lightgbm.LGBMRegressor(random_state=SEED, verbose=-1).fit(train, y_train)
        value = score("regression", y_test, model.predict(test), None)
    else:
        model = lightgbm.LGBMClassifier(random_state=SEED, verbose=-1).fit(train, y_train.astype(str))
        value = score(meta["task"], y_test, model.predict_proba(test), list(model.classes_))
    return {"outcome": "fitted", "score": value, "wall": round(time.perf_counter() - started, 2),
            "dropped": drop}


def run_flaml(name: str, meta: dict[str, Any], folder: Path, drop: list[str],
              budget: float) -> dict[str, Any]:
    from flaml import AutoML

    split(name, meta, folder)
    train, test, y_train, y_test = _frames(folder, meta, drop)
    train, test = _categories(train, test)
    task = "regression" if meta["task"] == "regression" else "classification"
    metric = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[meta["task"]]
    started = time.perf_counter()
    automl = AutoML()
    target = y_train if task == "regression" else y_train.astype(str)
    automl.fit(train, target, task=task, time_budget=budget, metric=metric, seed=SEED, verbose=0,
               n_jobs=2)
    if task == "regression":
        value = score("regression", y_test, automl.predict(test), None)
    else:
        value = score(meta["task"], y_test, automl.predict_proba(test), list(automl.classes_))
    return {"outcome": "fitted", "score": value, "wall": round(time.perf_counter() - started, 2),
            "best": automl.best_estimator, "dropped": drop}


# --- results ---------------------------------------------------------------------------------

def noise_band(metric: str, reference: float) -> float:
    return 0.005 if metric == "roc_auc" else 0.01 * abs(reference)


def compare(metric: str, ours: float | None, theirs: float | None) -> str | None:
    """'win', 'tie' or 'loss' of `ours` against `theirs` within the noise band."""
    if ours is None or theirs is None or not (math.isfinite(ours) and math.isfinite(theirs)):
        return None
    delta = (ours - theirs) if HIGHER_IS_BETTER[metric] else (theirs - ours)
    band = noise_band(metric, theirs)
    return "win" if delta > band else "loss" if delta < -band else "tie"


def summary(results: dict[str, dict[str, dict[str, Any]]], datasets: dict[str, Any], budget: float) -> str:
    lines = ["| table | task | metric | init | budget60 | LightGBM | FLAML | init wall s "
             "| budget60 wall s | budget60 winner | notes |", "|" + " --- |" * 11]
    tallies: dict[str, dict[str, int]] = {}
    crashes = clear = pyfunc_ok = pyfunc_n = 0
    walls_over = []
    for name, row in sorted(results.items()):
        meta = datasets[name]
        metric = METRIC[meta["task"]]
        notes = []

        def cell(key: str, row: dict[str, dict[str, Any]] = row) -> str:
            entry = row.get(key)
            if not entry:
                return "-"
            if entry.get("score") is not None:
                return f"{entry['score']:.4g}"
            return entry.get("outcome", "?")

        for config in ("init", "budget60"):
            entry = row.get(config) or {}
            outcome = str(entry.get("outcome", ""))
            if outcome == "init failed" and entry.get("init_exit") in (2, 3):  # a named refusal, not a crash
                clear += 1
                notes.append(f"{config}: init refused the table (exit {entry['init_exit']})")
            elif outcome in ("crash", "error", "init failed") or outcome.startswith("over"):
                crashes += 1
                notes.append(f"{config}: {entry.get('outcome')}")
            if entry.get("clear_stop"):
                notes.append(f"{config} stopped: {entry['clear_stop']}")
            if "pyfunc" in entry:
                pyfunc_n += 1
                pyfunc_ok += entry["pyfunc"] == "ok"
                if entry["pyfunc"] != "ok":
                    notes.append(f"pyfunc: {entry['pyfunc'][:80]}")
            for base in ("lightgbm", "flaml"):
                verdict = compare(metric, entry.get("score"), (row.get(base) or {}).get("score"))
                if verdict:
                    tallies.setdefault(f"{config} vs {base}", {"win": 0, "tie": 0, "loss": 0})[verdict] += 1
        budget_wall = (row.get("budget60") or {}).get("wall")
        if budget_wall and budget_wall > 1.1 * budget + 10:
            walls_over.append(name)
        lines.append(f"| {name} | {meta['task']} | {metric} | {cell('init')} | {cell('budget60')} | "
                     f"{cell('lightgbm')} | {cell('flaml')} | {(row.get('init') or {}).get('wall', '-')} | "
                     f"{budget_wall or '-'} | {(row.get('budget60') or {}).get('winner') or '-'} | "
                     f"{'; '.join(notes)} |")
    lines += ["", f"tables: {len(results)}; crashes or runs over the timeout: {crashes}; clear refusals "
              f"by init (exit 2 or 3): {clear}; "
              f"pyfunc on raw rows: {pyfunc_ok} of {pyfunc_n} registered models; "
              f"budget60 walls over {1.1 * budget + 10:.0f} s: {len(walls_over)} {walls_over or ''}"]
    for key, t in sorted(tallies.items()):
        n = sum(t.values())
        lines.append(f"- {key}: {t['win']} wins, {t['tie']} ties, {t['loss']} losses "
                     f"(at least as good on {t['win'] + t['tie']} of {n})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+")
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds before a looml run is stopped")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "corpus")
    parser.add_argument("--fresh", action="store_true", help="forget the kept results first")
    parser.add_argument("--summary", action="store_true", help="print the kept results only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    datasets = json.loads((CORPUS / "datasets.json").read_text())
    names = args.only or sorted(datasets)
    unknown = [n for n in names if n not in datasets]
    if unknown:
        parser.error(f"not in the corpus: {unknown}")
    results_dir = args.out / "results"
    if args.fresh:
        shutil.rmtree(results_dir, ignore_errors=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name in names:
        path = results_dir / f"{name}.json"
        row = json.loads(path.read_text()) if path.exists() else {}
        results[name] = row
        if args.summary:
            continue
        meta, folder = datasets[name], args.out / "work" / name
        for contender in args.contenders:
            if contender in row:
                continue
            print(f"{name}: {contender} ...", flush=True)
            looml_drop = sorted({*(row.get("init") or {}).get("dropped", []),
                                 *(row.get("budget60") or {}).get("dropped", [])})
            try:
                if contender in ("init", "budget60"):
                    row[contender] = run_looml(name, meta, folder, contender, args.budget, args.timeout)
                elif contender == "lightgbm":
                    row[contender] = run_lightgbm(name, meta, folder, looml_drop)
                else:
                    row[contender] = run_flaml(name, meta, folder, looml_drop, args.budget)
            except Exception as exc:  # the benchmark records a failure and goes on
                row[contender] = {"outcome": f"bench error: {type(exc).__name__}: {str(exc)[:300]}"}
            entry = row[contender]
            print(f"    {entry.get('outcome')} score={entry.get('score')} wall={entry.get('wall')} "
                  f"pyfunc={entry.get('pyfunc', '-')}", flush=True)
            path.write_text(json.dumps(row, indent=1, default=str))
    print(summary({n: r for n, r in results.items() if r}, datasets, args.budget))


if __name__ == "__main__":
    main()
