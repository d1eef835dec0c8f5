"""The data schema: inferred from the data, written as YAML, read back unchanged, and edited."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes

from looml.data.anomalies import check_batch
from looml.data.profile import profile
from looml.data.schema import ColumnSchema, Schema, infer_schema, load_schema, schema_yaml
from looml.data.validate import validate
from looml.errors import DataError
from looml.spec import DataSpec, PreprocessingSpec, SplitSpec, ValidationSpec

CHECKS = ValidationSpec()


def infer(frame: pl.DataFrame, target: str = "label", *, margin: float = 0.1, **data: Any) -> Schema:
    report = validate(profile(frame, target=target, seed=0), DataSpec(source="d.csv", target=target, **data),
                      SplitSpec(), PreprocessingSpec())
    return infer_schema(frame, profile(frame, target=target, seed=0), report, data.get("id_columns", []),
                        margin)


def messy(rows: int = 300, seed: int = 0) -> pl.DataFrame:
    """Ids, integers, floats with gaps, quoted / unicode categories, booleans, dates, free text."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 10_000, rows)
    return pl.DataFrame({
        "cust_id": np.arange(rows) * 7 + 1000,
        "age": rng.integers(18, 90, rows),
        "income": pl.Series(np.where(rng.random(rows) < 0.1, np.nan, income)).fill_nan(None),
        "plan": rng.choice(["basic", "pro: plus", "# team", "'quoted'", "été", "yes", "null", ""], rows),
        "active": rng.random(rows) < 0.5,
        "signup": pl.Series(rng.integers(0, 10**9, rows) * 1000).cast(pl.Datetime("ms")),
        "note": [f"free text {i}" for i in rng.integers(0, 10**9, rows)],
        "junk": rng.normal(size=rows),
        "empty": pl.Series([None] * rows, dtype=pl.Float64),
        "label": rng.choice(["yes", "no"], rows),
    })


def write(tmp_path: Path, schema: Schema) -> Path:
    path = tmp_path / "looml.schema.yaml"
    path.write_text(schema_yaml(schema, "data snapshot 0123456789ab"), encoding="utf-8")
    return path


# --- inference ------------------------------------------------------------------------------

def test_inference_on_a_messy_table() -> None:
    frame = messy()

    schema = infer(frame, id_columns=["cust_id"], drop_columns=["junk"])

    assert schema.target == "label" and list(schema.columns) == frame.columns
    cols = schema.columns
    # An id is required but unbounded: new rows bring new ids.
    assert cols["cust_id"] == ColumnSchema(type="numeric", role="id", nullable=False, cardinality=300)
    # 18..89 widened by 10 % of the span (7.1) on each side, to whole numbers outward.
    assert cols["age"] == ColumnSchema(type="numeric", nullable=False, min=10.0, max=97.0,
                                       cardinality=int(frame["age"].n_unique()))
    income = frame["income"]
    pad = (income.max() - income.min()) * 0.1
    assert cols["income"].nullable is True
    assert cols["income"].missing_rate == round(income.null_count() / 300, 6) > 0
    assert income.min() - pad - 1 < cols["income"].min <= income.min() - pad
    assert income.max() + pad <= cols["income"].max < income.max() + pad + 1
    assert cols["plan"].categories == sorted(set(frame["plan"].to_list()))
    assert cols["plan"].type == "categorical" and cols["plan"].cardinality == 8
    assert cols["active"] == ColumnSchema(type="boolean", nullable=False, categories=["false", "true"],
                                          cardinality=2)
    # Dates are bounded below only: later data is expected.
    assert cols["signup"].model_copy(update={"earliest": None}) == ColumnSchema(
        type="datetime", nullable=False, cardinality=300)
    assert cols["signup"].earliest < frame["signup"].min()
    # Dropped columns (listed, id-like, all missing) are ignored: optional and unconstrained.
    for name, kind in (("note", "categorical"), ("junk", "numeric"), ("empty", "numeric")):
        assert cols[name].model_dump(include={"type", "role", "required", "nullable", "min", "max",
                                              "categories"}) == {
            "type": kind, "role": "ignored", "required": False, "nullable": True, "min": None,
            "max": None, "categories": None}, name
    assert cols["note"].cardinality == 300 and cols["empty"].missing_rate == 1.0
    assert cols["label"] == ColumnSchema(type="categorical", role="target", nullable=False,
                                         categories=["no", "yes"], cardinality=2)


def test_a_domain_is_kept_for_at_most_50_values() -> None:
    rng = np.random.default_rng(1)
    frame = pl.DataFrame({"fifty": [f"v{i % 50}" for i in range(600)],
                          "many": [f"v{i % 51}" for i in range(600)],
                          "label": rng.choice(["a", "b"], 600)})

    cols = infer(frame).columns

    assert cols["fifty"].categories == sorted(f"v{i}" for i in range(50))
    assert cols["many"].categories is None and cols["many"].cardinality == 51


