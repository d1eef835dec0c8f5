"""Drift: how far new data has moved from the training data, column by column and as a whole.

    detect(reference, current, spec) -> DriftReport

Only the current rows are scanned: the reference is the summary logged with the model
(`looml.monitor.reference`), whose distribution function is exact at up to 1,009 points per
numeric column. Every statistic below is computed from counts at those points, so one pass of
`searchsorted` + `bincount` per numeric column and one `value_counts` per categorical column is
the whole cost, whatever the reference's size.

Per column, by type (the defaults; `monitor.drift` in looml.yaml changes them):

- continuous numbers: KS p-value below 0.05 when either side has at most 1,000 values, else the
  Wasserstein distance normed by the reference's std at or above 0.1 (Evidently's choice by size:
  a p-value test on 100,000 rows fires on shifts too small to matter).
- categories, and numbers with at most 10 distinct values in the reference (discrete; every
  value is a category): chi-square p-value below 0.05 for small samples, else the Jensen-Shannon
  distance at or above 0.1. The categories compared are the reference's 20 most frequent and one
  bucket for the rest, so a column of thousands of levels is judged by the share of its top
  levels, never by a chi-square over thousands of cells.
- p-values are Bonferroni-corrected over the columns judged, so twenty columns of unchanged
  data do not raise an alarm one time in three.
- the missing rate: drift when it moves by at least 0.05 and the change is beyond chance (two-
  proportion z-test, corrected the same way).
- new categories: drift when the share of values never seen in training exceeds the share
  expected from the reference's own rare values (values seen once, Good-Turing) by 0.05.
- PSI, chi-square, Jensen-Shannon, KS and Wasserstein are all reported where they apply.

The dataset drifts when the share of drifted columns (optionally weighted by permutation
importance) reaches `drift_share`. Predictions and probabilities are compared the same way and
reported apart, as prediction drift.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from looml.errors import DataError, Problem, SpecError, did_you_mean
from looml.monitor.reference import ColumnSummary, Reference, column_values
from looml.spec import DRIFT_THRESHOLDS, P_VALUE_METHODS, DriftSpec

__all__ = ["ColumnDrift", "DriftReport", "detect"]

DISCRETE_MAX = 10  # numeric columns with at most this many distinct reference values are discrete
BUCKETS = 20  # quantile buckets of a continuous column, or top categories (+ one for the rest)
_FLOOR = 1e-4  # PSI: empty buckets count as this share
_MIN_EXPECTED = 5  # values expected fewer times than this in the current rows are pooled
_CATEGORICAL_ONLY = ("chisquare", "jensenshannon", "psi")


@dataclass(frozen=True)
class ColumnDrift:
    """The verdict on one column: the deciding statistic and every other one computed."""

    column: str
    kind: str  # numeric | categorical | text | datetime
    treated_as: str  # continuous | discrete | categorical
    method: str  # the deciding statistic; "" when the column was not judged
    statistic: float | None  # its value: the distance, or the test statistic of a p-value test
    p_value: float | None
    threshold: float | None  # as configured; p-values are compared with threshold / tests
    drifted: bool
    signals: list[str]  # why: distribution, missing_rate, new_categories
    rows: int  # current non-missing values
    reference_missing_rate: float
    current_missing_rate: float
    new_category_share: float | None = None
    expected_new_share: float | None = None
    weight: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)
    bins: dict[str, list[Any]] = field(default_factory=dict)  # labels, reference / current shares
    note: str = ""


@dataclass(frozen=True)
class DriftReport:
    """Drift of a current window against a model's reference (`to_dict()` is the JSON report)."""

    rows: int
    reference_rows: int
    judged: bool  # False when the window has fewer than min_rows rows
    columns: list[ColumnDrift]
    predictions: list[ColumnDrift]
    share: float  # share of judged columns that drifted (weighted when `weighted`)
    drift_share: float  # the threshold
    weighted: bool
    dataset_drift: bool
    prediction_drift: bool | None  # None when predictions were not compared
    tests: int  # p-value tests in the Bonferroni family of the features
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        """The feature columns that drifted."""
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, with `drifted` listed."""
        return {**asdict(self), "drifted": self.drifted}

    def to_json(self, **meta: str) -> str:
        """The JSON report, with `meta` (model, source, ...) first."""
        return json.dumps({**meta, **self.to_dict()}, indent=1, default=_json_number)


def _json_number(value: Any) -> Any:
    return float(value) if isinstance(value, np.floating) else str(value)


@dataclass
class _Measure:
    """What one column's pass over the current rows found, before the verdict."""

    column: str
    summary: ColumnSummary
    treated_as: str
    method: str
    threshold: float | None
    rows: int
    missing: int
    total: int
    stats: dict[str, float]
    bins: dict[str, list[Any]]
    new_share: float | None = None
    expected_new: float | None = None
    note: str = ""


