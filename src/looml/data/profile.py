"""Profile: per-column types, missing rates, cardinality, distributions and associations.

One `profile(frame)` call reads the frame in few passes: one Polars `select` of every per-column
aggregate, one sort per numeric or datetime column (quantiles, histogram, distinct count and sign
counts all come from the sorted values), a row hash for duplicates, and a seeded row sample for
the pair-wise statistics (correlations, Cramér's V, mutual information with the target).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import polars as pl

__all__ = ["ColumnProfile", "Matrix", "Profile", "TargetAssociation", "profile"]

_TOP_VALUES = 50  # value counts are kept for columns with at most this many distinct values
_FREQUENT = 20  # the most frequent values kept for every string or boolean column
_QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
_BIN_RANGE = (0.005, 0.995)  # histogram edges span these quantiles; the rest fall in the outer bins
_BINS = 20
_PAIRWISE_ROWS = 100_000  # seeded row sample for correlations and Cramér's V
_MI_ROWS = 5_000  # rows of that sample used for mutual information (k-NN estimates cost O(n log n))
_MAX_NUMERIC_PAIRS = 50  # numeric columns in the correlation matrices
_MAX_CATEGORICAL_PAIRS = 30  # categorical columns in the Cramér's V matrix
# Features given a mutual-information estimate: each is a k-NN fit of about 5 ms whatever the rows,
# so 10,000 columns took 50 s of a 2-core machine for a report chart that shows the top 25.
_MI_FEATURES = 500
_MAX_CLASSES = 20  # a whole-number target with at most this many values is a class label (as validate)
_NUMPY_NUMBERS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
                  pl.Float32, pl.Float64)
_COUNT = "\0count"  # the count field of value_counts: a name no column has


@dataclass(frozen=True)
class ColumnProfile:
    """Summary of one column.

    Numeric columns: `quantiles` (p1 ... p99) and `histogram` are over the finite values;
    `histogram` is `{"edges": [e0 ... en], "counts": [c0 ... c(n+1)]}` where `c0` counts values
    below `e0` (and -inf), `ci` values in `[e(i-1), ei)`, and the last count values at or above
    `en` (and +inf), so `np.searchsorted(edges, x, side="right")` gives any value's bin and the
    counts sum to the non-null, non-NaN rows. String and boolean columns: `frequent` holds the
    20 most frequent values (ties by value) and `frequent_share` the share of the non-null values
    they cover. Datetime columns: `earliest`, `latest` and `quantiles` are ISO strings.
    """

    name: str
    dtype: str
    kind: str  # numeric | boolean | string | datetime | other
    missing: int
    n_unique: int
    integral: bool = False  # numeric and every value is a whole number
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    top_values: dict[str, int] = field(default_factory=dict)  # all counts when <= 50 distinct
    quantiles: dict[str, Any] = field(default_factory=dict)
    histogram: dict[str, list[Any]] = field(default_factory=dict)
    zeros: int | None = None
    negatives: int | None = None
    infinite: int | None = None
    nans: int | None = None
    frequent: dict[str, int] = field(default_factory=dict)
    frequent_share: float | None = None
    length_mean: float | None = None
    length_min: int | None = None
    length_max: int | None = None
    earliest: str | None = None
    latest: str | None = None

    def missing_rate(self, rows: int) -> float:
        """Share of rows where this column is null."""
        return self.missing / rows if rows else 0.0


@dataclass(frozen=True)
class Matrix:
    """A symmetric matrix of a pair-wise statistic; None where it is undefined."""

    columns: list[str]
    values: list[list[float | None]]
    left_out: list[str] = field(default_factory=list)  # eligible columns past the cap


@dataclass(frozen=True)
class TargetAssociation:
    """Mutual information (nats) of each feature with the target, highest first."""

    target: str
    task: str  # classification | regression: which scikit-learn estimator was used
    rows: int  # sampled rows with a target value that the estimates used
    mutual_information: dict[str, float]
    left_out: list[str] = field(default_factory=list)  # features past the first _MI_FEATURES


@dataclass(frozen=True)
class Profile:
    """Summary of a whole frame.

    `pairwise_rows` is the size of the seeded row sample behind `pearson`, `spearman` and
    `cramers_v` (all rows when the frame is small); `duplicates` counts rows equal to an
    earlier row. `target` is None without a usable target: none given, no such column, all
    null or one value, a datetime or other type, more than 50 classes, or under 10 rows.
    """

    rows: int
    columns: list[ColumnProfile]
    duplicates: int | None = None
    pairwise_rows: int = 0
    pearson: Matrix | None = None
    spearman: Matrix | None = None
    cramers_v: Matrix | None = None
    target: TargetAssociation | None = None

    def column(self, name: str) -> ColumnProfile:
        """The profile of one column, by name."""
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> list[str]:
        """The column names, in file order."""
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (no NaN or infinity anywhere)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """Rebuild from `to_dict` output; profiles cached before a field existed get its default."""
        def matrix(key: str) -> Matrix | None:
            return Matrix(**data[key]) if data.get(key) else None

        return cls(rows=data["rows"], columns=[ColumnProfile(**c) for c in data["columns"]],
                   duplicates=data.get("duplicates"), pairwise_rows=data.get("pairwise_rows", 0),
                   pearson=matrix("pearson"), spearman=matrix("spearman"),
                   cramers_v=matrix("cramers_v"),
                   target=TargetAssociation(**data["target"]) if data.get("target") else None)


def _kind(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype in (pl.String, pl.Categorical, pl.Enum) or isinstance(dtype, pl.Categorical | pl.Enum):
        return "string"
    if dtype.is_temporal() and dtype != pl.Duration and dtype != pl.Time:
        return "datetime"
    return "other"


def profile(frame: pl.DataFrame, target: str | None = None, seed: int = 0) -> Profile:
    """Compute a `Profile` of `frame`; `target` adds its mutual information with each feature.

    Deterministic for a given `seed`, which draws the row sample of the pair-wise statistics
    and seeds scikit-learn's mutual-information estimates.
    """
    schema = frame.schema  # built afresh on each access: once per column would be quadratic
    kinds = {name: _kind(dtype) for name, dtype in schema.items()}
    stats = _aggregates(frame, kinds)
    sorted_stats = _sorted_stats(frame, [n for n, k in kinds.items() if k in ("numeric", "datetime")])
    columns = []
    for name, kind in kinds.items():
        fields = {**stats[name], **sorted_stats.get(name, {})}
        # Decimals were sorted as floats: their counts are keyed by their own text, as before.
        exact = kind == "other" or (kind == "numeric" and schema[name] not in _NUMPY_NUMBERS)
        if exact and fields["n_unique"] <= _TOP_VALUES:
            counts = frame.get_column(name).drop_nulls().value_counts()
            fields["top_values"] = _ordered_counts(counts.rows())
        columns.append(ColumnProfile(name=name, dtype=str(schema[name]), kind=kind, **fields))
    sample = _sample(frame, _PAIRWISE_ROWS, seed)
    by_name = {c.name: c for c in columns}
    pearson, spearman = _correlations(sample, [c for c in columns if c.kind == "numeric"])
    return Profile(
        rows=frame.height, columns=columns, duplicates=_duplicates(frame),
        pairwise_rows=sample.height, pearson=pearson, spearman=spearman,
        cramers_v=_cramers_v(sample, [c for c in columns if c.kind in ("string", "boolean")
                                      and 2 <= c.n_unique <= _TOP_VALUES]),
        target=_target_association(sample, by_name, target, seed),
    )


def _aggregates(frame: pl.DataFrame, kinds: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every per-column aggregate that needs no sort, in one `select` (Polars runs it in parallel)."""
    exprs: list[pl.Expr] = []
    for name, kind in kinds.items():
        col = pl.col(name)
        exprs.append(col.null_count().alias(f"{name}\0missing"))
        if kind == "other":
            exprs.append((col.n_unique() - col.null_count().clip(0, 1)).alias(f"{name}\0unique"))
        if kind == "numeric":
            as_float = col.cast(pl.Float64)
            exprs += [as_float.min().alias(f"{name}\0min"), as_float.max().alias(f"{name}\0max"),
                      as_float.mean().alias(f"{name}\0mean"), as_float.std().alias(f"{name}\0std")]
        elif kind in ("string", "boolean"):
            # One hash pass: the distinct count is the number of value counts.
            counts = col.drop_nulls().value_counts(name=_COUNT)
            top = counts.top_k_by([counts.struct.field(_COUNT), counts.struct.field(name).cast(pl.String)],
                                  k=_TOP_VALUES, reverse=[False, True])
            exprs += [top.implode().alias(f"{name}\0counts"), counts.len().alias(f"{name}\0unique")]
        if kind == "string":
            length = col.cast(pl.String).str.len_chars()
            exprs += [length.mean().alias(f"{name}\0lmean"), length.min().alias(f"{name}\0lmin"),
                      length.max().alias(f"{name}\0lmax")]
        elif kind == "datetime":
            exprs += [col.min().alias(f"{name}\0first"), col.max().alias(f"{name}\0last")]
    # Eager: the lazy engine ran these value counts several times slower (Polars 2.1).
    row = frame.select(exprs).row(0, named=True) if exprs else {}
    out: dict[str, dict[str, Any]] = {}
    for name, kind in kinds.items():
        missing = int(row[f"{name}\0missing"])
        fields: dict[str, Any] = {"missing": missing}
        if f"{name}\0unique" in row:
            fields["n_unique"] = int(row[f"{name}\0unique"])
        if kind == "numeric":
            fields.update({k: _float(row[f"{name}\0{k}"]) for k in ("min", "max", "mean", "std")})
        elif kind in ("string", "boolean"):
            counts = _ordered_counts((v[name], v[_COUNT]) for v in row[f"{name}\0counts"])
            present = frame.height - missing
            fields["frequent"] = dict(list(counts.items())[:_FREQUENT])
            fields["frequent_share"] = sum(fields["frequent"].values()) / present if present else None
            if fields["n_unique"] <= _TOP_VALUES:
                fields["top_values"] = counts
        if kind == "string":
            fields.update(length_mean=_float(row[f"{name}\0lmean"]), length_min=row[f"{name}\0lmin"],
                          length_max=row[f"{name}\0lmax"])
        elif kind == "datetime":
            fields.update(earliest=_iso(row[f"{name}\0first"]), latest=_iso(row[f"{name}\0last"]))
        out[name] = fields
    return out


