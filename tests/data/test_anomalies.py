"""Anomalies: each check fires exactly when it should, with its severity, threshold and message."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine, make_classification

from looml.data.anomalies import Anomaly, _univariate_power, check_batch, check_dataset, check_skew
from looml.data.profile import profile
from looml.data.schema import Schema, infer_schema
from looml.data.validate import ValidationReport, validate
from looml.spec import CheckSpec, DataSpec, PreprocessingSpec, SplitSpec, ValidationSpec

CHECKS = ValidationSpec()


def checks(**settings: Any) -> ValidationSpec:
    return ValidationSpec.model_validate(settings)


def churn(rows: int = 400, seed: int = 0) -> pl.DataFrame:
    """Whole-number tenure 0..71, three plans, charges 20..120 with 10 % gaps, dates, a yes/no label."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    plan = rng.choice(["basic", "pro", "team"], rows)
    score = -0.04 * tenure + (plan == "basic") + rng.normal(size=rows)
    charges = np.where(rng.random(rows) < 0.1, np.nan, rng.uniform(20.0, 120.0, rows).round(2))
    start = dt.datetime(2024, 1, 1)
    return pl.DataFrame({
        "tenure": tenure, "plan": plan, "charges": pl.Series(charges).fill_nan(None),
        "signup": [start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 365, rows)],
        "label": np.where(score > -0.5, "yes", "no"),
    })


def report_of(frame: pl.DataFrame, target: str = "label", **data: Any) -> ValidationReport:
    return validate(profile(frame, target=target, seed=0), DataSpec(source="d.csv", target=target, **data),
                    SplitSpec(), PreprocessingSpec())


def schema_of(frame: pl.DataFrame, target: str = "label") -> Schema:
    return infer_schema(frame, profile(frame, target=target, seed=0), report_of(frame, target), [], 0.1)


@pytest.fixture(scope="module")
def schema() -> Schema:
    return schema_of(churn())


def rows_where(n: int) -> pl.Expr:
    return pl.int_range(pl.len()) < n


def set_first(frame: pl.DataFrame, n: int, **values: Any) -> pl.DataFrame:
    return frame.with_columns(pl.when(rows_where(n)).then(pl.lit(v)).otherwise(pl.col(c)).alias(c)
                              for c, v in values.items())


def rendered(found: list[Anomaly]) -> list[str]:
    return [a.to_problem().render() for a in found]


# --- against the schema ---------------------------------------------------------------------

def test_a_fresh_batch_of_the_same_data_has_no_anomaly(schema: Schema) -> None:
    # tenure is never negative: the margin widens the top only (0 .. 72 -> 0 .. 79)
    assert schema.columns["tenure"].min == 0 and schema.columns["tenure"].max == 79
    assert check_batch(churn(300, seed=1), schema, CHECKS) == []
    assert check_batch(churn(300, seed=2).drop("label"), schema, CHECKS, scoring=True) == []
    assert check_batch(churn(0), schema, CHECKS) == []


