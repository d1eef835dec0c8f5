"""The MLflow contract: the registered model, loaded with `mlflow.pyfunc.load_model`, predicts on
raw rows as clients read them (pandas and Polars CSV readers), whatever the readers made of the
column types."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest

import looml


def _frame(rows: int = 300, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    count = rng.integers(0, 20, rows)  # an integer column without gaps
    return pd.DataFrame({
        "amount": np.round(x * 10, 2),                       # floats, with gaps below
        "count": count,
        "tier": rng.integers(1, 4, rows),                   # integer-coded category
        "plan": rng.choice(["basic", "plus", "pro"], rows),
        "member": rng.random(rows) < 0.5,
        "since": (pd.Timestamp("2023-01-01")
                  + pd.to_timedelta(rng.integers(0, 600, rows), unit="D")).strftime("%Y-%m-%d"),
        "label": np.where(x + 0.1 * count + rng.normal(scale=0.5, size=rows) > 1, "yes", "no"),
    }).assign(amount=lambda f: f["amount"].mask(rng.random(rows) < 0.1))


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    folder = tmp_path_factory.mktemp("contract")
    _frame().to_csv(folder / "data.csv", index=False)
    (folder / "looml.yaml").write_text(
        "seed: 7\n"
        "data: {source: data.csv, target: label}\n"
        "preprocessing: {columns: {tier: {kind: categorical}}}\n"
        "split: {test_size: 0.25, folds: 2}\n"
        "models: {candidates: [linear]}\n"
        "registry: {model_name: contract}\n")
    result = looml.run(folder / "looml.yaml")
    mlflow.set_tracking_uri(result.tracking_uri)
    return mlflow.pyfunc.load_model("models:/contract@champion"), folder


def _rows(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "data.csv").drop(columns=["label"])


def test_predicts_rows_as_pandas_reads_them(champion) -> None:
    model, folder = champion
    rows = _rows(folder)
    assert rows["count"].dtype == np.int64 and not pd.api.types.is_datetime64_any_dtype(rows["since"])
    predicted = np.asarray(model.predict(rows))
    assert len(predicted) == len(rows) and set(predicted) <= {"yes", "no"}
    assert list(predicted) == list(model.get_raw_model().predict(rows))


def test_predicts_rows_as_polars_reads_them(champion) -> None:
    model, folder = champion
    expected = list(model.predict(_rows(folder)))
    rows = pl.read_csv(folder / "data.csv").drop("label").to_pandas()
    assert list(model.predict(rows)) == expected
    parsed = pl.read_csv(folder / "data.csv", try_parse_dates=True).drop("label").to_pandas()
    assert pd.api.types.is_datetime64_any_dtype(parsed["since"])
    assert list(model.predict(parsed)) == expected


def test_integers_where_floats_were_seen_and_floats_where_integers_were(champion) -> None:
    model, folder = champion
    rows = _rows(folder).dropna(subset=["amount"]).head(50)
    expected = list(model.predict(rows))
    swapped = rows.assign(amount=rows["amount"].round().astype(np.int64),
                          count=rows["count"].astype(np.float64))
    same = rows.assign(amount=rows["amount"].round(), count=rows["count"])
    assert list(model.predict(swapped)) == list(model.predict(same))
    assert len(expected) == len(rows)


def test_an_integer_coded_category_read_as_floats(champion) -> None:
    model, folder = champion
    rows = _rows(folder).head(50)
    floats = rows.assign(tier=rows["tier"].astype(np.float64))  # as pandas reads it with a gap
    assert list(model.predict(floats)) == list(model.predict(rows))
    coerced = model.get_raw_model().steps[0][1].transform(floats)
    assert set(coerced["tier"]) <= {"1", "2", "3"}  # the text training saw, not "1.0"


def test_columns_in_another_order_and_an_extra_column(champion) -> None:
    model, folder = champion
    rows = _rows(folder).head(40)
    expected = list(model.predict(rows))
    shuffled = rows[list(reversed(rows.columns))].assign(customer_id=np.arange(len(rows)))
    assert list(model.predict(shuffled)) == expected


def test_nulls_in_columns_that_had_none(champion) -> None:
    model, folder = champion
    rows = _rows(folder).head(40)
    for column in ("count", "tier", "plan", "member", "since"):
        gappy = rows.astype({column: object})
        gappy.loc[gappy.index[:5], column] = None
        predicted = np.asarray(model.predict(gappy))
        assert len(predicted) == len(rows) and set(predicted) <= {"yes", "no"}, column


def test_signature_names_every_feature(champion) -> None:
    model, _ = champion
    names = model.metadata.get_input_schema().input_names()
    assert set(names) == {"amount", "count", "tier", "plan", "member", "since"}