def _ordered_counts(pairs: Any) -> dict[str, int]:
    """Value counts as {str(value): count}, most frequent first, ties in value order."""
    items = sorted(((v, int(c)) for v, c in pairs), key=lambda vc: (-vc[1], str(vc[0])))
    return {str(v): c for v, c in items}


def _sorted_stats(frame: pl.DataFrame, names: list[str]) -> dict[str, dict[str, Any]]:
    """Quantiles, histogram, distinct and sign counts of numeric and datetime columns.

    One sort per column gives all of them: quantiles are read off by position, bin counts and
    sign counts by binary search, distinct values by counting changes. numpy's SIMD sort is about
    three times faster than Polars' here and releases the GIL, so a thread per core sorts one
    column at a time each: only a few sorted copies exist at once.
    """
    schema = frame.schema

    def stats(name: str) -> dict[str, Any]:
        column, dtype = frame.get_column(name).drop_nulls(), schema[name]
        if dtype.is_temporal():
            return _datetime_stats(np.sort(column.to_physical().to_numpy()), dtype)
        if dtype not in _NUMPY_NUMBERS:  # decimals and 128-bit integers: numpy has no such type
            column = column.cast(pl.Float64)
        return _numeric_stats(np.sort(column.to_numpy()))

    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        return dict(zip(names, pool.map(stats, names), strict=True))


