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
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from looml.data.schema import ColumnSchema, Schema
from looml.data.validate import ValidationReport
from looml.errors import Problem, did_you_mean
from looml.spec import CheckSpec, ValidationSpec

__all__ = ["Anomaly", "check_batch", "check_dataset", "check_skew"]

_EXAMPLES = 5
_LEAKAGE_SAMPLE = 100_000
_LEAKAGE_CHANCES = 10  # class changes expected by chance below which a perfect order can be luck
_MIN_LEAKAGE_ROWS = 20
_MIN_SKEW_ROWS = 200
_MIN_RATE_ROWS = 100  # a missing rate of a handful of rows (one served request) is not a rate
_SKEW_BUCKETS = 10
_SKEW_ROWS_PER_BUCKET = 50  # of n1 n2 / (n1 + n2): keeps chance PSI of 10 buckets under 0.1 (chi-squared)


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
                            "add it to the schema file if it belongs in the data, or drop it upstream")
    rows = frame.height
    if not rows:
        return found
    # A batch to predict on may carry an empty target column: its values are not checked.
    checked = {n: c for n, c in schema.columns.items()
               if n in present and not (scoring and c.role == "target")}
    typed = {n: c for n, c in checked.items() if _type_fits(frame.get_column(n), c)}
    for name in [n for n in frame.columns if n in checked and n not in typed]:
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
        elif rows >= _MIN_RATE_ROWS and share - col.missing_rate > checks.missing_rate.threshold:
            found += _found(checks.missing_rate, "missing_rate", name,
                            f"{share:.1%} of rows missing", f"about {col.missing_rate:.1%} as in the "
                            f"reference data (threshold +{_percent(checks.missing_rate.threshold)})",
                            "check the source for a broken join or field, or raise `missing_rate:` for "
                            "it in the schema file")
        if col.categories is not None:
            outside = stats[f"{name}\0new"]
            if outside and outside / rows > checks.new_category.threshold:
                text = frame.get_column(name).cast(pl.String)
                values = text.filter(text.is_not_null() & ~text.is_in(col.categories)).unique()
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
                                f"{_number(low)} to {_number(high)}",
                                f"values from {_bound(col.min, '-inf')} to {_bound(col.max, 'inf')}",
                                "fix the values upstream, or widen `min:` / `max:` in the schema file")
        if col.type == "datetime" and (col.earliest is not None or col.latest is not None):
            outside = stats[f"{name}\0range"]
            if outside and outside / rows > checks.out_of_range.threshold:
                first, last = stats[f"{name}\0min"], stats[f"{name}\0max"]
                found += _found(checks.out_of_range, "out_of_range", name,
                                f"{outside} rows ({outside / rows:.1%}) outside the range, from "
                                f"{first.isoformat(sep=' ')} to {last.isoformat(sep=' ')}",
                                f"moments from {_moment(col.earliest, 'any date')} to "
                                f"{_moment(col.latest, 'any later date')}",
                                "fix the values upstream, or move `earliest:` / `latest:` in the schema file")
    return found


def _batch_stats(frame: pl.DataFrame, typed: dict[str, ColumnSchema]) -> dict[str, Any]:
    """Null counts, out-of-domain and out-of-range counts of every column, in one pass."""
    exprs = []
    dtypes = frame.schema  # made anew on each access: once, not once per column
    for name, col in typed.items():
        c = pl.col(name)
        exprs.append(c.null_count().alias(f"{name}\0nulls"))
        if col.categories is not None:
            s = c.cast(pl.String)
            exprs.append((s.is_not_null() & ~s.is_in(col.categories)).sum().alias(f"{name}\0new"))
        if col.type == "numeric" and (col.min is not None or col.max is not None):
            x = c.cast(pl.Float64).fill_nan(None)  # NaN is a gap, not a value beyond the range
            low = x < col.min if col.min is not None else pl.lit(False)
            high = x > col.max if col.max is not None else pl.lit(False)
            exprs += [(low | high).sum().alias(f"{name}\0range"), x.min().alias(f"{name}\0min"),
                      x.max().alias(f"{name}\0max")]
        if col.type == "datetime" and (col.earliest is not None or col.latest is not None):
            x = _naive_utc(c, dtypes[name])
            low = x < col.earliest if col.earliest is not None else pl.lit(False)
            high = x > col.latest if col.latest is not None else pl.lit(False)
            exprs += [(low | high).sum().alias(f"{name}\0range"), x.min().alias(f"{name}\0min"),
                      x.max().alias(f"{name}\0max")]
    return frame.select(exprs).row(0, named=True) if exprs else {}