def detect(reference: Reference, current: pl.DataFrame, spec: DriftSpec) -> DriftReport:
    """Compare `current` rows with the reference; raise `SpecError` for per-column settings that
    name unknown columns or misfit a column, and `DataError` when reference features are absent."""
    _check_columns(reference, current, spec)
    notes: list[str] = []
    judged = current.height >= spec.min_rows
    if not judged:
        notes.append(f"{current.height} rows, fewer than monitor.drift.min_rows ({spec.min_rows}): "
                     "nothing was judged")
    features = {n: s for n, s in reference.columns.items() if _checked(n, s, spec, notes)}
    measured = [_measure(n, s, current.get_column(n), spec) for n, s in features.items()] if judged else []
    columns = _verdicts(measured, spec, reference, with_data_signals=True)
    outputs = {n: s for n, s in reference.predictions.items()
               if n in current.columns and not (n in spec.columns and spec.columns[n].skip)}
    predictions: list[ColumnDrift] = []
    prediction_drift = None
    if judged and spec.prediction and outputs:
        predictions = _verdicts([_measure(n, s, current.get_column(n), spec) for n, s in outputs.items()],
                                spec, reference, with_data_signals=False)
        prediction_drift = any(p.drifted for p in predictions)
    elif spec.prediction and reference.predictions and not outputs:
        notes.append("the current rows have no model outputs (prediction, proba_*): prediction drift "
                     "was not checked")
    share, weighted = _share(columns, reference, spec, notes)
    return DriftReport(
        rows=current.height, reference_rows=reference.rows, judged=judged, columns=columns,
        predictions=predictions, share=share, drift_share=spec.drift_share, weighted=weighted,
        dataset_drift=judged and bool(columns) and share >= spec.drift_share,
        prediction_drift=prediction_drift, tests=_tests(columns), notes=notes)


def _check_columns(reference: Reference, current: pl.DataFrame, spec: DriftSpec) -> None:
    known = [*reference.columns, *reference.predictions]
    problems = [Problem(loc=f"monitor.drift.columns.{name}", value=name,
                        message="not a feature (or output) of the model",
                        fix=did_you_mean(name, known) or f"known columns: {', '.join(known)}")
                for name in spec.columns if name not in known]
    problems += [Problem(loc=f"monitor.drift.columns.{name}.method", value=own.method,
                         message=f"{own.method} compares numbers; {name!r} is categorical",
                         fix="use chisquare, jensenshannon, psi or auto")
                 for name, own in spec.columns.items()
                 if own.method not in ("auto", *_CATEGORICAL_ONLY)
                 and name in reference.columns and reference.columns[name].kind == "categorical"]
    if problems:
        raise SpecError(problems)
    absent = [n for n in reference.columns if n not in current.columns]
    if absent:
        raise DataError([Problem(loc=f"column {name!r}", message="a feature of the model is missing "
                                 "from the current data", fix=did_you_mean(name, current.columns)
                                 or "send every feature the model was trained on") for name in absent])