def test_the_corrupted_batch_gives_every_anomaly_at_once_and_nothing_else(schema: Schema) -> None:
    batch = set_first(churn(200, seed=3), 4, plan="platinum", tenure=-500).rename({"charges": "charge"})
    batch = batch.with_columns(pl.when(pl.int_range(pl.len()) >= 197).then(None).otherwise(pl.col("label"))
                               .alias("label"))

    found = check_batch(batch, schema, CHECKS)

    assert [(a.check, a.column, a.severity) for a in found] == [
        ("missing_column", "charges", "error"), ("extra_column", "charge", "warning"),
        ("out_of_range", "tenure", "error"), ("new_category", "plan", "error"),
        ("unexpected_nulls", "label", "error")]
    assert rendered(found) == [
        "column 'charges': missing_column: the column is absent (expected a numeric column (feature))\n"
        "    fix: did you mean 'charge'? If the column was renamed, rename it back or update the schema file",
        "column 'charge': extra_column: a column the schema does not list (expected only the schema's 5 "
        "columns)\n    fix: add it to the schema file if it belongs in the data, or drop it upstream",
        f"column 'tenure': out_of_range: 4 rows (2.0%) outside the range, from -500 to "
        f"{batch['tenure'].max()} (expected values from 0 to 79)\n    fix: fix the values upstream, or "
        "widen `min:` / `max:` in the schema file",
        "column 'plan': new_category: 4 rows (2.0%) with values not in the schema: 'platinum' (expected one "
        "of 'basic', 'pro', 'team')\n    fix: add the values to `categories:` in the schema file if they are "
        "valid, or remove `categories:` to accept any value",
        "column 'label': unexpected_nulls: 3 missing values (1.5% of rows) (expected no missing values)\n"
        "    fix: fill the gaps upstream, or set `nullable: true` for it in the schema file",
    ]


def test_a_missing_column_without_a_likely_new_name(schema: Schema) -> None:
    found = check_batch(churn(50, seed=1).drop("plan").rename({"tenure": "months"}), schema, CHECKS)

    assert rendered(found)[:2] == [
        "column 'tenure': missing_column: the column is absent (expected a numeric column (feature))\n"
        "    fix: restore the column, or set `required: false` for it in the schema file",
        "column 'plan': missing_column: the column is absent (expected a categorical column (feature))\n"
        "    fix: restore the column, or set `required: false` for it in the schema file"]


def test_the_target_may_be_absent_or_empty_only_when_scoring(schema: Schema) -> None:
    batch = churn(50, seed=1)

    assert check_batch(batch.drop("label"), schema, CHECKS, scoring=True) == []
    assert [a.check for a in check_batch(batch.drop("label"), schema, CHECKS)] == ["missing_column"]
    empty = batch.with_columns(label=pl.lit(None, dtype=pl.String))
    assert check_batch(empty, schema, CHECKS, scoring=True) == []
    assert [a.check for a in check_batch(empty, schema, CHECKS)] == ["unexpected_nulls"]


def test_a_type_change_shows_the_offending_values(schema: Schema) -> None:
    batch = churn(50, seed=1)
    placeholders = pl.Series(["n/a", "?", "n/a", " 12 ", *map(str, batch["tenure"].to_list()[4:])])
    batch = batch.with_columns(
        placeholders.alias("tenure"),
        pl.col("signup").dt.strftime("%Y-%m-%d %H:%M:%S"),
        pl.col("plan").cast(pl.Categorical),  # categories compare as text: no anomaly
    )
    batch = set_first(batch, 1, signup="yesterday")

    found = check_batch(batch, schema, CHECKS)

    assert rendered(found) == [
        "column 'tenure': type_change: String with values such as 'n/a', '?' (expected numeric)\n"
        "    fix: clean the column so it holds numeric values, or change its `type:` in the schema file",
        "column 'signup': type_change: String with values such as 'yesterday' (expected datetime)\n"
        "    fix: clean the column so it holds datetime values, or change its `type:` in the schema file"]


def test_a_column_with_no_values_is_not_a_type_change(schema: Schema) -> None:
    batch = churn(120, seed=1).with_columns(tenure=pl.lit(None, dtype=pl.String),
                                           charges=pl.lit(None, dtype=pl.Null))

    found = check_batch(batch, schema, CHECKS)

    assert [(a.check, a.column, a.observed) for a in found] == [
        ("unexpected_nulls", "tenure", "120 missing values (100.0% of rows)"),
        ("missing_rate", "charges", "100.0% of rows missing")]


@pytest.mark.parametrize(("bad_rows", "threshold", "fires"), [
    (1, 0.0, True), (2, 0.02, False), (3, 0.02, True), (0, 0.0, False)])
