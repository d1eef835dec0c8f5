"""Request validation against the served model's schema: every problem by column and row, warnings
for what the model can still score, the same findings for 3 rows and for 10,000."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from looml.data.schema import ColumnSchema, Schema
from looml.errors import RequestError
from looml.serve.model import Batch, ServedModel
from looml.serve.validation import validate_batch

FEATURES = {"age": "numeric", "income": "numeric", "city": "categorical", "note": "categorical",
            "signup": "datetime", "bonus": "numeric"}


def served(schema: Schema | None = None, features: dict[str, str] | None = None) -> ServedModel:
    """A served model as `load_model` builds it; validation reads only its features and schema."""
    return ServedModel(name="m", version="1", run_id="r", task="classification",
                       features=features or FEATURES, classes=["no", "yes"], pipeline=None,
                       scorer=None, schema=schema)  # type: ignore[arg-type]


SCHEMA = Schema(target="label", columns={
    "age": ColumnSchema(type="numeric", nullable=False, min=0, max=120),
    "income": ColumnSchema(type="numeric", nullable=True, min=0.0),
    "city": ColumnSchema(type="categorical", nullable=False, categories=["lyon", "nice", "paris"]),
    "note": ColumnSchema(type="categorical", nullable=True),
    "signup": ColumnSchema(type="datetime", nullable=False),
    "bonus": ColumnSchema(type="numeric", required=False, nullable=True),
    "customer_id": ColumnSchema(type="numeric", role="id", nullable=False),
    "label": ColumnSchema(type="categorical", role="target", categories=["no", "yes"]),
})
MODEL = served(SCHEMA)


def good(rows: int = 3) -> dict[str, list]:
    return {"age": [30 + r % 50 for r in range(rows)], "income": [1000.0 * (r % 7) for r in range(rows)],
            "city": [("lyon", "nice", "paris")[r % 3] for r in range(rows)],
            "note": [f"n{r % 4}" for r in range(rows)],
            "signup": [f"2024-0{1 + r % 9}-1{r % 10}" for r in range(rows)],
            "bonus": [r % 2 for r in range(rows)]}


def test_a_clean_batch_has_no_warnings() -> None:
    assert validate_batch(good(), MODEL, 100) == []
    assert validate_batch(good(1000), MODEL, 1000) == []


def test_every_problem_is_listed_by_column_and_row_at_once() -> None:
    batch = good(8)
    del batch["age"]
    batch["agee"] = [30] * 8
    batch["income"][2] = "lots"
    batch["income"][5] = "n/a"
    batch["income"][6] = math.inf
    batch["city"][1] = None
    batch["city"][4] = ["lyon"]
    batch["signup"][0] = "yesterday"
    batch["signup"][3] = 20240101
    batch["signup"][7] = None
    with pytest.raises(RequestError, match="invalid request: 7 problems") as info:
        validate_batch(batch, MODEL, 100)
    assert info.value.status == 422
    assert [(p.loc, p.message, p.fix) for p in info.value.problems] == [
        ("columns.age", "missing: the model needs this numeric feature",
         "the request has 'agee': rename it to 'age'"),
        ("columns.income rows 2, 5", "not a number: 'lots', 'n/a' (2 rows)",
         'send numbers (or numeric strings such as "3.5"), null where missing'),
        ("columns.income row 6", "infinite, which no model can use: inf (1 row)",
         "send a finite number, or null where the value is unknown"),
        ("columns.city row 4", "a list or object, not one value: ['lyon'] (1 row)",
         "send one category (a string) per row"),
        ("columns.city row 1", "1 missing value, and the schema says `nullable: false` (training saw no gap "
                               "in this column)", "send a value in every row"),
        ("columns.signup rows 0, 3", "not a date: 'yesterday', 20240101 (2 rows)",
         'send dates as ISO 8601 text, such as "2024-05-01" or "2024-05-01T12:30:00", null where missing'),
        ("columns.signup row 7", "1 missing value, and the schema says `nullable: false` (training saw no "
                                 "gap in this column)", "send a value in every row"),
    ]


def test_a_missing_column_without_a_near_name_says_to_add_it() -> None:
    batch = good()
    del batch["city"]
    with pytest.raises(RequestError, match=r"columns\.city: missing: the model needs this categorical "
                                           r"feature\n    fix: add the column 'city' \(null where a value "
                                           r"is unknown\)"):
        validate_batch(batch, MODEL, 100)


def test_many_bad_rows_are_named_first_five_then_counted() -> None:
    batch = good(20)
    batch["age"] = ["x"] * 20
    with pytest.raises(RequestError, match=r"columns\.age rows 0, 1, 2, 3, 4 and 15 more: not a number: 'x', "
                                           r"'x', 'x', 'x', 'x' and 15 more \(20 rows\)"):
        validate_batch(batch, MODEL, 100)


def test_unknown_categories_out_of_range_extra_and_absent_optional_columns_are_warnings() -> None:
    batch = good(6)
    batch["city"][1] = "rome"
    batch["city"][3] = "oslo"
    batch["city"][4] = "rome"
    batch["age"][2] = 130
    batch["income"][0] = -5.0
    batch["cty"] = ["x"] * 6
    batch["customer_id"] = list(range(6))  # a schema column the model does not use: ignored quietly
    del batch["bonus"]
    assert validate_batch(batch, MODEL, 100) == [
        "columns.age: 1 row outside the schema's range 0 to 120: 130 (row 2)",
        "columns.income: 1 row outside the schema's range 0 to inf: -5.0 (row 0)",
        "columns.city: 3 rows with categories the schema does not list: 'rome', 'oslo' (rows 1, 3, 4); the "
        "model scores them as an unknown category",
        "columns.bonus: absent; every row counts as missing",
        "column 'cty': not in the model's schema; ignored ('cty': did you mean 'city'?)",
    ]


def test_numbers_as_text_gaps_and_numpy_values_are_accepted() -> None:
    batch = good(4)
    batch["age"] = ["34", " 22.5 ", 1e1, np.float32(40)]
    batch["income"] = [None, "", math.nan, "nan"]  # income is nullable: every form of a gap is fine
    batch["note"] = [None, 3, True, math.nan]
    batch["signup"] = ["2024-01-02T03:04:05", "31/01/2024", "2024-01-02 10:00", "20240102"]
    assert validate_batch(batch, MODEL, 100) == []


@pytest.mark.parametrize("rows", [3, 1000])
def test_a_boolean_in_a_column_that_held_numbers_is_422(rows: int) -> None:
    batch = good(rows)
    batch["age"][1] = True  # JSON true for an age: the pipeline would read 1.0 and score it
    with pytest.raises(RequestError) as caught:
        validate_batch(batch, MODEL, rows)
    assert caught.value.status == 422
    assert "columns.age row 1: a boolean, not a number" in caught.value.render()
    as_array = {**good(rows), "age": np.array([True] * rows)}
    with pytest.raises(RequestError, match="a boolean, not a number"):
        validate_batch(as_array, MODEL, rows)
    flags = served(SCHEMA.model_copy(update={"columns": {**SCHEMA.columns, "bonus": ColumnSchema(
        type="boolean", required=False, nullable=True)}}))
    assert validate_batch({**good(rows), "bonus": [r % 2 == 0 for r in range(rows)]}, flags, rows) == []


def test_boolean_and_integer_categories_compare_as_the_pipeline_reads_them() -> None:
    schema = Schema(target="label", columns={
        "flag": ColumnSchema(type="categorical", categories=["false", "true"]),
        "zip": ColumnSchema(type="categorical", categories=["75001"])})
    model = served(schema, {"flag": "categorical", "zip": "categorical"})
    assert validate_batch({"flag": [True, "false"], "zip": [75001, "75001"]}, model, 10) == []
    assert validate_batch({"flag": [np.array([True])[0], "yes"], "zip": [75002, "75001"]}, model, 10) == [
        "columns.flag: 1 row with categories the schema does not list: 'yes' (row 1); the model scores them "
        "as an unknown category",
        "columns.zip: 1 row with categories the schema does not list: 75002 (row 0); the model scores them "
        "as an unknown category",
    ]


def test_numpy_columns_as_the_binary_protocol_gives_them() -> None:
    batch: Batch = dict(good(3))
    batch["age"] = np.array([30, 200, 40], dtype=np.int32)
    batch["income"] = np.array([1.0, np.nan, np.inf], dtype=np.float32)
    batch["signup"] = np.array(["2024-01-01", "NaT", "2024-02-01"], dtype="datetime64[s]")
    with pytest.raises(RequestError, match="2 problems") as info:
        validate_batch(batch, MODEL, 100)
    assert [p.loc for p in info.value.problems] == ["columns.income row 2", "columns.signup row 1"]
    batch["income"] = np.array([1.0, np.nan, 3.0])
    batch["signup"] = np.array(["2024-01-01", "2024-01-02", "2024-02-01"], dtype=object)
    assert validate_batch(batch, MODEL, 100) == [
        "columns.age: 1 row outside the schema's range 0 to 120: 200 (row 1)"]
    batch["age"] = np.array(["2024-01-01"] * 3, dtype="datetime64[D]")
    with pytest.raises(RequestError, match=r"columns\.age rows 0, 1, 2: not a number"):
        validate_batch(batch, MODEL, 100)


@pytest.mark.parametrize("rows", [8, 10_000])
def test_small_and_large_batches_find_the_same_things(rows: int) -> None:
    """Below 64 rows a column is scanned in Python, above with numpy: the findings are the same."""
    batch = good(rows)
    batch["age"][1], batch["age"][5] = math.inf, None
    batch["income"][3] = -1.0
    batch["city"][2], batch["city"][6] = "rome", None
    batch["signup"][4] = "soon"
    with pytest.raises(RequestError, match="4 problems") as info:
        validate_batch(batch, MODEL, rows)
    assert [p.loc for p in info.value.problems] == ["columns.age row 1", "columns.age row 5",
                                                    "columns.city row 6", "columns.signup row 4"]
    batch["age"][1], batch["age"][5], batch["city"][6], batch["signup"][4] = 1, 2, "nice", "2024-01-01"
    assert validate_batch(batch, MODEL, rows) == [
        "columns.income: 1 row outside the schema's range 0 to inf: -1.0 (row 3)",
        "columns.city: 1 row with categories the schema does not list: 'rome' (row 2); the model scores them "
        "as an unknown category",
    ]
    batch["age"] = np.asarray(batch["age"], dtype=np.float64)
    batch["age"][7] = np.nan
    with pytest.raises(RequestError, match=r"columns\.age row 7: 1 missing value"):
        validate_batch(batch, MODEL, rows)


def test_too_many_rows_is_413_before_anything_else() -> None:
    with pytest.raises(RequestError, match=r"rows: 4 rows, more than the server's limit of 3\n    fix: "
                                           r"send at most 3 rows per request, or raise serve\.max_rows in "
                                           r"looml\.yaml") as info:
        validate_batch({"nothing": [1, 2, 3, 4]}, MODEL, 3)
    assert info.value.status == 413


def test_no_rows_and_uneven_columns_are_422() -> None:
    with pytest.raises(RequestError, match=r"rows: the request has no rows"):
        validate_batch({k: [] for k in FEATURES}, MODEL, 10)
    with pytest.raises(RequestError, match=r"rows: the request has no rows"):
        validate_batch({}, MODEL, 10)
    batch = good(3)
    batch["age"] = [1, 2]
    with pytest.raises(RequestError, match=r"columns: the columns have different numbers of rows: age 2, "
                                           r"income 3") as info:
        validate_batch(batch, MODEL, 10)
    assert info.value.status == 422 and len(info.value.problems) == 1


def test_without_a_schema_every_feature_is_required_and_may_be_missing() -> None:
    model = served(None)
    batch = good(2)
    batch["age"][0] = None
    batch["city"][0] = "anywhere"
    assert validate_batch(batch, model, 10) == []
    del batch["bonus"]
    with pytest.raises(RequestError, match=r"columns\.bonus: missing"):
        validate_batch(batch, model, 10)


def test_a_new_model_object_gets_its_own_checks() -> None:
    """A hot swap loads a new ServedModel: its schema, not the cached one of the old, applies."""
    batch = good(2)
    batch["age"][0] = 500
    assert validate_batch(batch, MODEL, 10) == ["columns.age: 1 row outside the schema's range 0 to 120: 500 "
                                                "(row 0)"]
    relaxed = SCHEMA.model_copy(update={"columns": {**SCHEMA.columns, "age": ColumnSchema(type="numeric")}})
    assert validate_batch(batch, served(relaxed), 10) == []


def test_a_text_column_is_checked_and_named_as_text() -> None:
    from looml.serve.model import PipelineScorer, ServedModel

    model = ServedModel(name="m", version="1", run_id="r", task="regression", features={"note": "text"},
                        classes=None, pipeline=None, scorer=PipelineScorer(None, {"note": "text"}))

    with pytest.raises(RequestError) as exc:
        validate_batch({"note": ["fine", ["a", "list"]]}, model, 10)

    assert exc.value.problems[0].fix == "send one text per row"
    assert validate_batch({"note": ["any words at all", None]}, model, 10) == []


def test_a_large_numeric_column_is_read_once_and_kept_as_float64() -> None:
    """Past 64 rows a list of numbers and nulls is left in the batch as the float64 array the checks
    read (the scorer and the prediction log reuse it); other columns and mixed lists stay as sent."""
    batch = good(100)
    batch["income"][3], batch["bonus"][4] = None, "2"
    assert validate_batch(batch, MODEL, 100) == []
    assert batch["income"].dtype == np.float64 and np.isnan(batch["income"][3])
    assert batch["age"].dtype == np.float64 and batch["age"][0] == 30.0
    assert isinstance(batch["bonus"], list) and batch["bonus"][4] == "2"  # a numeric string: as sent
    assert isinstance(batch["city"], list)
    small = good(3)
    validate_batch(small, MODEL, 100)
    assert isinstance(small["age"], list)


@pytest.mark.parametrize("rows", [3, 100])
def test_a_date_whose_day_and_month_can_be_swapped_is_422_and_one_reading_is_not(rows: int) -> None:
    """01/02/2023 is 2 January month first and 1 February day first: refused with both readings.
    31/12/2023 and 12/31/2023 have one reading each, and ISO 8601 text is never ambiguous."""
    batch = good(rows)
    batch["signup"][0], batch["signup"][1] = "31/12/2023", "12/31/2023 08:30"
    batch["signup"][2] = "2023-01-02"
    assert validate_batch(batch, MODEL, rows) == []
    batch["signup"][1], batch["signup"][2] = "01/02/2023", "3.4.24"
    with pytest.raises(RequestError) as info:
        validate_batch(batch, MODEL, rows)
    [problem] = info.value.problems
    assert problem.loc == "columns.signup rows 1, 2"
    assert problem.message == ("a date whose day and month can be swapped (the first: 2 January month first, "
                               "1 February day first): '01/02/2023', '3.4.24' (2 rows)")
    assert "ISO 8601" in problem.fix and "2024-05-01" in problem.fix


def test_a_flood_of_unknown_columns_is_named_briefly_and_quickly() -> None:
    # 100,000 unknown keys in a record took 4.7 s of "did you mean" hints before issue 16.
    batch = good(1)
    batch.update({f"k{i}": [i] for i in range(100_000)})
    start = time.perf_counter()

    warnings = validate_batch(batch, MODEL, 100)

    assert time.perf_counter() - start < 1
    assert warnings[-1].startswith("columns 'k0', 'k1', ") and warnings[-1].endswith(
        "'k19' and 99980 more: not in the model's schema; ignored")


def test_a_misspelt_column_among_many_unknown_ones_is_still_suggested() -> None:
    batch = good(1)
    batch["cty"] = batch.pop("city")
    batch.update({f"k{i}": [i] for i in range(100_000)})

    with pytest.raises(RequestError, match=r"fix: the request has 'cty': rename it to 'city'"):
        validate_batch(batch, MODEL, 100)
