"""The loop retrains with the spec's split: served rows lack a time column that is not a feature,
so they take their request time and are the latest period of the retraining rows."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from looml.data.split import split, split_keys
from looml.monitor.loop import _retrain_frame, _traffic_frame
from looml.spec import validate_spec

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"))


def test_served_rows_take_their_request_time_and_weight_one(tmp_path: Path) -> None:
    source = pl.read_parquet(CORPUS / "email_spam.parquet").sample(n=300, seed=0).with_columns(
        pl.lit(2.0).alias("w"))
    source.write_parquet(tmp_path / "mail.parquet")
    spec = validate_spec({"data": {"source": "mail.parquet", "target": "spam", "drop_columns": ["time"],
                                   "sample_weight": "w"},
                          "split": {"by": {"time": "time"}}, "registry": {"model_name": "m"},
                          "loop": {"retrain_data": "source_and_labelled_traffic"}}, project_dir=tmp_path)
    served = source.sample(n=100, seed=1).drop("time", "w", "spam")  # what the log keeps: features
    start = datetime(2026, 5, 1, tzinfo=UTC)
    traffic = served.with_columns(
        pl.Series("timestamp", [start + timedelta(minutes=i) for i in range(100)]).dt.cast_time_unit("us"),
        pl.Series("label", np.where(np.arange(100) % 7 == 0, 1, 0)), pl.lit("1").alias("model_version"))
    rows = _traffic_frame(spec, traffic)
    assert rows["time"].min() == start.replace(tzinfo=None) and rows["w"].unique().to_list() == [1.0]
    frame = _retrain_frame(spec, traffic)
    assert frame.height == 400 and frame["time"].null_count() == 0
    _, test = split(frame["spam"], "classification", 0.25, 0, "time", split_keys(frame["time"], "time"),
                        "time")
    assert set(test.tolist()) == set(range(300, 400))  # the served rows are the latest period