def _workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores))


def _numeric_stats(values: np.ndarray) -> dict[str, Any]:
    """Statistics of one sorted numeric column without nulls (NaN sorts last)."""
    n = len(values)
    is_float = values.dtype.kind == "f"
    not_nan = int(np.searchsorted(values, np.inf, side="right")) if is_float else n
    low_inf = int(np.searchsorted(values, -np.inf, side="right")) if is_float else 0
    high_inf = not_nan - int(np.searchsorted(values, np.inf, side="left")) if is_float else 0
    ordered, finite = values[:not_nan], values[low_inf:not_nan - high_inf]
    negatives = int(np.searchsorted(ordered, 0, side="left"))
    changes = ordered[1:] != ordered[:-1]
    n_unique = int(np.count_nonzero(changes)) + (not_nan > 0) + (not_nan < n)
    # NaN is whole-number-compatible here as it was in Polars' `x == x.round()`. A prefix is
    # checked first: continuous values fail it at once, without rounding a copy of the column.
    integral = n > 0 and (not is_float or all(np.array_equal(part, np.round(part))
                                              for part in (finite[:1000], finite)))
    stats: dict[str, Any] = {
        "n_unique": n_unique, "integral": integral, "zeros": int(np.searchsorted(ordered, 0, side="right"))
        - negatives, "negatives": negatives, "infinite": low_inf + high_inf, "nans": n - not_nan}
    if n_unique <= _TOP_VALUES and n:
        starts = np.flatnonzero(np.r_[not_nan > 0, changes])
        pairs = list(zip(ordered[starts].tolist(), np.diff(np.r_[starts, not_nan]).tolist(), strict=True))
        stats["top_values"] = _ordered_counts(pairs + ([(float("nan"), n - not_nan)] if n > not_nan else []))
    if len(finite):
        stats["quantiles"] = {k: _float(v) for k, v in zip(
            _QUANTILES, _positional_quantiles(finite, list(_QUANTILES.values())), strict=True)}
        edges = _edges(finite, integral)
        cuts = np.searchsorted(ordered, edges, side="left")
        stats["histogram"] = {"edges": edges.tolist(),
                              "counts": np.diff(np.r_[0, cuts, not_nan]).astype(int).tolist()}
    return stats