def _naive_utc(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A date or datetime column as naive UTC datetimes, as the schema's bounds are written."""
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return column.cast(pl.Datetime("us"))


def _type_fits(series: pl.Series, col: ColumnSchema) -> bool:
    dtype = series.dtype
    if dtype == pl.Null or series.null_count() == len(series):
        return True  # no values, none of the wrong type (a CSV reads an empty column as text)
    if col.type == "numeric":
        return dtype.is_numeric()
    if col.type == "datetime":
        return dtype.is_temporal()
    if col.type == "boolean":
        return dtype == pl.Boolean
    return True  # categorical and other: any value is compared as text


def _bad_values(series: pl.Series, col: ColumnSchema) -> str:
    """' with values such as ...' for the values that do not read as the schema's type."""
    if series.dtype != pl.String or col.type not in ("numeric", "datetime", "boolean"):
        return ""
    text = series.drop_nulls()
    if col.type == "numeric":
        parsed = text.str.strip_chars().cast(pl.Float64, strict=False)
    elif col.type == "boolean":
        parsed = text.str.to_lowercase().replace_strict({"true": True, "false": False}, default=None)
    else:
        try:
            parsed = text.str.to_datetime(strict=False)
        except pl.exceptions.PolarsError:  # no format fits the first value: show the first ones
            parsed = pl.Series([None] * len(text), dtype=pl.Datetime)
    bad = text.filter(parsed.is_null()).unique(maintain_order=True).head(_EXAMPLES).to_list()
    return f" with values such as {_listing(bad)}" if bad else ""


def _renamed_hint(name: str, unknown: list[str]) -> str:
    hint = did_you_mean(name, unknown)
    return f"{hint} If the column was renamed, rename it back or update the schema file" if hint else ""


def _listing(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:_EXAMPLES])
    return shown + (f" and {len(values) - _EXAMPLES} more" if len(values) > _EXAMPLES else "")


def _number(value: float) -> str:
    """Whole numbers in full (1500000, not 1.5e+06), others to six significant digits."""
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else f"{value:.6g}"


def _moment(value: datetime | None, open_side: str) -> str:
    return open_side if value is None else value.isoformat(sep=" ").removesuffix(" 00:00:00")


def _bound(value: float | None, open_side: str) -> str:
    return open_side if value is None else _number(value)


