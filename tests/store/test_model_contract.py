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


def test_probabilities_on_request_one_column_per_class(champion) -> None:
    model, folder = champion
    rows = _rows(folder).head(40)
    pipeline = model.get_raw_model()

    proba = model.predict(rows, params={"predict_method": "predict_proba"})

    assert isinstance(proba, pd.DataFrame) and list(proba.columns) == list(pipeline.classes_) == ["no", "yes"]
    np.testing.assert_allclose(proba.to_numpy(), pipeline.predict_proba(rows), rtol=0, atol=1e-12)
    assert list(model.predict(rows)) == list(pipeline.predict(rows))  # labels stay the default
    assert list(model.predict(rows, params={"predict_method": "predict"})) == list(pipeline.predict(rows))
    params = model.metadata.get_params_schema()
    assert params.to_dict() == [{"name": "predict_method", "type": "string", "default": "predict",
                                 "shape": None}]
    assert model.metadata.flavors["python_function"]["loader_module"] == "looml.store.pyfunc"
    # The tracking URI is process-wide: another module's test may have moved it since the fixture.
    mlflow.set_tracking_uri(f"sqlite:///{(folder / '.looml' / 'mlflow.db').resolve()}")
    assert mlflow.sklearn.load_model("models:/contract@champion").predict(rows).tolist() == \
        list(pipeline.predict(rows))  # the sklearn flavor is unchanged


def test_an_unknown_predict_method_is_named_with_a_hint(champion) -> None:
    model, folder = champion
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match=r"params.predict_method: 'predict_probs' is not one of a "
                                              r"classifier's methods; did you mean 'predict_proba'\? use "
                                              r"'predict' or 'predict_proba'"):
        model.predict(_rows(folder).head(3), params={"predict_method": "predict_probs"})


def test_mlflow_scoring_passes_the_params_of_an_invocations_body(champion) -> None:
    """What `mlflow models serve` does with a body's "params" (its handler, called in process)."""
    import json

    from mlflow.pyfunc import scoring_server

    model, folder = champion
    rows = _rows(folder).head(3)
    body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False)),
                       "params": {"predict_method": "predict_proba"}})

    answer = scoring_server.invocations(body, "application/json", model, model.metadata.get_input_schema())

    assert answer.status == 200, answer.response
    predictions = json.loads(answer.response)["predictions"]
    assert [sorted(p) for p in predictions] == [["no", "yes"]] * 3
    np.testing.assert_allclose([[p["no"], p["yes"]] for p in predictions],
                               model.get_raw_model().predict_proba(rows), atol=1e-12)


def test_a_regressor_declares_no_params_and_predicts_values(tmp_path: Path) -> None:
    noise = np.random.default_rng(1).normal(size=120) * 8
    frame = _frame(rows=120).assign(label=lambda f: f["count"] * 2.0 + noise)
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "looml.yaml").write_text(
        "seed: 7\ndata: {source: data.csv, target: label}\nsplit: {test_size: 0.25, folds: 2}\n"
        "models: {candidates: [linear]}\nregistry: {model_name: values}\n")
    result = looml.run(tmp_path / "looml.yaml")
    mlflow.set_tracking_uri(result.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/values@champion")
    rows = frame.drop(columns=["label"]).head(5)

    assert model.metadata.get_params_schema() is None
    np.testing.assert_allclose(model.predict(rows), model.get_raw_model().predict(rows))