def test_domains_write_category_text_by_the_coercer_s_rule() -> None:
    from looml.data.schema import _domains
    from looml.learn.features import category_text

    values = [1.0, 2.0, None, 2.5, -3.0, 0.1]  # an integer-coded category with a gap reads as floats
    frame = pl.DataFrame({"tier": values, "flag": [True, False, None, True, True, False]})
    domains = _domains(frame, ["tier", "flag"])
    assert domains["tier"] == sorted(category_text(v) for v in values if v is not None)
    assert domains["tier"] == ["-3", "0.1", "1", "2", "2.5"] and domains["flag"] == ["false", "true"]
    assert [category_text(v) for v in (1, np.int64(1), 1.0, np.float32(2.0), True, "1.0")] == [
        "1", "1", "1", "2", "true", "1.0"]


@pytest.mark.parametrize("margin", [0.0, 0.1])
def test_bounds_are_whole_numbers_for_integers_and_always_hold_the_training_data(margin: float) -> None:
    rng = np.random.default_rng(2)
    frame = pl.DataFrame({
        "count": rng.integers(-7, 1234, 200),
        "ratio": rng.random(200) / 3 + 0.1234567,  # bounds beyond six digits, rounded outward
        "tiny": rng.random(200) * 1e-9,
        "huge": rng.random(200) * 1e12 + 1e15,
        "label": rng.choice(["a", "b"], 200),
    })

    cols = infer(frame, margin=margin).columns

    for name in ("count", "ratio", "tiny", "huge"):
        low, high = cols[name].min, cols[name].max
        assert low is not None and high is not None
        assert low <= frame[name].min() and frame[name].max() <= high
        assert len(f"{low:.15g}".lstrip("-").replace(".", "").split("e")[0].strip("0")) <= 6
    assert cols["count"].min == float(int(cols["count"].min)) and cols["count"].max % 1 == 0
    if margin == 0.0:
        assert (cols["count"].min, cols["count"].max) == (frame["count"].min(), frame["count"].max())
    assert check_batch(frame, Schema(target="label", columns=cols), CHECKS) == []


def test_a_non_negative_column_keeps_zero_as_its_lower_bound() -> None:
    rng = np.random.default_rng(6)
    frame = pl.DataFrame({"income": rng.uniform(0.0, 90_000.0, 300).round(2),
                          "vehicle_age": rng.integers(0, 30, 300), "delta": rng.normal(size=300),
                          "label": rng.choice(["a", "b"], 300)})
    cols = infer(frame, margin=0.1).columns
    assert cols["income"].min == 0.0 and cols["vehicle_age"].min == 0.0  # not -9,000 and -3
    assert cols["delta"].min is not None and cols["delta"].min < frame["delta"].min()  # still widened
    bad = frame.head(3).with_columns(pl.Series("vehicle_age", [-3, 2, 4]))
    found = check_batch(bad, Schema(target="label", columns=cols), CHECKS)
    assert [a.check for a in found] == ["out_of_range"]


def beyond(train: pl.DataFrame, other: pl.DataFrame, margin: float) -> dict[str, int]:
    """By hand: the rows of `other` outside each column's training range widened by `margin` of
    its span (whole numbers for whole-number columns; never below 0 for a non-negative one)."""
    counts = {}
    for name in train.columns:
        low, high = train[name].min(), train[name].max()
        pad = (high - low) * margin
        low, high = low - pad, high + pad
        if (train[name] % 1 == 0).all():
            low, high = np.floor(low), np.ceil(high)
        if train[name].min() >= 0:
            low = max(low, 0.0)
        outside = int(((other[name] < low) | (other[name] > high)).sum())
        if outside:
            counts[name] = outside
    return counts


