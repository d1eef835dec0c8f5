"""Anomalies: what is wrong or suspicious in a batch, each with a severity and the fix.

Three families, each a plain function:

    check_batch(frame, schema, checks)            against the schema: columns, types, domains,
                                                  ranges, nulls, missing rates (every batch)
    check_dataset(frame, report, checks)          on training data: duplicates, constant and id-like
                                                  columns, target leakage, class imbalance
    check_skew(train, test, features, check)      training rows against holdout rows

Each check's severity (error | warning | off) and threshold come from the spec's
`validation:` section. All statistics are Polars expressions over whole columns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from looml.data.schema import ColumnSchema, Schema
from looml.data.validate import ValidationReport
from looml.errors import Problem
from looml.spec import CheckSpec, ValidationSpec

__all__ = ["Anomaly", "check_batch", "check_dataset", "check_skew"]

_EXAMPLES = 5
_LEAKAGE_SAMPLE = 200_000
_ROWS_PER_BIN = 30  # a univariate score needs this many rows per bin not to be luck
_MIN_SKEW_ROWS = 200


@dataclass(frozen=True)
class Anomaly:
    """One finding: the check, its severity, the column, what was seen, what was expected, the fix."""

    check: str
    severity: str  # error | warning
    column: str | None
    observed: str
    expected: str
    fix: str

    def to_problem(self) -> Problem:
        """The finding as a `Problem`, for errors and for the CLI."""
        where = f"column {self.column!r}" if self.column is not None else "data"
        return Problem(loc=where, message=f"{self.check}: {self.observed} (expected {self.expected})",
                       fix=self.fix)

    def render(self) -> str:
        """One line, without the fix."""
        return self.to_problem().render().split("\n")[0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Anomaly:
        """Rebuild from `to_dict` output."""
        return cls(**data)


def _found(check: CheckSpec, name: str, column: str | None, observed: str, expected: str,
           fix: str) -> list[Anomaly]:
    return [] if check.severity == "off" else [Anomaly(name, check.severity, column, observed, expected, fix)]


def check_batch(frame: pl.DataFrame, schema: Schema, checks: ValidationSpec, *,
                scoring: bool = False) -> list[Anomaly]:
    """Compare a batch with the schema; every finding, in column order.

    `scoring=True` is for batches to predict on: the target may be absent.
    """
    found: list[Anomaly] = []
    present = set(frame.columns)
    for name, col in schema.columns.items():
        optional = not col.required or (scoring and col.role == "target")
        if name not in present and not optional:
            hint = _renamed_hint(name, [c for c in frame.columns if c not in schema.columns])
            found += _found(checks.missing_column, "missing_column", name, "the column is absent",
                            f"a {col.type} column ({col.role})",
                            hint or "restore the column, or set `required: false` for it in the schema file")
    for name in frame.columns:
        if name not in schema.columns:
            found += _found(checks.extra_column, "extra_column", name, "a column the schema does not list",
                            f"only the schema's {len(schema.columns)} columns",
                            "add it to the schema file if it is meant to be there (it is not used as a "
                            "feature until then)")
    rows = frame.height
    if not rows:
        return found
    typed = {n: c for n, c in schema.columns.items() if n in present and _type_fits(frame.schema[n], c)}
    for name in sorted(present & set(schema.columns) - set(typed), key=frame.columns.index):
        col = schema.columns[name]
        found += _found(checks.type_change, "type_change", name,
                        f"{frame.schema[name]}{_bad_values(frame.get_column(name), col)}",
                        col.type, f"clean the column so it holds {col.type} values, or change its "
                        "`type:` in the schema file")
    stats = _batch_stats(frame, typed)
    for name, col in typed.items():
        nulls = stats[f"{name}\0nulls"]
        share = nulls / rows
        if not col.nullable and nulls and share > checks.unexpected_nulls.threshold:
            found += _found(checks.unexpected_nulls, "unexpected_nulls", name,
                            f"{nulls} missing values ({share:.1%} of rows)", "no missing values",
                            "fill the gaps upstream, or set `nullable: true` for it in the schema file")
        elif share - col.missing_rate > checks.missing_rate.threshold:
            found += _found(checks.missing_rate, "missing_rate", name,
                            f"{share:.1%} of rows missing", f"about {col.missing_rate:.1%} as in the "
                            f"reference data (threshold +{checks.missing_rate.threshold:.0%})",
                            "check the source for a broken join or field")
        if col.categories is not None:
            outside = stats[f"{name}\0new"]
            if outside and outside / rows > checks.new_category.threshold:
                values = frame.get_column(name).cast(pl.String).filter(
                    ~frame.get_column(name).cast(pl.String).is_in(col.categories)).drop_nulls().unique()
                found += _found(checks.new_category, "new_category", name,
                                f"{outside} rows ({outside / rows:.1%}) with values not in the schema: "
                                f"{_listing(sorted(values.to_list()))}",
                                f"one of {_listing(col.categories)}",
                                "add the values to `categories:` in the schema file if they are valid, "
                                "or remove `categories:` to accept any value")
        if col.type == "numeric" and (col.min is not None or col.max is not None):
            outside = stats[f"{name}\0range"]
            low, high = stats[f"{name}\0min"], stats[f"{name}\0max"]
            if outside and outside / rows > checks.out_of_range.threshold:
                found += _found(checks.out_of_range, "out_of_range", name,
                                f"{outside} rows ({outside / rows:.1%}) outside the range, from "
                                f"{low:g} to {high:g}",
                                f"values from {_bound(col.min)} to {_bound(col.max)}",
                                "fix the values upstream, or widen `min:` / `max:` in the schema file")
    return found


def _batch_stats(frame: pl.DataFrame, typed: dict[str, ColumnSchema]) -> dict[str, Any]:
    """Null counts, out-of-domain and out-of-range counts of every column, in one pass."""
    exprs = []
    for name, col in typed.items():
        c = pl.col(name)
        exprs.append(c.null_count().alias(f"{name}\0nulls"))
        if col.categories is not None:
            s = c.cast(pl.String)
            exprs.append((s.is_not_null() & ~s.is_in(col.categories)).sum().alias(f"{name}\0new"))
        if col.type == "numeric" and (col.min is not None or col.max is not None):
            x = c.cast(pl.Float64)
            low = x < col.min if col.min is not None else pl.lit(False)
            high = x > col.max if col.max is not None else pl.lit(False)
            exprs += [(low | high).sum().alias(f"{name}\0range"), x.min().alias(f"{name}\0min"),
                      x.max().alias(f"{name}\0max")]
    return frame.select(exprs).row(0, named=True) if exprs else {}


def _type_fits(dtype: pl.DataType, col: ColumnSchema) -> bool:
    if col.type == "numeric":
        return dtype.is_numeric()
    if col.type == "datetime":
        return dtype.is_temporal()
    if col.type == "boolean":
        return dtype == pl.Boolean
    return True  # categorical and other: any value is compared as text


def _bad_values(series: pl.Series, col: ColumnSchema) -> str:
    """' with values such as ...' for the values that do not read as the schema's type."""
    if series.dtype != pl.String or col.type not in ("numeric", "datetime"):
        return ""
    text = series.drop_nulls()
    parsed = (text.cast(pl.Float64, strict=False) if col.type == "numeric"
              else text.str.to_datetime(strict=False))
    bad = text.filter(parsed.is_null()).unique(maintain_order=True).head(_EXAMPLES).to_list()
    return f" with values such as {_listing(bad)}" if bad else ""