def test_thresholds_are_shares_of_the_batch_rows(schema: Schema, bad_rows: int, threshold: float,
                                                 fires: bool) -> None:
    batch = churn(100, seed=1)
    bad = set_first(batch, bad_rows, plan="gold", tenure=1000)
    gaps = batch.with_columns(pl.when(rows_where(bad_rows)).then(None).otherwise(pl.col("tenure"))
                              .alias("tenure"))
    at = {"severity": "error", "threshold": threshold}
    settings = checks(new_category=at, out_of_range=at, unexpected_nulls=at)

    assert [a.check for a in check_batch(bad, schema, settings)] == (
        ["out_of_range", "new_category"] if fires else [])
    assert [a.check for a in check_batch(gaps, schema, settings)] == (["unexpected_nulls"] if fires else [])


def test_severity_warning_downgrades_and_off_silences(schema: Schema) -> None:
    batch = set_first(churn(100, seed=1), 2, plan="gold", tenure=1000).rename({"charges": "charge"})

    warned = check_batch(batch, schema, checks(new_category="warning", missing_column="warning",
                                               out_of_range={"severity": "warning"}))
    silenced = check_batch(batch, schema, checks(new_category="off", missing_column="off", out_of_range="off",
                                                 extra_column="off"))

    assert {a.severity for a in warned} == {"warning"} and len(warned) == 4
    assert silenced == []
    # The shorthand keeps the check's own threshold.
    assert checks(new_category="warning").new_category == CheckSpec(severity="warning", threshold=0.0)
    assert checks(missing_rate="error").missing_rate == CheckSpec(severity="error", threshold=0.1)


def test_range_bounds_are_inclusive_and_nan_is_not_out_of_range(schema: Schema) -> None:
    batch = churn(100, seed=1).with_columns(pl.col("tenure").cast(pl.Float64))
    edges = set_first(batch, 2, tenure=79.0)
    edges = edges.with_columns(pl.when(pl.int_range(pl.len()) == 99).then(0.0).otherwise(pl.col("tenure"))
                               .alias("tenure"))
    nan = set_first(batch, 2, tenure=float("nan"))
    above = set_first(batch, 1, tenure=79.5)

    assert check_batch(edges, schema, CHECKS) == []
    assert check_batch(nan, schema, CHECKS) == []
    assert [a.observed for a in check_batch(above, schema, CHECKS)] == [
        f"1 rows (1.0%) outside the range, from {batch['tenure'].min():g} to 79.5"]


def test_an_open_bound_checks_one_side_only(schema: Schema) -> None:
    tenure = schema.columns["tenure"].model_copy(update={"max": None})
    open_top = schema.model_copy(update={"columns": {**schema.columns, "tenure": tenure}})
    batch = set_first(churn(100, seed=1), 1, tenure=10**7)

    assert check_batch(batch, open_top, CHECKS) == []
    found = check_batch(set_first(batch, 1, tenure=-9), open_top, CHECKS)
    assert [a.expected for a in found] == ["values from 0 to inf"]


def test_missing_rate_rises_above_the_reference_by_the_threshold(schema: Schema) -> None:
    reference = schema.columns["charges"].missing_rate
    assert 0.05 < reference < 0.15
    batch = churn(1000, seed=1).with_columns(pl.col("charges").fill_null(50.0))

    def with_gaps(share: float) -> pl.DataFrame:
        return batch.with_columns(pl.when(rows_where(round(share * 1000))).then(None)
                                  .otherwise(pl.col("charges")).alias("charges"))

    assert check_batch(with_gaps(reference + 0.09), schema, CHECKS) == []
    found = check_batch(with_gaps(reference + 0.11), schema, CHECKS)
    assert [(a.check, a.severity) for a in found] == [("missing_rate", "warning")]
    assert found[0].expected == f"about {reference:.1%} as in the reference data (threshold +10%)"
    relaxed = checks(missing_rate={"severity": "warning", "threshold": 0.2})
    assert check_batch(with_gaps(reference + 0.11), schema, relaxed) == []
    assert rendered(check_batch(with_gaps(0.5), schema, CHECKS)) == [
        f"column 'charges': missing_rate: 50.0% of rows missing (expected about {reference:.1%} as in the "
        "reference data (threshold +10%))\n    fix: check the source for a broken join or field, or raise "
        "`missing_rate:` for it in the schema file"]


