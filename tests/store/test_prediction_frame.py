"""The prediction log's frame: datetime features parsed as the model's coercer parses them, on the
numpy path (naive ISO text) and the pandas path (anything else) alike."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from looml.learn.features import _coerce
from looml.serve.model import Prediction
from looml.spec import PredictionLogSpec
from looml.store.predictions import PredictionLog, RowsToLog, read_predictions

ISO = ["2024-01-02", "2024-01-02T03:04:05", None, "2023-12-31 23:59:59.250"]
MIXED = ["2024-01-02", "01/02/2024", "2024-03-01T00:00:00+02:00", None, "soon"]


@pytest.mark.parametrize("values", [ISO, MIXED], ids=["iso", "mixed"])
def test_a_logged_datetime_is_what_the_coercer_read(values: list[str | None], tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, PredictionLogSpec())
    n = len(values)
    log.append(RowsToLog("r", datetime(2024, 5, 1, tzinfo=UTC), "m", "1", "/predict", {"when": "datetime"},
                         {"when": values}, Prediction(labels=np.zeros(n)), None))
    log.close()
    logged = read_predictions(tmp_path).sort("row")["when"].to_list()
    expected = _coerce(pd.Series(values, dtype=object), "datetime")
    assert logged == [None if pd.isna(v) else v.to_pydatetime() for v in expected]
    if values is ISO:
        assert logged[3] == datetime(2023, 12, 31, 23, 59, 59, 250000)
