"""Column kinds (free text vs ids) and the spec's feature options checked against the data, all at once:
in `looml.data.validate` (column names, kinds, the task and the target) and in the spec (syntax)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from looml.data.profile import profile
from looml.data.validate import ValidationReport, validate
from looml.errors import DataError, SpecError
from looml.spec import DataSpec, FeaturesSpec, PreprocessingSpec, SplitSpec, load_spec

WORDS = ["the", "parcel", "arrived", "late", "and", "damaged", "great", "service", "refund", "please",
         "slow", "support", "box", "was", "open"]


def table(rows: int = 120, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({
        "weight": rng.normal(70, 10, rows), "height": rng.normal(170, 10, rows),
        "city": rng.choice(["paris", "lyon", "nice"], rows).tolist(),
        "review": [" ".join(rng.choice(WORDS, 8)) for _ in range(rows)],
        "order_uuid": [str(uuid.UUID(int=int(rng.integers(0, 2**62)))) for _ in range(rows)],
        "code": [f"SKU-{i:06d}" for i in rng.permutation(rows)],
        "amount": rng.lognormal(3, 1, rows) - 5.0,
        "label": rng.choice(["yes", "no"], rows).tolist(),
    })


def check(frame: pl.DataFrame, target: str = "label", preprocessing: dict[str, Any] | None = None,
          features: dict[str, Any] | None = None) -> ValidationReport:
    return validate(profile(frame), DataSpec(source="d.csv", target=target), SplitSpec(),
                    PreprocessingSpec.model_validate(preprocessing or {}),
                    FeaturesSpec.model_validate(features or {}))


def test_free_text_is_a_text_feature_and_ids_stay_dropped() -> None:
    report = check(table())
    assert report.features == {"weight": "numeric", "height": "numeric", "city": "categorical",
                               "review": "text", "amount": "numeric"}
    assert report.dropped["order_uuid"].startswith("id-like") and report.dropped["code"].startswith("id-like")


def test_per_column_kinds_win_over_inference() -> None:
    report = check(table(), preprocessing={"columns": {"review": {"kind": "categorical"},
                                                       "code": {"kind": "text"},
                                                       "city": {"kind": "drop"}}})
    assert report.features["review"] == "categorical" and report.features["code"] == "text"
    assert report.dropped["city"] == "preprocessing.columns sets kind: drop"


def test_every_column_problem_at_once_with_did_you_mean() -> None:
    with pytest.raises(DataError) as exc:
        check(table(), preprocessing={"columns": {"hieght": {"scale": "robust"}, "label": {"kind": "drop"},
                                                  "city": {"impute": "knn"}}},
              features={"derived": [{"name": "bmi", "expr": "wieght / (height / 100) ** 2"},
                                    {"name": "weight", "expr": "city * 2"},
                                    {"name": "per_id", "expr": "bmi / code"},
                                    {"name": "bad", "expr": "log(bmi) +* 2"},
                                    {"name": "worse", "expr": "system(bmi)"},
                                    {"name": "self", "expr": "self + 1"}],
                        "polynomial": {"columns": ["bmi", "heigth"]},
                        "binning": {"columns": ["review"]}})
    got = {(p.loc, p.message, p.fix) for p in exc.value.problems}
    assert got == {
        ("preprocessing.columns.hieght", "no such column in the data", "did you mean 'height'?"),
        ("preprocessing.columns.label", "the target column is not a feature", "remove 'label'"),
        ("preprocessing.columns.city", "option(s) impute do not apply to 'city', a categorical column",
         "remove them, or set the column's kind"),
        ("features.derived[0].expr", "no such column in the data", "did you mean 'weight'?"),
        ("features.derived[1].name", "the data already has a column of this name",
         "give the derived column a new name"),
        ("features.derived[1].expr", "'city' is a categorical column, not numeric",
         "use numeric columns, or set its kind: numeric in preprocessing.columns"),
        ("features.derived[2].expr", "'code' is not a feature: id-like (120 distinct values in 120 rows)",
         "use a feature column"),
        ("features.derived[3].expr", "syntax error at position 11: invalid syntax",
         "check the parentheses and operators near that position"),
        ("features.derived[4].expr", "unknown function 'system' at position 1",
         "the functions are log, log1p, exp, sqrt, abs, min, max, clip, where"),
        ("features.derived[5].expr", "no such column in the data", "the columns are: weight, height, city, "
         "review, order_uuid, code, amount, label, bmi, per_id, bad, worse"),
        ("features.polynomial.columns[1]", "no such column in the data", "did you mean 'height'?"),
        ("features.binning.columns[0]", "'review' is a text column, not numeric",
         "use numeric columns, or set its kind: numeric in preprocessing.columns"),
    }


def test_row_options_must_fit_the_task_and_the_target() -> None:
    with pytest.raises(DataError, match=r"preprocessing.target_transform: a target transform applies to "
                                        r"regression only, and the task is classification"):
        check(table(), preprocessing={"target_transform": "auto"})
    with pytest.raises(DataError) as exc:
        check(table(), target="amount", preprocessing={"target_transform": "log", "imbalance": "oversample"})
    assert [(p.loc, p.message) for p in exc.value.problems] == [
        ("preprocessing.target_transform",
         f"log1p needs target values > -1; the smallest is {table()['amount'].min():g}"),
        ("preprocessing.imbalance", "class imbalance handling applies to classification only"),
    ]
    assert check(table(), target="amount", preprocessing={"target_transform": "yeo-johnson"}).task == \
        "regression"


SPEC = """\
data: {source: data.csv, target: label}
registry: {model_name: m}
preprocessing:
  columns:
    age: {kind: text, scale: robust}