def _percent(share: float) -> str:
    return f"{share * 100:.4g}%"


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
                        f"at most {_percent(checks.duplicate_rows.threshold)}",
                        "remove duplicates upstream; repeated rows can land in both the training and "
                        "the holdout split and flatter the scores")
    if report.task == "classification" and report.classes:
        total = sum(report.classes.values())
        rarest, count = min(report.classes.items(), key=lambda item: item[1])
        if count / total < checks.class_imbalance.threshold:
            found += _found(checks.class_imbalance, "class_imbalance", report.target,
                            f"the rarest class {rarest!r} is {count / total:.2%} of rows ({count} rows)",
                            f"at least {_percent(checks.class_imbalance.threshold)} per class",
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
    """How well each feature alone predicts the target, from 0 (no better than chance) to 1.

    Each feature orders the rows (missing values first, ties in a seeded random order), and the
    score says how alike the targets of neighbouring rows are: a nearest-neighbour prediction
    from that feature alone, judged on rows other than the one predicted, so that it needs no
    bins and does not reward luck with many distinct values. Classification: the class changes
    between neighbours, scaled from the number expected by chance (0) to the fewest possible
    (1, each class in one run). Regression: the correlation of neighbours' target ranks (1 when
    the target is a function of the feature, monotone or not).
    """
    features = list(report.features)
    data = frame.select(*features, report.target).filter(pl.col(report.target).is_not_null())
    if data.height > _LEAKAGE_SAMPLE:
        data = data.sample(_LEAKAGE_SAMPLE, seed=seed)
    rows = data.height
    if rows < _MIN_LEAKAGE_ROWS or not features:
        return {}
    y = data.get_column(report.target)
    classification = report.task == "classification"
    if classification:
        y = y.cast(pl.String).rank("dense").rename("class")
        counts = y.value_counts(name="rows").get_column("rows").cast(pl.Float64).to_numpy()
        fewest = len(counts) - 1
        # Expected class changes between neighbours when the order says nothing about the target.
        chance = (rows - 1) * (1 - float((counts * (counts - 1)).sum()) / (rows * (rows - 1)))
        if chance - fewest < _LEAKAGE_CHANCES:  # too few rows of the rarer classes to tell
            return {}
    else:
        y = y.rank("average")
    order = pl.Series(np.random.default_rng(seed).permutation(rows))
    keyed = data.select(features).with_columns(y.alias("\0y"), order.alias("\0order"))
    ordered = keyed.select(pl.col("\0y").sort_by([pl.col(n), pl.col("\0order")]).alias(n) for n in features)
    if classification:
        changes = ordered.select((pl.col(n) != pl.col(n).shift(1)).sum() for n in features).row(0)
        scores = [(chance - c) / (chance - fewest) for c in changes]
    else:
        scores = ordered.select(pl.corr(pl.col(n).slice(1), pl.col(n).slice(0, rows - 1))
                                for n in features).row(0)
    return {n: float(np.clip(s, 0.0, 1.0)) if s is not None and s == s else 0.0
            for n, s in zip(features, scores, strict=True)}


def check_skew(train: pl.DataFrame, test: pl.DataFrame, features: dict[str, str],
               check: CheckSpec) -> list[Anomaly]:
    """Features whose distribution differs between the training and holdout rows (PSI).

    Numbers, dates and text lengths are cut at quantiles of the training rows, categories keep
    their most frequent training values apart and pool the rest; missing values get a bucket of
    their own.
    There are fewer buckets for fewer rows (at most 10): the PSI of two samples of one
    distribution grows with the buckets and shrinks with the rows, and should stay well under
    the threshold.
    """
    if check.severity == "off" or min(train.height, test.height) < _MIN_SKEW_ROWS:
        return []
    effective = train.height * test.height / (train.height + test.height)
    buckets = int(np.clip(effective // _SKEW_ROWS_PER_BUCKET, 2, _SKEW_BUCKETS))
    found: list[Anomaly] = []
    for name, kind in features.items():
        psi = _psi(*_buckets(train.get_column(name), test.get_column(name), kind, buckets))
        if psi > check.threshold:
            found += _found(check, "train_test_skew", name, f"population stability index {psi:.3f} "
                            "between training and holdout rows", f"at most {check.threshold}",
                            "check for a time or group structure in the rows; a random split assumes "
                            "none")
    return found


def _buckets(a: pl.Series, b: pl.Series, kind: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Both samples as bucket numbers (-1: missing); numbers are cut at the first's quantiles."""
    if kind == "categorical":
        a, b = a.cast(pl.String).rename("value"), b.cast(pl.String).rename("value")
        # Chosen on both samples: the values most frequent in one sample alone are over-represented
        # there by the choice, and would look like a shift.
        counts = pl.concat([a, b]).drop_nulls().value_counts(name="rows")
        top = counts.sort(["rows", "value"], descending=[True, False]).get_column("value").head(count - 1)
        # 0 .. k-1 for the frequent values, k for the others
        codes = [np.where(s.is_null().to_numpy(), -1, s.replace_strict(
            top, list(range(len(top))), default=len(top), return_dtype=pl.Int64).to_numpy()) for s in (a, b)]
        return codes[0], codes[1]
    if kind == "text":  # free text is compared by its length, as drift compares it
        a, b = (s.cast(pl.String).str.len_chars() for s in (a, b))
    physical = pl.Int64 if kind == "datetime" else pl.Float64
    x, z = (s.cast(physical).cast(pl.Float64).fill_nan(None) for s in (a, b))
    present = x.drop_nulls().to_numpy()
    cuts = np.linspace(0.0, 1.0, count + 1)[1:-1]
    edges = np.unique(np.quantile(present, cuts)) if len(present) else np.array([])

    def bucket(s: pl.Series) -> np.ndarray:
        values = s.to_numpy(allow_copy=True).astype(float)  # nulls become NaN
        return np.where(np.isnan(values), -1, np.searchsorted(edges, values, side="right"))

    return bucket(x), bucket(z)


def _psi(a: np.ndarray, b: np.ndarray) -> float:
    low = min(a.min(), b.min())
    p = np.bincount(a - low) / len(a)
    q = np.bincount(b - low, minlength=len(p)) / len(b)
    p = np.clip(np.pad(p, (0, len(q) - len(p))), 1e-4, None)
    q = np.clip(q, 1e-4, None)
    return float(np.sum((p - q) * np.log(p / q)))