@pytest.mark.parametrize("loader", [load_breast_cancer, load_diabetes])
def test_the_margin_decides_which_rows_of_other_real_data_are_out_of_range(loader: Any) -> None:
    frame = pl.from_pandas(loader(as_frame=True).frame)
    order = np.random.default_rng(0).permutation(frame.height)
    train, other = frame[order[: frame.height // 2]], frame[order[frame.height // 2:]]

    def flagged(margin: float) -> dict[str, int]:
        schema = infer(train, "target", margin=margin)
        assert check_batch(train, schema, CHECKS) == []  # the training rows always fit
        found = check_batch(other, schema, CHECKS)
        assert {a.check for a in found} <= {"out_of_range"}, found
        return {a.column: int(a.observed.split(" rows")[0]) for a in found if a.column is not None}

    tight, loose = flagged(0.0), flagged(0.1)

    assert tight == beyond(train, other, 0.0) and loose == beyond(train, other, 0.1)
    assert tight and set(loose) < set(tight)  # the margin lets some columns' new rows in
    assert all(loose[name] <= tight[name] for name in loose)
    assert flagged(5.0) == {}


# --- the file -------------------------------------------------------------------------------

TRICKY = ["yes", "No", "null", "~", "1", "1.0", "", "  padded ", "a: b", "#hash", "x # y", "'single'",
          '"double"', "é ü 中文 😀", "line\nbreak", "tab\there", "\x85next line", "<<", "- dash",
          "2024-01-01", ".inf", "0x1F", "on", "a" * 120 + " " + "b" * 20]


def test_the_file_reads_back_equal_with_the_same_digest(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = messy().with_columns(
        pl.Series("tricky", rng.choice(TRICKY, 300)),
        pl.Series("1", rng.normal(size=300) * 1e-7),  # a column named like a number, tiny floats
        pl.Series("true", rng.normal(size=300) * 1e60),  # named like a boolean, huge floats
        pl.Series("a: b #c", rng.integers(-(2**40), 2**40, 300)),
    )
    schema = infer(frame, id_columns=["cust_id"])
    assert schema.columns["tricky"].categories == sorted(TRICKY)

    path = write(tmp_path, schema)
    loaded = load_schema(path)

    assert loaded == schema
    assert loaded.digest() == schema.digest()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# looml data schema, inferred on ") and "from data snapshot 0123456789ab." in text
    # Unset keys are left out of the file, not written as null.
    assert "null\n" not in text.replace("- 'null'\n", "") and "cust_id:\n    type: numeric" in text
    assert "été" in text or "\\xE9" in text


def test_the_digest_ignores_comments_and_layout_but_not_content(tmp_path: Path) -> None:
    schema = infer(messy())
    path = write(tmp_path, schema)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["columns"]["age"]["min"] = 10  # an int where the file had 10.0
    path.write_text("# my notes\n" + yaml.safe_dump(raw, sort_keys=True, indent=4), encoding="utf-8")

    assert load_schema(path).digest() == schema.digest()

    raw["columns"]["age"]["min"] = 0
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert load_schema(path).digest() != schema.digest()


def churn(rows: int = 200, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"tenure": rng.integers(0, 72, rows), "plan": rng.choice(["basic", "pro"], rows),
                         "charges": rng.gamma(2.0, 30.0, rows), "label": rng.choice(["no", "yes"], rows)})


def edit(path: Path, column: str, **changes: Any) -> Schema:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            del raw["columns"][column][key]
        else:
            raw["columns"][column][key] = value
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_schema(path)


def test_editing_the_file_changes_the_checks(tmp_path: Path) -> None:
    path = write(tmp_path, infer(churn()))
    first = pl.int_range(pl.len()) < 3
    batch = churn(100, seed=1).with_columns(
        pl.when(first).then(pl.lit("team")).otherwise(pl.col("plan")).alias("plan"),
        pl.when(first).then(None).otherwise(pl.col("charges")).alias("charges"),
        pl.when(first).then(-9).otherwise(pl.col("tenure")).alias("tenure"),
    ).drop("label")
    found = check_batch(batch, load_schema(path), CHECKS, scoring=True)
    assert [(a.check, a.column) for a in found] == [
        ("out_of_range", "tenure"), ("new_category", "plan"), ("unexpected_nulls", "charges")]

    edit(path, "plan", categories=None)
    edit(path, "charges", nullable=True)
    assert load_schema(path).columns["tenure"].min == 0  # never negative: the margin stops at zero
    relaxed = edit(path, "tenure", min=-10)
    assert check_batch(batch, relaxed, CHECKS, scoring=True) == []

    pinned = edit(path, "tenure", min=0)
    assert [a.observed for a in check_batch(batch, pinned, CHECKS, scoring=True)] == [
        f"3 rows (3.0%) outside the range, from -9 to {batch['tenure'].max()}"]

    optional = edit(path, "plan", required=False)
    assert [a.check for a in check_batch(batch.drop("plan"), optional, CHECKS, scoring=True)] == [
        "out_of_range"]
    required = edit(path, "plan", required=True)
    assert [a.check for a in check_batch(batch.drop("plan"), required, CHECKS, scoring=True)] == [
        "missing_column", "out_of_range"]


# --- errors in the file ---------------------------------------------------------------------

GOOD = """\
version: 1
target: label
columns:
  age:
    type: numeric
    nullable: false
    min: 0.0
  label:
    type: categorical
    role: target
    categories: ['no', 'yes']
"""


def load_text(tmp_path: Path, text: str) -> Schema:
    path = tmp_path / "looml.schema.yaml"
    path.write_text(text, encoding="utf-8")
    return load_schema(path)


def test_a_hand_written_file_fills_in_the_defaults(tmp_path: Path) -> None:
    schema = load_text(tmp_path, GOOD)

    assert schema.columns["age"] == ColumnSchema(type="numeric", nullable=False, min=0.0)
    assert schema.columns["label"].required is True and schema.columns["label"].nullable is True


def test_a_misspelt_key_names_the_line_and_the_likely_key(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"looml.schema.yaml: columns.age.nulable \(line 6\): unknown key\n"
                                        r"    fix: did you mean 'nullable'\?"):
        load_text(tmp_path, GOOD.replace("nullable: false", "nulable: true"))


def test_a_misspelt_top_level_key_is_matched_against_the_top_level_keys(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_text(tmp_path, GOOD.replace("columns:", "colums:"))

    text = exc.value.render()
    assert "looml.schema.yaml: colums (line 3): unknown key" in text
    assert "fix: did you mean 'columns'?" in text
    assert "looml.schema.yaml: columns: required key is missing" in text


def test_wrong_types_name_the_line_and_what_was_expected(tmp_path: Path) -> None:
    text = (GOOD.replace("nullable: false", "nullable: maybe").replace("type: numeric", "type: numerc")
            .replace("min: 0.0", "min: zero"))
    with pytest.raises(DataError) as exc:
        load_text(tmp_path, text)

    assert len(exc.value.problems) == 3
    rendered = exc.value.render()
    assert ("looml.schema.yaml: columns.age.type (line 5): expected one of numeric, categorical, text, "
            "datetime, boolean, other (got 'numerc')\n    fix: did you mean 'numeric'?") in rendered
    assert "columns.age.nullable (line 6): Input should be a valid boolean" in rendered
    assert "columns.age.min (line 7): Input should be a valid number" in rendered
    with pytest.raises(DataError, match=r"columns.label.role \(line 10\): expected one of feature, target, "
                                        r"id, ignored \(got 'targte'\)\n    fix: did you mean 'target'\?"):
        load_text(tmp_path, GOOD.replace("role: target", "role: targte"))


def test_inconsistent_keys_are_reported_together(tmp_path: Path) -> None:
    text = GOOD.replace("target: label", "target: lable").replace("min: 0.0", "min: 5\n    max: 1")
    with pytest.raises(DataError) as exc:
        load_text(tmp_path, text)

    rendered = exc.value.render()
    assert len(exc.value.problems) == 2
    assert ("looml.schema.yaml: target (line 2): the target is not one of the columns (got 'lable')\n"
            "    fix: did you mean 'label'?") in rendered
    assert ("looml.schema.yaml: columns.age.min (line 7): min is above max (1) (got 5.0)\n"
            "    fix: swap them, or remove one") in rendered


def test_a_column_listed_twice_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"looml.schema.yaml: columns.age \(line 8\): duplicate key "
                                        r"\(first on line 4\)"):
        load_text(tmp_path, GOOD.replace("  label:", "  age:\n    type: numeric\n  label:"))


@pytest.mark.parametrize(("text", "match"), [
    ("version: 1\ntarget: [label\n", r"looml.schema.yaml \(line 3\): malformed YAML"),
    ("", r"looml.schema.yaml: expected a mapping with version:, target: and columns:"),
    ("- a\n- b\n", r"expected a mapping with version:, target: and columns: \(got 'list'\)"),
    (GOOD.replace("version: 1", "version: 2"), r"looml.schema.yaml: version \(line 1\): Input should be 1"),
])
def test_unreadable_files(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        load_text(tmp_path, text)


def test_a_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "looml.schema.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")

    with pytest.raises(DataError, match=r"looml.schema.yaml: cannot read the schema file: .*\n"
                                        r"    fix: save it as UTF-8 text, or delete it to infer it again"):
        load_schema(path)


def test_datetime_and_boolean_columns_round_trip_and_check(tmp_path: Path) -> None:
    start = dt.datetime(2024, 1, 1)
    frame = pl.DataFrame({"day": pl.date_range(start, start + dt.timedelta(days=99), eager=True),
                          "flag": [i % 3 == 0 for i in range(100)], "label": ["a", "b"] * 50})
    schema = load_schema(write(tmp_path, infer(frame)))

    later = frame.with_columns(pl.col("day") + dt.timedelta(days=400))
    assert check_batch(later, schema, CHECKS) == []
    assert schema.columns["day"].type == "datetime" and schema.columns["flag"].categories == ["false", "true"]
