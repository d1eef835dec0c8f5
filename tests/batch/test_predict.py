"""`looml predict`: streaming batch scoring with the registered model, the server's input checks,
a reject file, atomic output and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import looml
from looml.batch import predict
from looml.cli import app
from looml.errors import DataError, RegistryError, SpecError
from looml.serve.model import ServedModel, load_model

ROWS = 400


def churn(rows: int = ROWS, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    plan = rng.choice(["basic", "pro", "team"], rows)
    charges = rng.gamma(2.0, 30.0, rows).round(2)
    score = -0.04 * tenure + (plan == "basic") + 0.01 * charges + rng.normal(size=rows)
    charges_with_gaps = np.where(rng.random(rows) < 0.05, np.nan, charges)
    return pl.DataFrame({"customer_id": [f"c{i:04d}" for i in range(rows)], "tenure": tenure, "plan": plan,
                         "charges": charges_with_gaps, "label": np.where(score > 0, "yes", "no")},
                        ).with_columns(pl.col("charges").fill_nan(None))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    churn().write_csv(root / "train.csv")
    spec = root / "looml.yaml"
    spec.write_text("seed: 3\ndata:\n  source: train.csv\n  target: label\n  id_columns: [customer_id]\n"
                    "models:\n  candidates: [linear]\nsplit:\n  folds: 3\nregistry:\n  model_name: churn\n",
                    encoding="utf-8")
    looml.run(spec)
    return spec


@pytest.fixture(scope="module")
def model(project: Path) -> ServedModel:
    return load_model(f"sqlite:///{project.parent / '.looml' / 'mlflow.db'}", "churn")


@pytest.fixture(scope="module")
def batch() -> pl.DataFrame:
    """Rows the model has not seen, without the label."""
    return churn(rows=500, seed=1).drop("label")


def expected(model: ServedModel, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    X = frame.to_pandas()
    return model.pipeline.predict(X), model.pipeline.predict_proba(X)


def read(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


@pytest.mark.parametrize(("given", "written", "chunk_rows"), [
    ("parquet", "parquet", 70), ("csv", "csv", 64), ("csv", "parquet", 500), ("parquet", "csv", 1000)])
def test_predictions_equal_the_pipeline_whatever_the_formats_and_chunks(
        project: Path, model: ServedModel, batch: pl.DataFrame, tmp_path: Path, given: str, written: str,
        chunk_rows: int) -> None:
    source = tmp_path / f"batch.{given}"
    batch.write_parquet(source) if given == "parquet" else batch.write_csv(source)
    out = tmp_path / f"scored.{written}"
    calls: list[tuple[int, int | None]] = []

    result = predict(project, str(source), out, chunk_rows=chunk_rows, on_progress=lambda *a: calls.append(a))

    labels, proba = expected(model, batch)
    scored = read(out)
    assert scored.columns == ["customer_id", "prediction", "proba_no", "proba_yes"]
    assert scored["customer_id"].to_list() == batch["customer_id"].to_list()
    assert scored["prediction"].to_list() == labels.tolist()
    np.testing.assert_allclose(scored.select("proba_no", "proba_yes").to_numpy(), proba, rtol=0, atol=1e-9)
    assert (result.rows, result.scored, result.rejected) == (500, 500, 0)
    assert (result.model_name, result.model_version) == ("churn", "1")
    total = 500 if given == "parquet" else None
    assert calls == [(min(end, 500), total) for end in range(chunk_rows, 500 + chunk_rows, chunk_rows)]
    assert leftovers(tmp_path) == []


def test_a_glob_is_scored_in_file_order_with_a_row_key_when_there_is_no_id(
        project: Path, model: ServedModel, batch: pl.DataFrame, tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    no_id = batch.drop("customer_id")
    for i, (start, stop) in enumerate([(0, 130), (130, 131), (131, 500)]):
        no_id[start:stop].write_parquet(parts / f"part-{i}.parquet")

    predict(project, str(parts / "*.parquet"), tmp_path / "out.parquet", chunk_rows=60)

    scored = pl.read_parquet(tmp_path / "out.parquet")
    assert scored.columns[:2] == ["row", "prediction"]
    assert scored["row"].to_list() == list(range(500))
    assert scored["prediction"].to_list() == expected(model, batch)[0].tolist()


@pytest.mark.parametrize("given", ["parquet", "csv"])
def test_kept_columns_are_copied_beside_the_key(
        project: Path, model: ServedModel, batch: pl.DataFrame, tmp_path: Path, given: str) -> None:
    extra = batch.with_columns(region=pl.Series([f"r{i % 7}" for i in range(batch.height)]),
                               weight=pl.Series([i / 4 for i in range(batch.height)]))
    source = tmp_path / f"batch.{given}"
    extra.write_parquet(source) if given == "parquet" else extra.write_csv(source)
    bad, reasons = corrupt(extra)
    bad.write_parquet(tmp_path / "bad.parquet")

    predict(project, str(source), tmp_path / "out.parquet", chunk_rows=120,
            keep_columns=["region", "plan", "weight", "customer_id", "region"])
    predict(project, str(tmp_path / "bad.parquet"), tmp_path / "good.parquet", keep_columns=["region"],
            reject_file=tmp_path / "rejects.parquet")

    scored = pl.read_parquet(tmp_path / "out.parquet")
    assert scored.columns == ["customer_id", "region", "plan", "weight", "prediction", "proba_no",
                              "proba_yes"]
    assert scored.select("customer_id", "region", "plan", "weight").equals(
        extra.select("customer_id", "region", "plan", "weight"))
    assert scored["prediction"].to_list() == expected(model, batch)[0].tolist()
    rejected = pl.read_parquet(tmp_path / "rejects.parquet")
    assert rejected.columns == ["customer_id", "region", "reason", "tenure", "plan", "charges"]
    assert rejected["region"].to_list() == [f"r{r % 7}" for r in sorted(reasons)]
    assert pl.read_parquet(tmp_path / "good.parquet").columns[:2] == ["customer_id", "region"]


def test_a_kept_column_the_input_lacks_is_named_with_a_hint_before_anything_is_written(
        project: Path, batch: pl.DataFrame, tmp_path: Path) -> None:
    batch.write_parquet(tmp_path / "b.parquet")

    with pytest.raises(SpecError) as exc:
        predict(project, str(tmp_path / "b.parquet"), tmp_path / "out.csv",
                keep_columns=["tenur", "segment", "prediction"])

    text = exc.value.render()
    assert "3 problems" in text
    assert "--keep-columns: is not a column of the input (got 'tenur')\n    fix: did you mean 'tenure'? " \
        "the input has: customer_id, tenure, plan, charges" in text
    assert "--keep-columns: is not a column of the input (got 'segment')\n    fix: the input has: " in text
    assert "--keep-columns: is a column the output already has (got 'prediction')" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.parquet"]


def test_a_kept_column_missing_from_a_later_file_stops_the_run(
        project: Path, batch: pl.DataFrame, tmp_path: Path) -> None:
    extra = batch.with_columns(region=pl.lit("north"))
    extra[:130].write_parquet(tmp_path / "part-0.parquet")
    extra[130:].drop("region").write_parquet(tmp_path / "part-1.parquet")

    with pytest.raises(DataError, match=r"--data: the kept column\(s\) are absent from the rows from 130 "
                                        r"on, but present before \(got 'region'\)"):
        predict(project, str(tmp_path / "part-*.parquet"), tmp_path / "out.parquet", keep_columns=["region"])
    assert not (tmp_path / "out.parquet").exists() and leftovers(tmp_path) == []


def test_an_id_column_missing_from_a_later_file_stops_the_run(
        project: Path, batch: pl.DataFrame, tmp_path: Path) -> None:
    batch[:130].write_parquet(tmp_path / "part-0.parquet")
    batch[130:].drop("customer_id").write_parquet(tmp_path / "part-1.parquet")

    with pytest.raises(DataError, match=r"--data: the id column\(s\) are absent from the rows from 130 "
                                        r"on, but present before \(got 'customer_id'\)\n    fix: give every "
                                        r"input file the same id columns"):
        predict(project, str(tmp_path / "part-*.parquet"), tmp_path / "out.parquet", chunk_rows=100)
    assert not (tmp_path / "out.parquet").exists() and leftovers(tmp_path) == []


def test_warnings_are_reported_and_the_rows_scored(
        project: Path, batch: pl.DataFrame, tmp_path: Path) -> None:
    odd = batch.with_columns(pl.when(pl.int_range(pl.len()).is_in([3, 7, 260])).then(pl.lit("platinum"))
                             .otherwise(pl.col("plan")).alias("plan"))
    odd.write_parquet(tmp_path / "odd.parquet")

    result = predict(project, str(tmp_path / "odd.parquet"), tmp_path / "out.parquet", chunk_rows=250)

    assert result.scored == 500
    assert result.warnings == [
        "rows 0-249: columns.plan: 2 rows with categories the schema does not list: 'platinum'; the model "
        "scores them as an unknown category",
        "rows 250-499: columns.plan: 1 row with categories the schema does not list: 'platinum'; the model "
        "scores them as an unknown category"]


def test_without_data_the_spec_source_is_scored(project: Path, tmp_path: Path) -> None:
    result = predict(project, None, tmp_path / "train.csv")

    assert result.source == "train.csv" and result.rows == ROWS
    assert read(tmp_path / "train.csv").height == ROWS


def corrupt(batch: pl.DataFrame) -> tuple[pl.DataFrame, dict[int, list[str]]]:
    """Bad rows in several chunks of 100: at chunk edges, and 90 in one chunk (more than validation
    names in one message), each with the reason it should get."""
    text = [None if v is None else str(v) for v in batch["tenure"].to_list()]
    plan = batch["plan"].to_list()
    charges = batch["charges"].to_list()
    reasons: dict[int, list[str]] = {}
    for row in [0, 99, 100, 250, *range(300, 390)]:
        text[row] = "abc"
        reasons[row] = ["columns.tenure: not a number: 'abc'"]
    for row in [99, 420]:
        plan[row] = None
        reasons.setdefault(row, []).append("columns.plan: 1 missing value, and the schema says `nullable: "
                                           "false`")
    charges[499] = float("inf")
    reasons[499] = ["columns.charges: infinite, which no model can use: inf"]
    return batch.with_columns(pl.Series("tenure", text), pl.Series("plan", plan),
                              pl.Series("charges", charges)), reasons


@pytest.mark.parametrize("rejects", ["rejects.csv", "rejects.parquet"])
def test_bad_rows_go_to_the_reject_file_with_the_reason_and_the_rest_is_scored(
        project: Path, model: ServedModel, batch: pl.DataFrame, tmp_path: Path, rejects: str) -> None:
    bad, reasons = corrupt(batch)
    bad.write_parquet(tmp_path / "bad.parquet")

    result = predict(project, str(tmp_path / "bad.parquet"), tmp_path / "out.csv", chunk_rows=100,
                     reject_file=tmp_path / rejects)

    assert (result.rows, result.scored, result.rejected) == (500, 500 - len(reasons), len(reasons))
    rejected = read(tmp_path / rejects)
    assert rejected.columns == ["customer_id", "reason", "tenure", "plan", "charges"]
    assert rejected["customer_id"].to_list() == [f"c{r:04d}" for r in sorted(reasons)]
    for row, reason in zip(sorted(reasons), rejected["reason"].to_list(), strict=True):
        assert [part[:len(want)] for part, want in zip(reason.split("; "), reasons[row], strict=True)] == \
            reasons[row]
    assert rejected.row(0, named=True)["tenure"] == "abc"
    good = batch.filter(~pl.int_range(pl.len()).is_in(list(reasons)))
    scored = pl.read_csv(tmp_path / "out.csv")
    assert scored["customer_id"].to_list() == good["customer_id"].to_list()
    assert scored["prediction"].to_list() == expected(model, good)[0].tolist()


def test_without_a_reject_file_bad_rows_stop_the_run_and_leave_no_output(
        project: Path, batch: pl.DataFrame, tmp_path: Path) -> None:
    bad, _ = corrupt(batch)
    bad[150:].write_csv(tmp_path / "bad.csv")  # rows 0-99 are clean; 100 and 150-239 are not
    out = tmp_path / "out.parquet"
    out.write_bytes(b"yesterday's predictions")

    rows = "rows 100, 150, 151, 152, 153 and 46 more"
    with pytest.raises(DataError, match=rf"--data: {rows} fail the model's input checks; nothing was "
                                        r"written\n    fix: .*pass --reject-file FILE") as exc:
        predict(project, str(tmp_path / "bad.csv"), out, chunk_rows=100)

    assert f"columns.tenure {rows}: not a number: 'abc'\n" in exc.value.render()
    assert out.read_bytes() == b"yesterday's predictions"
    assert leftovers(tmp_path) == []


def test_a_missing_feature_stops_the_run_even_with_a_reject_file(
        project: Path, batch: pl.DataFrame, tmp_path: Path) -> None:
    batch.drop("charges").write_parquet(tmp_path / "short.parquet")

    with pytest.raises(DataError, match=r"--data columns.charges: missing: the model needs this numeric "
                                        r"feature"):
        predict(project, str(tmp_path / "short.parquet"), tmp_path / "out.csv",
                reject_file=tmp_path / "rejects.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.parquet"]


def test_paths_and_chunk_size_are_checked_before_anything_is_read(project: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as exc:
        predict(project, "nowhere.csv", tmp_path / "out.txt", reject_file=tmp_path / "out.txt", chunk_rows=0)

    text = exc.value.render()
    assert "--out: cannot tell the output format from the extension (got" in text
    assert "fix: name the file *.parquet or *.csv" in text
    assert "--reject-file: the same file as --out" in text
    assert "--chunk-rows: must be at least 1 (got 0)" in text


def test_an_empty_input_is_an_error(project: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("customer_id,tenure,plan,charges\n")

    with pytest.raises(DataError, match="--data: the input has no rows"):
        predict(project, str(tmp_path / "empty.csv"), tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists() and leftovers(tmp_path) == []


def test_an_unreadable_file_names_the_file(project: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")

    with pytest.raises(DataError, match=r"--data: cannot read the file as parquet: .*broken.parquet"):
        predict(project, str(tmp_path / "broken.parquet"), tmp_path / "out.csv")


def test_a_csv_id_that_changes_type_late_in_the_file_is_named(project: Path, tmp_path: Path) -> None:
    frame = churn(rows=10_050, seed=2).drop("label")
    ids = [str(i) for i in range(10_040)] + [f"x{i}" for i in range(10)]
    frame.with_columns(pl.Series("customer_id", ids)).write_csv(tmp_path / "late.csv")

    with pytest.raises(DataError, match=r"--data: cannot read the file as csv: .*\n    fix: check that the "
                                        r"file is valid csv; an id column must keep the type of its first "
                                        r"10,000 values"):
        predict(project, str(tmp_path / "late.csv"), tmp_path / "out.csv", chunk_rows=5000)
    assert not (tmp_path / "out.csv").exists() and leftovers(tmp_path) == []


def test_an_unknown_version_is_a_registry_error(project: Path, batch: pl.DataFrame, tmp_path: Path) -> None:
    batch.write_parquet(tmp_path / "b.parquet")

    with pytest.raises(RegistryError, match="churn"):
        predict(project, str(tmp_path / "b.parquet"), tmp_path / "out.csv", version="99")


def test_cli_exit_codes_and_json(project: Path, batch: pl.DataFrame, tmp_path: Path) -> None:
    bad, reasons = corrupt(batch)
    bad.write_csv(tmp_path / "bad.csv")
    runner = CliRunner()
    base = ["predict", str(project), "--data", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o.pq")]

    ok = runner.invoke(app, [*base, "--reject-file", str(tmp_path / "r.csv"), "--chunk-rows", "150",
                             "--json"])
    assert ok.exit_code == 0, ok.output
    result = json.loads(ok.stdout)
    assert (result["rows"], result["rejected"], result["reject_file"]) == (500, len(reasons),
                                                                           str(tmp_path / "r.csv"))
    assert result["model_version"] == "1" and result["rows_per_second"] > 0

    stopped = runner.invoke(app, [*base, "--json"])
    assert stopped.exit_code == 3
    error = json.loads(stopped.stdout)
    assert error["error"] == "data" and "--reject-file FILE" in error["problems"][0]["fix"]

    assert runner.invoke(app, [*base, "--version", "99"]).exit_code == 5
    assert runner.invoke(app, [*base[:-1], "o.txt"]).exit_code == 2

    typo = runner.invoke(app, [*base, "--keep-columns", "customer_id, plann", "--reject-file",
                               str(tmp_path / "r.csv")])
    assert typo.exit_code == 2
    assert "--keep-columns: is not a column of the input (got 'plann')" in typo.output
    assert "did you mean 'plan'?" in typo.output and "Traceback" not in typo.output
    empty = runner.invoke(app, [*base, "--keep-columns", "plan,,tenure"])
    assert empty.exit_code == 2 and "--keep-columns: has an empty column name" in empty.output
    kept = runner.invoke(app, [*base, "--keep-columns", "plan", "--reject-file", str(tmp_path / "r.csv")])
    assert kept.exit_code == 0, kept.output
    assert pl.read_parquet(tmp_path / "o.pq").columns[:2] == ["customer_id", "plan"]


def test_cli_prints_a_summary(project: Path, batch: pl.DataFrame, tmp_path: Path) -> None:
    bad, reasons = corrupt(batch)
    bad.write_parquet(tmp_path / "b.parquet")

    done = CliRunner().invoke(app, ["predict", str(project), "--data", str(tmp_path / "b.parquet"), "--out",
                                    str(tmp_path / "o.csv"), "--reject-file", str(tmp_path / "r.csv")])

    assert done.exit_code == 0, done.output
    text = done.stdout.replace("\n", "")
    assert f"scored {500 - len(reasons)} of 500 rows with churn version 1" in text
    assert f"wrote   {tmp_path / 'o.csv'}" in text
    assert f"rejected {len(reasons)} rows that fail the input checks, with the reason: {tmp_path}/r.csv" \
        in text


def test_dates_whose_day_and_month_can_be_swapped_stay_text_for_validation_to_name() -> None:
    """Polars reads a date column by its first value's order; with 01/02/2023 in it the column stays
    text, so the server's check refuses those rows instead of reading them one way silently."""
    from looml.batch.chunks import _batch

    frame = pl.DataFrame({"iso": ["2024-01-02", None], "swappable": ["01/02/2023", "31/12/2023"],
                          "one_reading": ["31/12/2023", "25/01/2024"]})
    batch = _batch(frame, {"iso": "datetime", "swappable": "datetime", "one_reading": "datetime"})
    assert batch["iso"].dtype.kind == "M"
    assert batch["swappable"].tolist() == ["01/02/2023", "31/12/2023"]
    assert batch["one_reading"].dtype.kind == "M" and str(batch["one_reading"][0])[:10] == "2023-12-31"