def _renamed_hint(name: str, unknown: list[str]) -> str:
    from looml.errors import did_you_mean

    hint = did_you_mean(name, unknown)
    return f"{hint} If the column was renamed, rename it back or update the schema file" if hint else ""


def _listing(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:_EXAMPLES])
    return shown + (f" and {len(values) - _EXAMPLES} more" if len(values) > _EXAMPLES else "")


def _bound(value: float | None) -> str:
    return "-inf" if value is None else f"{value:g}"


def check_dataset(frame: pl.DataFrame, report: ValidationReport, checks: ValidationSpec,
                  seed: int = 0) -> list[Anomaly]:
    """Findings about training data as a whole: duplicates, unusable columns, leakage, imbalance.

    Constant and id-like columns are dropped by validation whatever the severity (and noted in
    its warnings); as checks they matter when set to `error`, to stop the run instead.
    """
    found: list[Anomaly] = []
    for name, why in report.dropped.items():
        if checks.constant_column.severity == "error" and why.startswith(("constant", "all values")):
            found += _found(checks.constant_column, "constant_column", name, why, "varying values",
                            "drop the column upstream, or set validation.constant_column: warning")
        if checks.id_like.severity == "error" and why.startswith("id-like"):
            found += _found(checks.id_like, "id_like", name, why, "a feature, not a row identifier",
                            "list it in data.id_columns, or set validation.id_like: warning")
    rows = frame.height
    duplicates = rows - frame.n_unique()
    if rows and duplicates / rows > checks.duplicate_rows.threshold:
        found += _found(checks.duplicate_rows, "duplicate_rows", None,
                        f"{duplicates} rows ({duplicates / rows:.1%}) repeat an earlier row",
                        f"at most {checks.duplicate_rows.threshold:.0%}",
                        "remove duplicates upstream; repeated rows can land in both the training and "
                        "the holdout split and flatter the scores")
    if report.task == "classification" and report.classes:
        total = sum(report.classes.values())
        rarest, count = min(report.classes.items(), key=lambda item: item[1])
        if count / total < checks.class_imbalance.threshold:
            found += _found(checks.class_imbalance, "class_imbalance", report.target,
                            f"the rarest class {rarest!r} is {count / total:.2%} of rows ({count} rows)",
                            f"at least {checks.class_imbalance.threshold:.0%} per class",
                            "collect more rows of the rare class, merge rare classes, or rank models by "
                            "a metric that weighs classes (roc_auc, f1)")
    if checks.target_leakage.severity != "off":
        for name, score in _univariate_power(frame, report, seed).items():
            if score >= checks.target_leakage.threshold:
                found += _found(checks.target_leakage, "target_leakage", name,
                                f"this column alone predicts {report.target!r} with a score of {score:.3f}",
                                f"below {checks.target_leakage.threshold}",
                                "if it is only known after the outcome, add it to data.drop_columns; if it "
                                "is a legitimate predictor, set validation.target_leakage: warning")
    return found