def test_new_categories_are_listed_sorted_and_capped(schema: Schema) -> None:
    batch = churn(100, seed=1).with_columns(
        pl.when(rows_where(8)).then(pl.format("new{}", pl.int_range(pl.len()))).otherwise(pl.col("plan"))
        .alias("plan"))

    found = check_batch(batch, schema, CHECKS)

    assert [a.observed for a in found] == [
        "8 rows (8.0%) with values not in the schema: 'new0', 'new1', 'new2', 'new3', 'new4' and 3 more"]


def test_boolean_and_datetime_columns() -> None:
    rng = np.random.default_rng(4)
    start = dt.date(2023, 1, 1)
    frame = pl.DataFrame({"flag": rng.random(200) < 0.3, "day": [start + dt.timedelta(days=int(d))
                                                                 for d in rng.integers(0, 365, 200)],
                          "label": rng.choice(["a", "b"], 200)})
    schema = schema_of(frame)
    later = frame.with_columns(pl.col("day") + dt.timedelta(days=3000))

    assert check_batch(later, schema, CHECKS) == []
    texts = frame.with_columns(pl.col("flag").cast(pl.String).replace({"true": "yes"}))
    assert [a.observed for a in check_batch(texts, schema, CHECKS)] == ["String with values such as 'yes'"]


def test_anomalies_survive_a_json_round_trip(schema: Schema) -> None:
    found = check_batch(set_first(churn(50, seed=1), 1, plan="gold"), schema, CHECKS)

    assert [Anomaly.from_dict(a.to_dict()) for a in found] == found
    assert found[0].render() == ("column 'plan': new_category: 1 rows (2.0%) with values not in the schema: "
                                 "'gold' (expected one of 'basic', 'pro', 'team')")


# --- on the training data -------------------------------------------------------------------

def test_duplicates_are_counted_exactly_and_fire_above_the_threshold() -> None:
    base = churn(100, seed=5).unique(maintain_order=True).head(95)

    def with_copies(n: int) -> pl.DataFrame:
        return pl.concat([base, base.head(n)])

    report = report_of(with_copies(5))
    assert check_dataset(with_copies(5), report, CHECKS) == []  # 5 of 100: not above 5 %
    found = check_dataset(with_copies(6), report, CHECKS)
    assert rendered(found) == [
        "data: duplicate_rows: 6 rows (5.9%) repeat an earlier row (expected at most 5%)\n"
        "    fix: remove duplicates upstream; repeated rows can land in both the training and the "
        "holdout split and flatter the scores"]
    relaxed = checks(duplicate_rows={"severity": "warning", "threshold": 0.06})
    assert check_dataset(with_copies(6), report, relaxed) == []
    assert check_dataset(with_copies(6), report, checks(duplicate_rows="off")) == []


def test_constant_and_id_like_columns_are_errors_only_when_configured() -> None:
    frame = churn(100, seed=5).with_columns(const=pl.lit("x"), gone=pl.lit(None, dtype=pl.Float64),
                                            ref=pl.format("r{}", pl.int_range(pl.len())))
    report = report_of(frame)
    assert set(report.dropped) == {"const", "gone", "ref"}

    assert check_dataset(frame, report, CHECKS) == []
    found = check_dataset(frame, report, checks(constant_column="error", id_like="error"))
    assert rendered(found) == [
        "column 'const': constant_column: constant (only 'x') (expected varying values)\n"
        "    fix: drop the column upstream, or set validation.constant_column: warning",
        "column 'gone': constant_column: all values are missing (expected varying values)\n"
        "    fix: drop the column upstream, or set validation.constant_column: warning",
        "column 'ref': id_like: id-like (100 distinct values in 100 rows) (expected a feature, not a row "
        "identifier)\n    fix: list it in data.id_columns, or set validation.id_like: warning"]