def _checked(name: str, summary: ColumnSummary, spec: DriftSpec, notes: list[str]) -> bool:
    own = spec.columns.get(name)
    if own is not None and own.skip:
        notes.append(f"{name}: skipped (monitor.drift.columns.{name}.skip)")
        return False
    if summary.kind == "datetime" and not spec.datetime and own is None:
        notes.append(f"{name}: a date column, not checked (dates move forward by nature; set "
                     "monitor.drift.datetime: true to check them)")
        return False
    return True


def _measure(name: str, summary: ColumnSummary, series: pl.Series, spec: DriftSpec) -> _Measure:
    """One pass over a current column: counts, then every statistic that applies."""
    values = column_values(series, summary.kind)
    total = len(values)
    missing = values.null_count()
    own = spec.columns.get(name)
    kind = own.kind if own is not None else "auto"
    if summary.kind == "categorical":
        treated = "categorical"
    elif kind == "discrete" or (kind == "auto" and summary.distinct <= DISCRETE_MAX):
        treated = "discrete" if summary.distinct <= len(summary.edges) else "continuous"
    else:
        treated = "continuous"
    method, threshold = spec.test_for(name, treated != "continuous")
    measure = _Measure(column=name, summary=summary, treated_as=treated, method=method, threshold=threshold,
                       rows=total - missing, missing=missing, total=total, stats={}, bins={})
    if kind == "discrete" and treated == "continuous":
        measure.note = (f"{summary.distinct} distinct values in training, too many to compare one by one: "
                        "compared as continuous")
    if measure.rows < spec.min_rows or summary.present < spec.min_rows:
        measure.note = (f"{min(measure.rows, summary.present)} non-missing values, fewer than "
                        f"min_rows ({spec.min_rows}): the distribution was not judged")
        return measure
    if treated == "categorical":
        _categorical(measure, values)
    else:
        _numeric(measure, values.drop_nulls().to_numpy())
    if method == "auto":
        small = min(measure.rows, summary.present) <= spec.small_sample_rows
        continuous = treated == "continuous"
        measure.method = ("ks" if continuous else "chisquare") if small else (
            "wasserstein" if continuous else "jensenshannon")
    if measure.threshold is None:
        measure.threshold = DRIFT_THRESHOLDS[measure.method]
    return measure


def _numeric(m: _Measure, present: np.ndarray) -> None:
    s = m.summary
    edges, ref_cdf = np.asarray(s.edges), np.asarray(s.cdf)
    n = len(present)
    where = np.searchsorted(edges, present, side="left")  # edges[j-1] < x <= edges[j]
    counts = np.bincount(where, minlength=len(edges) + 1)
    cur_cdf = np.cumsum(counts[:-1]) / n  # share <= each edge
    signed = ref_cdf - cur_cdf
    gap = np.abs(signed)
    d = float(gap.max())
    effective = s.present * n / (s.present + n)
    root = math.sqrt(effective)
    m.stats["ks"] = d
    m.stats["ks_p_value"] = float(stats.kstwobign.sf((root + 0.12 + 0.11 / root) * d))
    below = float(np.clip(edges[0] - present, 0.0, None).sum()) / n
    above = float(np.clip(present - edges[-1], 0.0, None).sum()) / n
    distance = _area(signed, np.diff(edges), quantiles=s.distinct > len(edges)) + below + above
    m.stats["wasserstein"] = distance / max(s.std or 0.0, 0.001)
    if m.treated_as == "discrete":
        exact = (where < len(edges)) & (present == edges[np.minimum(where, len(edges) - 1)])
        on_edge = np.bincount(where[exact], minlength=len(edges))
        ref_share = np.diff(ref_cdf, prepend=0.0)
        cur = np.append(on_edge, n - on_edge.sum())
        labels = [_number(e) for e in edges] + ["other"]
        _buckets(m, *_fold(np.append(ref_share, 0.0), cur, labels, min(n, s.present)))
        return
    cuts = np.unique(np.searchsorted(ref_cdf, np.arange(1, BUCKETS) / BUCKETS, side="left"))
    cuts = cuts[cuts < len(edges) - 1]
    ref_at = np.append(ref_cdf[cuts], 1.0)
    cur_at = np.append(cur_cdf[cuts], 1.0)
    labels = [f"≤ {_number(edges[c])}" for c in cuts] + [f"> {_number(edges[cuts[-1]])}" if len(cuts)
                                                         else "all"]
    _buckets(m, np.diff(ref_at, prepend=0.0), np.diff(cur_at, prepend=0.0) * n, labels)