def _univariate_power(frame: pl.DataFrame, report: ValidationReport, seed: int) -> dict[str, float]:
    """How well each feature alone predicts the target, from 0 (no better than the base rate) to 1.

    The feature is cut into bins (quantiles for numbers, its values for categories, a bin for
    missing). Classification: how much the bins' majority classes beat the overall majority.
    Regression: the share of the target's variance explained by the bin means (eta squared).
    """
    data = frame.filter(pl.col(report.target).is_not_null())
    if data.height > _LEAKAGE_SAMPLE:
        data = data.sample(_LEAKAGE_SAMPLE, seed=seed)
    rows = data.height
    bins = min(20, rows // _ROWS_PER_BIN)
    if bins < 2:
        return {}
    scores: dict[str, float] = {}
    for name, kind in report.features.items():
        column = data.get_column(name)
        if kind == "categorical":
            if column.n_unique() > rows // _ROWS_PER_BIN:
                continue
            key = column.cast(pl.String)
        else:
            numbers = column.cast(pl.Int64 if kind == "datetime" else pl.Float64)
            if numbers.n_unique() <= bins:
                key = numbers.cast(pl.String)
            else:
                ranks = numbers.rank("ordinal").cast(pl.Float64)
                key = (ranks * bins / (numbers.drop_nulls().len() + 1)).floor().cast(pl.String)
        table = pl.DataFrame({"bin": key, "y": data.get_column(report.target)})
        if report.task == "classification":
            counts = table.group_by("bin", "y").len()
            best = counts.group_by("bin").agg(pl.col("len").max()).get_column("len").sum()
            base = table.get_column("y").value_counts().get_column("count").max()
            score = (best - base) / (rows - base) if rows > base else 0.0
        else:
            total = float(table.select((pl.col("y") - pl.col("y").mean()).pow(2).sum()).item())
            within = float(table.select((pl.col("y") - pl.col("y").mean().over("bin")).pow(2).sum()).item())
            score = 1.0 - within / total if total > 0 else 0.0
        scores[name] = float(np.clip(score, 0.0, 1.0))
    return scores


def check_skew(train: pl.DataFrame, test: pl.DataFrame, features: dict[str, str],
               check: CheckSpec) -> list[Anomaly]:
    """Features whose distribution differs between the training and holdout rows (PSI)."""
    if check.severity == "off" or min(train.height, test.height) < _MIN_SKEW_ROWS:
        return []
    found: list[Anomaly] = []
    for name, kind in features.items():
        a, b = train.get_column(name), test.get_column(name)
        if kind == "categorical":
            a, b = a.cast(pl.String).fill_null("\0missing"), b.cast(pl.String).fill_null("\0missing")
        else:
            a = a.cast(pl.Int64 if kind == "datetime" else pl.Float64)
            b = b.cast(pl.Int64 if kind == "datetime" else pl.Float64)
            present = a.drop_nulls().to_numpy()
            if not len(present):
                continue
            edges = np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9)))
            a, b = _bucket(a, edges), _bucket(b, edges)
        psi = _psi(a, b)
        if psi > check.threshold:
            found += _found(check, "train_test_skew", name, f"population stability index {psi:.3f} "
                            "between training and holdout rows", f"at most {check.threshold}",
                            "check for a time or group structure in the rows; a random split assumes "
                            "none")
    return found


def _bucket(series: pl.Series, edges: np.ndarray) -> pl.Series:
    values = series.cast(pl.Float64).fill_null(np.nan).to_numpy()
    codes = np.searchsorted(edges, values, side="right").astype(str)
    return pl.Series(np.where(np.isnan(values), "missing", codes))


def _psi(a: pl.Series, b: pl.Series) -> float:
    pa = a.value_counts(name="n").with_columns(pl.col("n") / a.len())
    pb = b.value_counts(name="n").with_columns(pl.col("n") / b.len())
    joined = pa.join(pb, on=a.name, how="full", coalesce=True, suffix="_b").fill_null(0.0)
    p = np.clip(joined.get_column("n").to_numpy(), 1e-4, None)
    q = np.clip(joined.get_column("n_b").to_numpy(), 1e-4, None)
    return float(np.sum((p - q) * np.log(p / q)))
