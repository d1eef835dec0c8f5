"""The loop on a regression model, with the prediction log written as the server writes it:
the challenger trained on the new window wins on RMSE and is promoted; a cycle with too few
fresh labels retrains nothing and says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import looml
from looml.monitor.loop import cycle
from looml.monitor.moves import history
from looml.serve.model import Prediction
from looml.spec import PredictionLogSpec, load_spec
from looml.store.connect import local_tracking_uri
from looml.store.feedback import FeedbackStore
from looml.store.predictions import PredictionLog, RowsToLog
from looml.store.versions import load_pipeline

SPEC = """seed: 2
data: {source: sales.csv, target: amount}
split: {folds: 3}
models: {candidates: [linear]}
registry: {model_name: sales}
monitor: {performance: {min_labels: 50, resamples: 200}}
loop:
  retrain_data: labelled_traffic
  triggers: {drift: false, performance_drop: true}
  promotion: {min_rows: 60, resamples: 200}
"""


def sales(rows: int, seed: int, slope: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    price = rng.uniform(1, 10, rows)
    shop = rng.choice(["a", "b", "c"], rows)
    return pl.DataFrame({"price": price.round(2), "shop": shop,
                         "amount": (slope * price + (shop == "a") * 3 + rng.normal(0, 0.5, rows)).round(3)})


def log_traffic(spec_path: Path, frame: pl.DataFrame, labelled: int) -> None:
    """Score `frame` with the champion and log it like the server; post labels for the first rows."""
    spec = load_spec(spec_path)
    pipeline, _ = load_pipeline(local_tracking_uri(spec.tracking.uri, spec.project_dir), "sales", "1")
    features = {"price": "numeric", "shop": "categorical"}
    X = frame.drop("amount")
    predicted = np.asarray(pipeline.predict(X.to_pandas()), dtype=np.float64)
    root = spec.project_dir / ".looml" / "logs"
    log = PredictionLog(root, PredictionLogSpec(flush_seconds=3600))
    start = datetime.now(UTC) - timedelta(hours=2)
    for i in range(frame.height):
        log.append(RowsToLog(f"r{i}", start + timedelta(seconds=i), "sales", "1", "/predict", features,
                             {c: [X[c][i]] for c in X.columns}, Prediction(predicted[i:i + 1])))
    log.close()
    FeedbackStore(root).append([{"row_id": f"r{i}:0", "request_id": None, "row": None,
                                 "label": float(frame["amount"][i]), "timestamp": None}
                                for i in range(labelled)])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    sales(600, seed=1, slope=2.0).write_csv(tmp_path / "sales.csv")
    spec = tmp_path / "looml.yaml"
    spec.write_text(SPEC)
    looml.run(spec)
    return spec


def test_a_regression_challenger_wins_on_rmse_and_is_promoted(project: Path) -> None:
    log_traffic(project, sales(400, seed=2, slope=-1.0), labelled=400)
    result = cycle(project)
    assert result.performance["metric"] == "rmse" and result.performance["verdict"] == "drop"
    decision = result.decision
    assert decision["action"] == "promote", decision["reason"]
    comparison = decision["evidence"]["comparison"]
    assert comparison["challenger"] < comparison["champion"] / 2  # rmse: lower is better


def test_too_few_fresh_labels_retrain_nothing(project: Path) -> None:
    log_traffic(project, sales(400, seed=2, slope=-1.0), labelled=150)  # 45 fresh rows < 60
    result = cycle(project)
    assert result.decision["action"] == "keep"
    assert "fewer than loop.promotion.min_rows (60)" in result.decision["reason"]
    assert [d.action for d in history(project)] == ["keep"]


def test_an_id_column_the_server_never_logs_does_not_stop_the_default_retrain(tmp_path: Path) -> None:
    # `looml init` declares an all-distinct column an id; served rows never carry it into the log,
    # so the traffic rows of the default retrain data (source and labelled traffic) have it null.
    frame = sales(600, seed=1, slope=2.0).with_row_index("sale_id", offset=1000)
    frame.write_csv(tmp_path / "sales.csv")
    spec = tmp_path / "looml.yaml"
    default = SPEC.replace("retrain_data: labelled_traffic", "retrain_data: source_and_labelled_traffic")
    spec.write_text(default.replace("target: amount}", "target: amount, id_columns: [sale_id]}"))
    looml.run(spec)
    log_traffic(spec, sales(400, seed=2, slope=-1.0), labelled=400)
    result = cycle(spec, retrain=True)
    assert result.decision["action"] in ("promote", "keep"), result.decision["reason"]
    assert "sale_id" not in result.decision["reason"]


def test_the_schema_file_fix_an_unexpected_nulls_stop_names_is_honoured(project: Path) -> None:
    traffic = sales(400, seed=2, slope=-1.0)
    traffic = traffic.with_columns(pl.when(pl.int_range(400) % 5 == 0).then(None).otherwise(pl.col("shop"))
                                   .alias("shop"))
    log_traffic(project, traffic, labelled=400)
    stopped = cycle(project, retrain=True).decision
    assert stopped["action"] == "retrain_failed" and "column 'shop': unexpected_nulls" in stopped["reason"]
    assert "set `nullable: true` for it in the schema file" in stopped["reason"]
    schema = project.parent / "looml.schema.yaml"
    text = schema.read_text()
    block = text.index("  shop:")
    end = text.index("nullable: false", block)
    schema.write_text(text[:end] + "nullable: true" + text[end + len("nullable: false"):])
    assert cycle(project, retrain=True).decision["action"] in ("promote", "keep")