def _positional_quantiles(sorted_values: np.ndarray, qs: list[float]) -> np.ndarray:
    """Linear-interpolation quantiles of sorted values (numpy's default method)."""
    position = np.asarray(qs) * (len(sorted_values) - 1)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, len(sorted_values) - 1)
    low, high = sorted_values[below].astype(float), sorted_values[above].astype(float)
    return low + (high - low) * (position - below)


def _edges(finite: np.ndarray, integral: bool) -> np.ndarray:
    """Histogram edges: about 20 bins over the 0.5 % .. 99.5 % range of the finite values.

    Whole numbers get bins centred on whole numbers, so no bin holds more integers than another.
    """
    lo, hi = _positional_quantiles(finite, list(_BIN_RANGE))
    if hi <= lo:  # most values equal: spread the bins over the full range instead
        lo, hi = float(finite[0]), float(finite[-1])
    if integral:
        lo, hi = np.floor(lo), np.ceil(hi)
        width = max(1.0, np.ceil((hi - lo + 1) / _BINS))
        return lo - 0.5 + width * np.arange(int(np.ceil((hi - lo + 1) / width)) + 1)
    if hi <= lo:  # a constant column: one bin around its value
        pad = max(0.5, abs(lo) * 1e-6)
        return np.array([lo - pad, lo + pad])
    return np.linspace(lo, hi, _BINS + 1)


def _datetime_stats(values: np.ndarray, dtype: pl.DataType) -> dict[str, Any]:
    """Distinct count and ISO-string quantiles of one sorted datetime column (physical ints)."""
    stats: dict[str, Any] = {"n_unique": int(np.count_nonzero(values[1:] != values[:-1])) + (len(values) > 0)}
    if len(values):
        points = np.round(_positional_quantiles(values, list(_QUANTILES.values()))).astype(np.int64)
        as_dates = pl.Series(points).cast(pl.Int32 if dtype == pl.Date else pl.Int64).cast(dtype)
        stats["quantiles"] = {k: _iso(v) for k, v in zip(_QUANTILES, as_dates.to_list(), strict=True)}
    return stats


def _duplicates(frame: pl.DataFrame) -> int:
    """Rows equal to an earlier row: a row hash finds candidates, an exact check counts them."""
    if not frame.width or not frame.height:
        return 0
    hashes = frame.hash_rows(seed=0)
    if hashes.n_unique() == frame.height:
        return 0
    candidates = frame.filter(hashes.is_duplicated())
    return candidates.height - candidates.n_unique()


def _sample(frame: pl.DataFrame, rows: int, seed: int) -> pl.DataFrame:
    """A seeded random sample of rows (all of them when the frame is small), in frame order."""
    if frame.height <= rows:
        return frame
    return frame[np.sort(np.random.default_rng(seed).choice(frame.height, size=rows, replace=False))]