def test_class_imbalance_fires_below_the_threshold() -> None:
    rng = np.random.default_rng(6)
    labels = np.array(["common"] * 985 + ["rare"] * 15)
    frame = pl.DataFrame({"x": rng.normal(size=1000), "label": labels})
    report = report_of(frame)

    found = check_dataset(frame, report, CHECKS)

    assert rendered(found) == [
        "column 'label': class_imbalance: the rarest class 'rare' is 1.50% of rows (15 rows) (expected at "
        "least 2% per class)\n    fix: collect more rows of the rare class, merge rare classes, or rank "
        "models by a metric that weighs classes (roc_auc, f1)"]
    at_share = checks(class_imbalance={"severity": "error", "threshold": 0.015})
    above_share = checks(class_imbalance={"severity": "error", "threshold": 0.0151})
    assert check_dataset(frame, report, at_share) == []
    five_percent = checks(class_imbalance={"severity": "warning", "threshold": 0.05})
    assert [a.expected for a in check_dataset(frame, report, five_percent)] == ["at least 5% per class"]
    assert [a.expected for a in check_dataset(frame, report, checks(
        class_imbalance={"severity": "warning", "threshold": 0.0155}))] == ["at least 1.55% per class"]
    assert [a.severity for a in check_dataset(frame, report, above_share)] == ["error"]


# --- target leakage -------------------------------------------------------------------------

def leaky_classification(rows: int = 1000, seed: int = 7, positive: float = 0.07) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    yes = rng.random(rows) < positive
    label = np.where(yes, "yes", "no")
    flipped = label.copy()
    flipped[0] = "no" if flipped[0] == "yes" else "yes"
    return pl.DataFrame({
        "honest": np.where(yes, 1.0, 0.0) + rng.normal(size=rows),
        "copy": label,  # the target under another name
        "code": yes.astype(int),  # the target as 0/1
        "near_copy": flipped,  # one row of 1000 differs
        "refund": np.where(yes, rng.gamma(2.0, 10.0, rows), 0.0),  # only known after the outcome
        "closed_on": pl.Series(np.where(yes, rng.integers(0, 10**6, rows), -1)).cast(pl.Datetime("ms"))
        .replace(dt.datetime(1969, 12, 31, 23, 59, 59, 999000), None),  # a date only when positive
        "label": label,
    })


def test_a_copy_of_a_classification_target_is_an_error() -> None:
    frame = leaky_classification()
    report = report_of(frame)

    found = check_dataset(frame, report, CHECKS)

    assert [(a.check, a.column) for a in found] == [
        ("target_leakage", c) for c in ("copy", "code", "near_copy", "refund", "closed_on")]
    assert rendered(found)[0] == (
        "column 'copy': target_leakage: this column alone predicts 'label' with a score of 1.000 (expected "
        "below 0.98)\n    fix: if it is only known after the outcome, add it to data.drop_columns; if it is "
        "a legitimate predictor, set validation.target_leakage: warning")
    assert {a.severity for a in check_dataset(frame, report, checks(target_leakage="warning"))} == {"warning"}
    assert check_dataset(frame, report, checks(target_leakage="off")) == []