def _area(signed: np.ndarray, widths: np.ndarray, quantiles: bool) -> float:
    """The integral of |F_ref - F_cur| between the edges. Every distinct value an edge: both
    functions are steps, constant between edges. Quantile edges: both are taken as linear inside
    a bin, so the difference goes from a to b, and its absolute value integrates exactly."""
    a, b = signed[:-1], signed[1:]
    if not quantiles:
        return float(np.sum(np.abs(a) * widths))
    same = a * b >= 0
    total = np.abs(a) + np.abs(b)
    crossing = np.divide(a * a + b * b, 2 * total, out=np.zeros_like(total), where=total > 0)
    return float(np.sum(np.where(same, total / 2, crossing) * widths))


def _categorical(m: _Measure, values: pl.Series) -> None:
    s = m.summary
    counted = values.drop_nulls().rename("value").value_counts(name="rows")
    current = dict(zip(counted.get_column("value").to_list(), counted.get_column("rows").to_list(),
                       strict=True))
    top = list(s.counts)[:BUCKETS]  # stored most frequent first
    ref = np.array([s.counts[c] for c in top] + [s.present - sum(s.counts[c] for c in top)], dtype=float)
    cur = np.array([current.get(c, 0) for c in top] + [0], dtype=float)
    cur[-1] = m.rows - cur[:-1].sum()
    _buckets(m, *_fold(ref / max(s.present, 1), cur, [*top, "(other)"], min(m.rows, s.present)))
    if s.other == 0:
        unseen = sum(count for value, count in current.items() if value not in s.counts)
        m.new_share = unseen / m.rows
        m.expected_new = s.singletons / max(s.present, 1)
    else:
        m.note = (f"{s.distinct} categories in training, more than are kept one by one: the share of new "
                  "categories is not measured")