def _finite_matrix(sample: pl.DataFrame, names: list[str]) -> np.ndarray:
    """The sample's columns as floats (one contiguous column each), NaN where missing or infinite."""
    exprs = []
    for name in names:
        col = pl.col(name).to_physical().cast(pl.Float64)
        exprs.append(pl.when(col.is_finite()).then(col).alias(name))
    matrix = sample.select(exprs).to_numpy().reshape(sample.height, len(names))
    return np.asfortranarray(matrix, dtype=float)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) within each column, NaN kept as NaN.

    numpy's SIMD argsort makes this about twice as fast as Polars' `rank` on these columns.
    """
    out = np.full_like(x, np.nan, order="F")
    for j in range(x.shape[1]):
        present = np.flatnonzero(~np.isnan(x[:, j]))
        values = x[present, j]
        order = np.argsort(values)
        ordered = values[order]
        starts = np.flatnonzero(np.r_[len(ordered) > 0, ordered[1:] != ordered[:-1]])
        ends = np.r_[starts[1:], len(ordered)]
        ranks = np.empty(len(values))
        ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
        out[present, j] = ranks
    return out


def _pairwise_pearson(x: np.ndarray) -> list[list[float | None]]:
    """Pearson correlation of every pair of columns over the rows where both are present."""
    present = ~np.isnan(x)
    mask = present.astype(float)
    filled = np.where(present, x, 0.0)
    count = present.sum(axis=0)
    means = np.divide(filled.sum(axis=0), count, out=np.zeros(x.shape[1]), where=count > 0)
    centred = np.where(present, x - means, 0.0)
    n = mask.T @ mask
    sums = centred.T @ mask  # [i, j]: sum of column i over the rows where column j is present too
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (centred**2).T @ mask - sums**2 / n
        r = np.clip((centred.T @ centred - sums * sums.T / n) / np.sqrt(var * var.T), -1.0, 1.0)
    # Centring a constant column leaves rounding noise, not zeros: below this it has no spread.
    noise = n * (64 * np.finfo(float).eps * np.abs(filled).max(axis=0, initial=0.0))[:, None] ** 2
    flat = ~(var > noise)
    r[(n < 2) | flat | flat.T] = np.nan
    return [[_float(v) for v in row] for row in r]


def _correlations(sample: pl.DataFrame, numeric: list[ColumnProfile]) -> tuple[Matrix | None, ...]:
    """Pearson and Spearman matrices over the sample's numeric columns (pair-wise complete).

    Spearman ranks each column over its own present values, then takes Pearson of the ranks:
    exact without missing values, a close approximation with them.
    """
    names = [c.name for c in numeric]
    if not names:
        return None, None
    kept, left_out = names[:_MAX_NUMERIC_PAIRS], names[_MAX_NUMERIC_PAIRS:]
    x = _finite_matrix(sample, kept)
    return tuple(Matrix(columns=kept, values=_pairwise_pearson(m), left_out=left_out)
                 for m in (x, _ranks(x)))


def _codes(sample: pl.DataFrame, names: list[str]) -> np.ndarray:
    """Dense integer codes per column, 0 for null (values are numbered 1, 2, ... in value order)."""
    exprs = [pl.col(n).cast(pl.String).rank("dense").fill_null(0).cast(pl.Int64).alias(n) for n in names]
    return sample.select(exprs).to_numpy().reshape(sample.height, len(names))


def _cramers_v(sample: pl.DataFrame, categorical: list[ColumnProfile]) -> Matrix | None:
    """Cramér's V of every pair of low-cardinality categorical columns, over rows where both are present."""
    names = [c.name for c in categorical]
    if len(names) < 2:
        return None
    kept, left_out = names[:_MAX_CATEGORICAL_PAIRS], names[_MAX_CATEGORICAL_PAIRS:]
    codes = _codes(sample, kept)
    values: list[list[float | None]] = [[None] * len(kept) for _ in kept]
    for i in range(len(kept)):
        for j in range(i, len(kept)):
            a, b = codes[:, i], codes[:, j]
            both = (a > 0) & (b > 0)
            values[i][j] = values[j][i] = _cramer(a[both], b[both])
    return Matrix(columns=kept, values=values, left_out=left_out)