features:
  pca: {components: 1.5}
"""


def test_spec_errors_come_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "looml.yaml").write_text(SPEC, encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec(tmp_path / "looml.yaml")
    got = {(p.loc, p.line, p.message) for p in exc.value.problems}
    assert got == {
        ("preprocessing.columns.age", 5, "option(s) scale do not apply to a text column"),
        ("features.pca.components", 7, "must be an integer >= 1 or a share between 0 and 1"),
    }


def test_derived_names_are_unique(tmp_path: Path) -> None:
    (tmp_path / "looml.yaml").write_text(
        "data: {source: d.csv, target: y}\nregistry: {model_name: m}\n"
        "features:\n  derived:\n    - {name: a, expr: x}\n    - {name: a, expr: y}\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"features.derived.1.name \(line 6\): a derived column of this name "
                                        r"already exists"):
        load_spec(tmp_path / "looml.yaml")


def test_every_preprocessing_and_features_key_is_documented() -> None:
    from looml.spec import (
        BinningSpec,
        CategoricalSpec,
        ColumnSpec,
        DatetimeSpec,
        NumericSpec,
        PolynomialSpec,
        SelectionSpec,
        TextSpec,
    )

    text = (Path(__file__).resolve().parents[2] / "docs" / "spec.md").read_text(encoding="utf-8")
    section = text[text.index("## `preprocessing`"):text.index("## `models`")]
    sections = {"numeric": NumericSpec, "categorical": CategoricalSpec, "text": TextSpec,
                "datetime": DatetimeSpec}
    keys = [*(f"`{k}`" for k in PreprocessingSpec.model_fields if k not in sections),
            *(f"`{prefix}.{k}`" for prefix, model in sections.items() for k in model.model_fields),
            *(f"`selection.{k}`" for k in SelectionSpec.model_fields),
            *(f"`{k}`" for k in FeaturesSpec.model_fields if k != "selection"),
            *(f"`{k}`" for k in ColumnSpec.model_fields if k == "kind"),
            *(k for model in (PolynomialSpec, BinningSpec) for k in model.model_fields)]
    assert [k for k in keys if k not in section] == []


def test_a_text_column_has_no_fixed_domain_in_the_schema() -> None:
    from looml.data.schema import infer_schema

    rng = np.random.default_rng(2)
    frame = table().with_columns(pl.Series("review", [" ".join(rng.choice(WORDS, 6)) for _ in range(30)] * 4))
    found = profile(frame)
    report = check(frame)
    assert report.features["review"] == "text" and found.column("review").n_unique == 30
    schema = infer_schema(frame, found, report, [], 0.1)
    assert schema.columns["review"].categories is None  # new reviews are not unknown categories
    assert schema.columns["city"].categories == ["lyon", "nice", "paris"]


def test_the_inferred_schema_types_free_text_as_text_not_categorical() -> None:
    from looml.data.schema import infer_schema

    frame = table()
    report = check(frame)

    schema = infer_schema(frame, profile(frame), report, [], 0.1)

    assert schema.columns["review"].type == "text" and schema.columns["review"].categories is None
    assert schema.columns["city"].type == "categorical"
