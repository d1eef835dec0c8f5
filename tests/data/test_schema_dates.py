"""Date ranges in the schema: bounded below (earliest less the margin), open above unless the file
says otherwise; checked in `check_batch` and in the server's request validation (issue 13 item 8)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from looml.data.anomalies import check_batch
from looml.data.profile import profile
from looml.data.schema import ColumnSchema, Schema, infer_schema, load_schema, schema_yaml
from looml.data.validate import validate
from looml.errors import DataError
from looml.serve.model import ServedModel
from looml.serve.validation import validate_batch
from looml.spec import DataSpec, PreprocessingSpec, SplitSpec, ValidationSpec

START, END = dt.datetime(2022, 1, 1), dt.datetime(2024, 12, 31)


def trained_on_2022_to_2024(tmp_path: Path) -> Schema:
    rng = np.random.default_rng(0)
    days = (END - START).days
    signup = [START + dt.timedelta(days=int(d)) for d in rng.integers(0, days + 1, 300)]
    frame = pl.DataFrame({"signup": signup, "x": rng.normal(size=300), "label": rng.choice(["a", "b"], 300)})
    frame = frame.with_columns(pl.when(pl.int_range(300) == 0).then(START).when(pl.int_range(300) == 1)
                               .then(END).otherwise(pl.col("signup")).alias("signup"))
    seen = profile(frame, target="label", seed=0)
    report = validate(seen, DataSpec(source="d.csv", target="label"), SplitSpec(), PreprocessingSpec())
    schema = infer_schema(frame, seen, report, [], 0.1)
    path = tmp_path / "looml.schema.yaml"
    path.write_text(schema_yaml(schema, "test"), encoding="utf-8")
    assert load_schema(path) == schema  # the bounds read back as written
    return schema


def test_a_date_column_is_bounded_below_by_the_margin_and_open_above(tmp_path: Path) -> None:
    col = trained_on_2022_to_2024(tmp_path).columns["signup"]
    span = END - START
    assert col.earliest == dt.datetime.combine((START - span * 0.1).date(), dt.time())  # 2021-09-13
    assert col.earliest == dt.datetime(2021, 9, 13)
    assert col.latest is None


def test_check_batch_names_dates_before_the_earliest(tmp_path: Path) -> None:
    schema = trained_on_2022_to_2024(tmp_path)
    moments = [dt.datetime(1999, 5, 1), dt.datetime(2025, 6, 1), dt.datetime(2030, 1, 1)]
    batch = pl.DataFrame({"signup": moments, "x": [0.0, 1.0, 2.0]})
    [found] = check_batch(batch, schema, ValidationSpec(out_of_range={"threshold": 0.0}), scoring=True)
    assert (found.check, found.column) == ("out_of_range", "signup")
    assert found.observed == ("1 rows (33.3%) outside the range, from 1999-05-01 00:00:00 to "
                              "2030-01-01 00:00:00")
    assert found.expected == "moments from 2021-09-13 to any later date"
    assert "earliest:" in found.fix
    later = batch.filter(pl.col("signup").dt.year() > 2000)
    assert check_batch(later, schema, ValidationSpec(out_of_range={"threshold": 0.0}), scoring=True) == []


def test_the_server_warns_of_dates_outside_the_range_as_text_objects_and_arrays(tmp_path: Path) -> None:
    schema = Schema(target="label", columns={
        "signup": ColumnSchema(type="datetime", earliest=dt.datetime(2021, 9, 13),
                               latest=dt.datetime(2026, 1, 1)),
        "label": ColumnSchema(type="categorical", role="target")})
    model = ServedModel(name="m", version="1", run_id="r", task="classification",
                        features={"signup": "datetime"}, classes=["a", "b"], pipeline=None, scorer=None,
                        schema=schema)  # type: ignore[arg-type]
    text = {"signup": ["1999-05-01", "2024-02-03T10:00:00+01:00", "2030-01-01 08:00", None]}
    assert validate_batch(text, model, 10) == [
        "columns.signup: 2 rows outside the schema's range 2021-09-13 to 2026-01-01: '1999-05-01', "
        "'2030-01-01 08:00' (rows 0, 2)"]
    objects = {"signup": [dt.date(1999, 5, 1), dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]}
    [warning] = validate_batch(objects, model, 10)
    assert warning.startswith("columns.signup: 1 row outside the schema's range")
    array = {"signup": np.array(["1999-05-01", "2024-01-01"], dtype="datetime64[s]")}
    assert validate_batch(array, model, 10) == [
        "columns.signup: 1 row outside the schema's range 2021-09-13 to 2026-01-01: "
        "'1999-05-01T00:00:00.000000' (row 0)"]
    assert validate_batch({"signup": ["2022-06-01"]}, model, 10) == []


def test_earliest_after_latest_is_a_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "looml.schema.yaml"
    path.write_text("version: 1\ntarget: label\ncolumns:\n  signup: {type: datetime, earliest: 2025-01-01, "
                    "latest: 2024-01-01}\n  label: {type: categorical, role: target}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"columns\.signup\.earliest.*earliest is after latest"):
        load_schema(path)