def _cramer(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cramér's V (without bias correction, as scipy's `association`) of two code arrays."""
    if not len(a):
        return None
    width = int(b.max()) + 1
    table = np.bincount(a * width + b, minlength=(int(a.max()) + 1) * width).reshape(-1, width)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0].astype(float)
    k = min(table.shape) - 1
    if k < 1:
        return None
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return _float(min(1.0, np.sqrt(chi2 / (table.sum() * k))))


def _target_association(sample: pl.DataFrame, columns: dict[str, ColumnProfile], target: str | None,
                        seed: int) -> TargetAssociation | None:
    """Mutual information of the first 500 features with the target, on up to 5,000 sampled rows.

    scikit-learn's k-NN estimators with `random_state=seed`. Strings, booleans and whole numbers
    with few values are discrete features: integer codes, null a code of its own, and a string
    column's values past its 20 most frequent one code "other" (each level adds upward bias to a
    plug-in estimate, and to the k-NN one's cost for a numeric target). Continuous features use
    the rows where they are finite.
    """
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    spec = columns.get(target or "")
    if spec is None or spec.kind not in ("numeric", "string", "boolean") or spec.n_unique < 2:
        return None
    task = "regression" if spec.kind == "numeric" and not (
        spec.integral and spec.n_unique <= _MAX_CLASSES) else "classification"
    if task == "classification" and spec.n_unique > _TOP_VALUES:
        return None  # too many classes for a class label (validation says so); each costs a k-NN fit
    y_col = pl.col(spec.name)
    usable = y_col.cast(pl.Float64).is_finite() if task == "regression" else y_col.is_not_null()
    rows = _sample(sample.filter(usable), _MI_ROWS, seed)
    if rows.height < 10:
        return None
    if task == "regression":
        y = rows.get_column(spec.name).cast(pl.Float64).to_numpy()
    else:
        y = _codes(rows, [spec.name])[:, 0]
    features = [c for name, c in columns.items() if name != spec.name
                and c.kind in ("numeric", "string", "boolean", "datetime")]
    features, left_out = features[:_MI_FEATURES], [c.name for c in features[_MI_FEATURES:]]
    # The estimators spend their time in scikit-learn's tree code, which releases the GIL.
    estimate = mutual_info_regression if task == "regression" else mutual_info_classif
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        # One column's frame each: a `select` on the whole frame costs time in its width.
        scores = dict(zip([c.name for c in features], pool.map(
            lambda c: _mutual_information(rows.get_column(c.name).to_frame(), c, y, estimate, seed),
            features), strict=True))
    kept = {name: score for name, score in scores.items() if score is not None}
    return TargetAssociation(target=spec.name, task=task, rows=rows.height,
                             mutual_information=dict(sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))),
                             left_out=left_out)


def _mutual_information(rows: pl.DataFrame, column: ColumnProfile, y: np.ndarray,
                        estimate: Callable[..., np.ndarray], seed: int) -> float | None:
    """One feature's mutual information with `y` (nats), or None with fewer than 10 usable rows."""
    discrete = column.kind in ("string", "boolean") or (column.integral and column.n_unique <= _MAX_CLASSES)
    if discrete:
        col = pl.col(column.name).cast(pl.String)
        if column.kind == "string" and column.n_unique > _FREQUENT:
            col = pl.when(col.is_in(list(column.frequent))).then(col).otherwise(pl.lit("\0other"))
        x = rows.select(col.rank("dense").fill_null(0).cast(pl.Float64)).to_numpy()
        keep = np.ones(rows.height, dtype=bool)
    else:
        x = _finite_matrix(rows, [column.name])
        keep = ~np.isnan(x[:, 0])
    if keep.sum() < 10:
        return None
    if estimate.__name__ == "mutual_info_classif" and np.unique(y[keep], return_counts=True)[1].max() < 2:
        return None  # every class once among these rows: the k-NN estimate has no neighbours to use
    score = estimate(x[keep], y[keep], discrete_features=[discrete], random_state=seed)[0]
    return round(max(0.0, float(score)), 6)


def _plain(value: Any) -> Any:
    """`dataclasses.asdict` without its deep copy of every leaf: 10,000 columns took seconds."""
    if isinstance(value, ColumnProfile | Matrix | TargetAssociation | Profile):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else None


def _float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None