def test_a_copy_of_a_regression_target_is_an_error() -> None:
    rng = np.random.default_rng(8)
    y = rng.lognormal(size=800)  # skewed: variance-based scores miss copies of such targets
    x = rng.normal(size=800)
    frame = pl.DataFrame({
        "honest": np.log(y) + rng.normal(size=800), "copy": y, "scaled": 2.5 * y - 3,
        "near_copy": np.log(y) + rng.normal(scale=0.02, size=800), "squared": (np.log(y) - 0.3) ** 2,
        "cents": pl.Series(np.round(y * 100)).cast(pl.Int64), "noise": x, "target": y,
    })
    report = report_of(frame, "target")
    assert report.task == "regression"

    found = check_dataset(frame, report, CHECKS)

    assert [a.column for a in found] == ["copy", "scaled", "near_copy", "cents"]
    scores = _univariate_power(frame, report, seed=0)
    # A two-valued inverse (log y = 0.3 ± sqrt) is not a function of the feature: not flagged.
    assert scores["squared"] < 0.5 and scores["noise"] < 0.1 and 0.3 < scores["honest"] < 0.9


@pytest.mark.parametrize(("frame", "highest"), [
    (pl.from_pandas(load_breast_cancer(as_frame=True).frame), 0.8),
    (pl.from_pandas(load_iris(as_frame=True).frame), 0.9),
    (pl.from_pandas(load_wine(as_frame=True).frame), 0.7),
    (pl.from_pandas(load_diabetes(as_frame=True).frame), 0.4),
    # f1 alone has a ROC AUC of 0.992 here (98.7 % accuracy at its median): strong, but not a copy.
    (pl.DataFrame(np.column_stack(make_classification(n_samples=2000, n_features=10, random_state=0)),
                  schema=[*(f"f{i}" for i in range(10)), "target"])
     .with_columns(pl.col("target").cast(pl.Int64)), 0.97),
], ids=["breast_cancer", "iris", "wine", "diabetes", "make_classification"])
def test_no_feature_of_real_data_is_flagged(frame: pl.DataFrame, highest: float) -> None:
    report = report_of(frame, "target")

    scores = _univariate_power(frame, report, seed=0)

    assert len(scores) == len(report.features)
    assert max(scores.values()) < highest, sorted(scores.items(), key=lambda kv: -kv[1])[:3]
    assert check_dataset(frame, report, CHECKS) == []


def test_tiny_tables_never_flag_leakage_by_chance() -> None:
    worst = 0.0
    for seed in range(150):
        rng = np.random.default_rng(seed)
        frame = pl.DataFrame({"a": rng.normal(size=50), "b": rng.integers(0, 3, 50),
                              "c": rng.choice(["x", "y"], 50), "d": rng.random(50) < 0.1,
                              "label": rng.choice(["p", "q"], 50, p=[0.85, 0.15]),
                              "amount": rng.normal(size=50)})
        for target in ("label", "amount"):
            features = {"a": "numeric", "b": "numeric", "c": "categorical", "d": "categorical"}
            report = ValidationReport(task="classification" if target == "label" else "regression",
                                      task_reason="", target=target, features=features, dropped={})
            worst = max(worst, *_univariate_power(frame, report, seed).values(), 0.0)
    assert worst < 0.8


def test_leakage_needs_enough_rows_of_the_rarer_class() -> None:
    frame = leaky_classification(rows=40, positive=0.1)
    report = ValidationReport(task="classification", task_reason="", target="label",
                              features={"copy": "categorical"}, dropped={})

    assert _univariate_power(frame, report, seed=0) == {}  # 4 rare rows: a perfect order can be luck
    bigger = leaky_classification(rows=200, positive=0.3).rename({"label": "count"})
    report = replace(report, target="count")  # a target named like value_counts' column
    assert _univariate_power(bigger, report, seed=0) == {"copy": 1.0}


def test_leakage_ignores_row_order_for_tied_values() -> None:
    # Sorted by the target, a feature with ties would look predictive if ties kept the file order.
    rng = np.random.default_rng(9)
    frame = pl.DataFrame({"few": rng.integers(0, 3, 2000), "label": rng.choice(["a", "b"], 2000)})
    frame = frame.sort("label")
    report = report_of(frame)

    assert _univariate_power(frame, report, seed=0)["few"] < 0.05


