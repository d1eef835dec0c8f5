"""The pipeline built from every kind of preprocessing and feature option is ONE fitted Pipeline
that `looml.run` registers in MLflow's skops format, and that loads back and predicts raw rows."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest
from skops.io import dumps, get_untrusted_types

import looml
from looml.store.tracking import type_names
from looml.store.versions import load_pipeline

WORDS = ["late", "early", "refund", "broken", "great", "slow", "fast", "price", "support", "delivery"]

CLASSIFICATION = """
preprocessing:
  numeric: {impute: iterative, clip: iqr, power: yeo-johnson}
  categorical: {high_cardinality: 20}
  datetime: {cyclic: true}
  columns:
    spend: {impute: knn, scale: robust}
    plan: {encoding: ordinal}
  drop_duplicates: true
  outlier_rows: isolation_forest
  imbalance: oversample
features:
  derived:
    - {name: spend_per_visit, expr: "spend / max(`visit count`, 1)"}
  polynomial: {columns: [age, spend_per_visit], degree: 2}
  binning: {columns: [age], bins: 4}
  selection: {variance_threshold: 0.0, correlation_threshold: 0.98, mutual_info_k: 40}
  pca: {components: 0.99}
"""

REGRESSION = """
preprocessing:
  target_transform: auto
  imbalance: none
features:
  selection: {model_importance: {threshold: median}, rfe: {n_features: 8}}
"""


def messy_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Gaps, rare and many-valued categories, free text, dates; a skewed positive amount."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype(float)
    spend = rng.lognormal(3, 1, rows)
    note = [" ".join(rng.choice(WORDS, 5)) for _ in range(rows)]
    score = age / 40 + np.log(spend) / 3 + np.array(["refund" in n for n in note]) + rng.normal(size=rows)
    frame = pd.DataFrame({
        "age": np.where(rng.random(rows) < 0.1, np.nan, age),
        "spend": spend,
        "visit count": rng.poisson(3, rows),
        "plan": rng.choice(["basic", "pro", "team", "gov"], rows, p=[0.5, 0.3, 0.19, 0.01]),
        "shop": [f"shop-{i}" for i in rng.integers(0, 60, rows)],
        "note": note,
        "joined": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D"),
        "churned": np.where(score > np.quantile(score, 0.75), "yes", "no"),
        "amount": np.exp(score),
        "segment": np.digitize(score, np.quantile(score, [0.6, 0.95])).astype(str),  # one class of 5 %
    })
    return frame


def project(folder: Path, frame: pd.DataFrame, target: str, drop: list[str], extra: str) -> Path:
    frame.to_csv(folder / "data.csv", index=False)
    spec = folder / "looml.yaml"
    data = f"{{source: data.csv, target: {target}, drop_columns: [{', '.join(drop)}]}}"
    spec.write_text(f"seed: 3\ndata: {data}\n"
                    f"split: {{test_size: 0.25, folds: 3}}\nmodels: {{candidates: [linear]}}\n"
                    f"registry: {{model_name: m}}\n{extra}")
    return spec


def raw_rows(folder: Path, rows: np.ndarray, drop: list[str]) -> pd.DataFrame:
    raw = pd.read_csv(folder / "data.csv", parse_dates=["joined"])
    raw["visit count"] = raw["visit count"].astype(float)  # MLflow's schema check refuses int -> double
    raw = raw.astype(object)
    picked = raw.iloc[rows].drop(columns=drop)
    return picked.where(picked.notna(), None)


TARGETS = ["churned", "amount", "segment"]


@pytest.mark.parametrize(("target", "extra"), [("churned", CLASSIFICATION), ("amount", REGRESSION),
                                               ("segment", "")])  # the defaults, on a messy table
def test_every_option_registers_and_predicts_raw_rows(tmp_path: Path, target: str, extra: str) -> None:
    others = [t for t in TARGETS if t != target]
    result = looml.run(project(tmp_path, messy_frame(), target, others, extra))
    store = tmp_path / ".looml" / "artifacts"
    digest = result.artifacts["predictions"]
    holdout = pl.read_parquet(store / digest[:2] / digest)

    pipeline, _ = load_pipeline(result.tracking_uri, "m", result.model_version)
    names = [name for name, _ in pipeline.steps]
    assert names[0] == "coerce" and pipeline.steps[-1][0] == "model"
    assert "TrainingRows" not in repr(pipeline.steps[-1][1])  # finalize left the plain model
    mlflow.set_tracking_uri(result.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/m@champion")
    rows = raw_rows(tmp_path, holdout["row"].to_numpy(), TARGETS)
    predicted = model.predict(rows)
    # The registered model is the evaluated configuration refit on every row (decision 39): the
    # pyfunc model must predict raw rows as that pipeline does.
    expected = pipeline.predict(rows)
    branches = {name for name, _, columns in pipeline.named_steps["columns"].transformers_ if len(columns)}
    assert {"numeric", "datetime", "text"} <= branches  # "note" is free text
    if target == "churned":
        assert names[:3] == ["coerce", "derived", "columns"] and names[-2] == "pca"
        assert {"categorical_target", "datetime_cyclic", "polynomial", "binning"} <= branches
    if target == "segment":
        assert names == ["coerce", "columns", "model"]
        assert {"categorical", "categorical_target"} <= branches  # 60 shops > high_cardinality 50
    # The trusted types register lists without writing a skops file first: at least what skops finds.
    assert set(get_untrusted_types(data=dumps(pipeline))) <= set(type_names(pipeline))
    if target != "amount":
        assert list(predicted) == list(expected)
    else:
        assert pipeline.steps[-1][1].transformer_.method_ == "log"  # auto: the amount is right-skewed
        np.testing.assert_allclose(predicted, expected, rtol=1e-9)