def _fold(ref_share: np.ndarray, cur_count: np.ndarray, labels: list[str],
          smaller: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Values expected fewer than 5 times in the smaller sample (`smaller` rows) join the last
    bucket (the rest):
    the chi-square test is not valid on sparser cells, and they are what makes a fresh sample
    of the same distribution look drifted."""
    keep = ref_share[:-1] * smaller >= _MIN_EXPECTED
    rest_ref = ref_share[-1] + ref_share[:-1][~keep].sum()
    rest_cur = cur_count[-1] + cur_count[:-1][~keep].sum()
    kept = [label for label, k in zip(labels[:-1], keep, strict=True) if k]
    return (np.append(ref_share[:-1][keep], rest_ref), np.append(cur_count[:-1][keep], rest_cur),
            [*kept, labels[-1]])


def _buckets(m: _Measure, ref_share: np.ndarray, cur_count: np.ndarray, labels: list[str]) -> None:
    """Chi-square, Jensen-Shannon and PSI over buckets; the bucket shares for the report's bars.

    The last bucket (the rest, or values above the reference's range) is dropped when both sides
    leave it empty."""
    if ref_share[-1] == 0 and cur_count[-1] == 0 and len(ref_share) > 1:
        ref_share, cur_count, labels = ref_share[:-1], cur_count[:-1], labels[:-1]
    n = cur_count.sum()
    cur_share = cur_count / n
    ref_count = ref_share * m.summary.present
    table = np.vstack([ref_count, cur_count])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] > 1:
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
        chi2 = float(((table - expected) ** 2 / expected).sum())
        m.stats["chisquare"] = chi2
        m.stats["chisquare_p_value"] = float(stats.chi2.sf(chi2, table.shape[1] - 1))
    else:
        m.stats["chisquare"], m.stats["chisquare_p_value"] = 0.0, 1.0
    mid = (ref_share + cur_share) / 2
    m.stats["jensenshannon"] = math.sqrt(max(0.0, (_kl(ref_share, mid) + _kl(cur_share, mid)) / 2))
    p, q = np.clip(ref_share, _FLOOR, None), np.clip(cur_share, _FLOOR, None)
    m.stats["psi"] = float(np.sum((q - p) * np.log(q / p)))
    m.bins = {"labels": labels, "reference": np.round(ref_share, 6).tolist(),
              "current": np.round(cur_share, 6).tolist()}


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    keep = p > 0
    return float(np.sum(p[keep] * np.log(p[keep] / q[keep])))


def _verdicts(measured: list[_Measure], spec: DriftSpec, reference: Reference,
              with_data_signals: bool) -> list[ColumnDrift]:
    """Decide each column, with the p-values of the family Bonferroni-corrected."""
    tests = max(1, sum(1 for m in measured if m.stats))
    out = []
    for m in measured:
        signals: list[str] = []
        statistic = p_value = None
        if m.stats:
            if m.method in P_VALUE_METHODS:
                statistic, p_value = m.stats[m.method], m.stats[f"{m.method}_p_value"]
                if p_value < m.threshold / tests:
                    signals.append("distribution")
            else:
                statistic = m.stats[m.method]
                if statistic >= m.threshold:
                    signals.append("distribution")
        s = m.summary
        ref_missing = s.missing / s.rows if s.rows else 0.0
        cur_missing = m.missing / m.total if m.total else 0.0
        if with_data_signals:
            if _missing_moved(s.missing, s.rows, m.missing, m.total, spec.missing_rate_change, 0.05 / tests):
                signals.append("missing_rate")
            if m.new_share is not None and m.new_share - (m.expected_new or 0.0) >= spec.new_category_share:
                signals.append("new_categories")
        out.append(ColumnDrift(
            column=m.column, kind=s.kind, treated_as=m.treated_as, method=m.method if m.stats else "",
            statistic=statistic, p_value=p_value, threshold=m.threshold if m.stats else None,
            drifted=bool(signals), signals=signals, rows=m.rows, reference_missing_rate=ref_missing,
            current_missing_rate=cur_missing, new_category_share=m.new_share,
            expected_new_share=m.expected_new, weight=_weight(reference, m.column), stats=m.stats,
            bins=m.bins, note=m.note))
    return out


def _missing_moved(m0: int, n0: int, m1: int, n1: int, change: float, alpha: float) -> bool:
    """Whether the missing rate moved by at least `change`, beyond chance (two-proportion z-test)."""
    if not n0 or not n1:
        return False
    delta = abs(m1 / n1 - m0 / n0)
    if delta < change:
        return False
    pooled = (m0 + m1) / (n0 + n1)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    return se == 0 or 2 * stats.norm.sf(delta / se) < alpha


def _weight(reference: Reference, column: str) -> float:
    return reference.importance.get(column, 0.0) if reference.importance else 0.0


def _share(columns: list[ColumnDrift], reference: Reference, spec: DriftSpec,
           notes: list[str]) -> tuple[float, bool]:
    if not columns:
        return 0.0, False
    weighted = spec.weight_by_importance and bool(reference.importance)
    if spec.weight_by_importance and not weighted:
        notes.append("the reference has no feature importances: every column weighs the same")
    total = sum(c.weight for c in columns) if weighted else float(len(columns))
    if weighted and total <= 0:
        notes.append("the checked columns have no importance: every column weighs the same")
        weighted, total = False, float(len(columns))
    drifted = sum((c.weight if weighted else 1.0) for c in columns if c.drifted)
    return drifted / total, weighted


def _tests(columns: list[ColumnDrift]) -> int:
    return sum(1 for c in columns if c.method)


def _number(value: float) -> str:
    return f"{value:.4g}"