def test_leakage_scores_columns_without_values_or_with_distinct_values_as_zero() -> None:
    rng = np.random.default_rng(10)
    frame = pl.DataFrame({"none": pl.Series([None] * 500, dtype=pl.Float64),
                          "blank": pl.Series([None] * 500, dtype=pl.String),
                          "ref": [f"r{i}" for i in rng.permutation(500)],
                          "label": rng.choice(["a", "b"], 500)})
    report = ValidationReport(task="classification", task_reason="", target="label", dropped={},
                              features={"none": "numeric", "blank": "categorical", "ref": "categorical"})

    scores = _univariate_power(frame, report, seed=0)

    assert scores["none"] == scores["blank"] == 0.0 and scores["ref"] < 0.2


# --- train versus test skew -----------------------------------------------------------------

FEATURES = {"x": "numeric", "n": "numeric", "city": "categorical", "ref": "categorical", "at": "datetime",
            "gone": "numeric", "gappy": "numeric"}


def sample(rows: int, seed: int, shift: float = 0.0, city: tuple[float, float, float] = (0.5, 0.3, 0.2),
           late: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({
        "x": rng.normal(size=rows) + shift,
        "n": rng.integers(0, 4, rows),
        "city": rng.choice(["oslo", "rome", "lima"], rows, p=city),
        "ref": [f"r{v}" for v in rng.integers(0, 10**9, rows)],  # mostly distinct: not a shift
        "at": pl.Series(rng.integers(0, 10**9, rows) + late).cast(pl.Datetime("ms")),
        "gone": pl.Series([None] * rows, dtype=pl.Float64),
        "gappy": pl.Series(np.where(rng.random(rows) < 0.3, np.nan, rng.normal(size=rows))).fill_nan(None),
    })


SKEW = CheckSpec(severity="warning", threshold=0.1)


@pytest.mark.parametrize(("train_rows", "test_rows"), [(1000, 1000), (800, 200), (4000, 1000)])
def test_two_samples_of_one_distribution_have_no_skew(train_rows: int, test_rows: int) -> None:
    for seed in range(20):
        assert check_skew(sample(train_rows, seed), sample(test_rows, seed + 100), FEATURES, SKEW) == []


def test_shifted_features_are_found() -> None:
    train = sample(1000, 0)
    test = sample(1000, 1, shift=0.4, city=(0.3, 0.3, 0.4), late=10**9)

    found = check_skew(train, test, FEATURES, SKEW)

    assert [a.column for a in found] == ["x", "city", "at"]
    assert found[0].to_problem().render().startswith(
        "column 'x': train_test_skew: population stability index 0.")
    assert found[0].expected == "at most 0.1" and found[0].severity == "warning"
    assert check_skew(train, test, FEATURES, CheckSpec(severity="off", threshold=0.1)) == []
    assert check_skew(train.head(150), test, FEATURES, SKEW) == []  # too few rows to tell


def test_free_text_is_compared_by_its_length() -> None:
    rng = np.random.default_rng(4)

    def notes(rows: int, words: tuple[int, int]) -> pl.DataFrame:
        return pl.DataFrame({"notes": [" ".join(["bird"] * int(k)) + f" strike {i}"
                                       for i, k in enumerate(rng.integers(*words, rows))]})

    same = check_skew(notes(800, (1, 30)), notes(400, (1, 30)), {"notes": "text"}, SKEW)
    longer = check_skew(notes(800, (1, 30)), notes(400, (20, 60)), {"notes": "text"}, SKEW)

    assert same == []
    assert [a.column for a in longer] == ["notes"]


def test_a_missing_rate_needs_a_hundred_rows(schema: Schema) -> None:
    one_row = churn(1000, seed=1).head(1).with_columns(pl.lit(None, dtype=pl.Float64).alias("charges"))

    assert [a.check for a in check_batch(one_row, schema, CHECKS)] == []
