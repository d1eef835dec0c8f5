"""The drift reference: the training split summarised once, at training time, and logged with the model.

    summarise(train, features, predictions=..., importance=...) -> Reference
    reference_for_model(pipeline, train, X_holdout, y_holdout, features, task, seed) -> Reference
    load_reference(tracking_uri, model_name, version=None) -> Reference   (the champion by default)

What is kept per column (never raw rows, so the JSON stays small whatever the data's size):

- numbers (and a text column's length in characters, and dates as epoch microseconds): the
  count of rows and of missing values (null, NaN or infinite), mean, std, min, max, the number
  of distinct values, and the reference's distribution function at up to 1,009 points: every
  distinct value when there are at most 1,000, else the quantiles at levels 0, 0.001, ..., 1
  (and at 1e-5, 3e-5, 1e-4, 3e-4 from either end, where heavy tails make the widest bins).
  The distribution function is exact at those points, so a current sample is compared with
  the whole training split, not with a sample of it.
- categories: every value's count (up to 10,000 distinct values; above, the 100 most frequent
  and the count of the rest), and the number of values seen once, which estimates the share of
  a new sample that training never saw (Good-Turing).
- the model's outputs (`prediction`, `proba_<class>`) on the holdout split: out-of-sample, as in
  production. On the training split a model is more confident than it will ever be on new
  rows, so live predictions would look drifted against it.
- each feature's permutation importance on up to 1,000 holdout rows, for weighting.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

__all__ = ["REFERENCE_ARTIFACT", "ColumnSummary", "Reference", "column_values", "load_reference",
           "model_outputs", "reference_for_model", "summarise"]

REFERENCE_ARTIFACT = "monitor/reference.json"
GRID = 1000  # distribution-function points per numeric column (quantile levels i / GRID)
MAX_CATEGORIES = 10_000  # categories counted one by one; above, only the most frequent
TOP_KEPT = 100  # categories kept when a column has more than MAX_CATEGORIES
# Quantile levels: every 0.001, and finer in the tails, where a heavy tail's bins are widest.
_TAILS = np.array([1e-5, 3e-5, 1e-4, 3e-4])
_LEVELS = np.unique(np.concatenate([np.linspace(0.0, 1.0, GRID + 1), _TAILS, 1.0 - _TAILS]))
_IMPORTANCE_ROWS = 1000
_IMPORTANCE_REPEATS = 3
_IMPORTANCE_BATCH_ROWS = 100_000  # rows per predict call when scoring shuffled copies


@dataclass(frozen=True)
class ColumnSummary:
    """One column of the reference (see the module docstring for what each kind keeps)."""

    kind: str  # numeric | categorical | text | datetime
    rows: int
    missing: int
    distinct: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    edges: list[float] = field(default_factory=list)  # ascending points of the distribution function
    cdf: list[float] = field(default_factory=list)  # share of non-missing values <= each edge
    counts: dict[str, int] = field(default_factory=dict)  # category -> rows
    other: int = 0  # non-missing rows whose category is not in `counts`
    singletons: int = 0  # categories seen exactly once

    @property
    def present(self) -> int:
        """Non-missing values."""
        return self.rows - self.missing

    @property
    def numeric(self) -> bool:
        """Whether the column is summarised as numbers (numeric, text length, dates)."""
        return self.kind != "categorical"


@dataclass(frozen=True)
class Reference:
    """The training-time summary that drift is measured against."""

    rows: int
    columns: dict[str, ColumnSummary]
    predictions: dict[str, ColumnSummary] = field(default_factory=dict)
    importance: dict[str, float] = field(default_factory=dict)  # feature -> share, summing to 1
    origin: str = ""
    model_version: str = ""  # set when loaded from the registry

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)

    def to_json(self) -> str:
        """The artifact's text."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        """Read back `to_dict()`."""
        return cls(rows=data["rows"], columns={k: ColumnSummary(**v) for k, v in data["columns"].items()},
                   predictions={k: ColumnSummary(**v) for k, v in data.get("predictions", {}).items()},
                   importance=data.get("importance", {}), origin=data.get("origin", ""),
                   model_version=data.get("model_version", ""))


def column_values(series: pl.Series, kind: str) -> pl.Series:
    """A column as drift compares it: numbers as Float64 (non-finite -> null), categories as text
    (True -> "true", 3 -> "3", as the prediction log writes them), text as its length, dates as
    epoch microseconds. The reference and the current data both go through here."""
    if kind == "categorical":
        return series.cast(pl.String)
    if kind == "text":
        return series.cast(pl.String).str.len_chars().cast(pl.Float64)
    if kind == "datetime":  # the instant: an aware time and its naive UTC log entry agree
        if series.dtype == pl.String:
            series = series.str.to_datetime(strict=False, time_unit="us")
        if not isinstance(series.dtype, pl.Datetime):
            series = series.cast(pl.Datetime("us"), strict=False)
        return series.dt.epoch("us").cast(pl.Float64)
    numbers = series.cast(pl.Float64, strict=False)
    return numbers.set(numbers.is_infinite(), None).fill_nan(None)


def summarise(train: pl.DataFrame, features: dict[str, str], *, predictions: pl.DataFrame | None = None,
              importance: dict[str, float] | None = None, origin: str = "") -> Reference:
    """Summarise the training rows' `features` (name -> numeric | categorical | text | datetime)
    and, if given, the model's holdout outputs (`prediction`, `proba_<class>` columns)."""
    columns = {name: _summary(column_values(train.get_column(name), kind), kind)
               for name, kind in features.items()}
    outputs = {}
    if predictions is not None:
        outputs = {name: _summary(column_values(predictions.get_column(name), kind), kind)
                   for name, kind in _output_kinds(predictions).items()}
    return Reference(rows=train.height, columns=columns, predictions=outputs, importance=importance or {},
                     origin=origin)


def _output_kinds(outputs: pl.DataFrame) -> dict[str, str]:
    return {name: "categorical" if outputs.schema[name] == pl.String else "numeric"
            for name in outputs.columns}


def _summary(values: pl.Series, kind: str) -> ColumnSummary:
    """Counts and moments; the distribution function at every distinct value (at most GRID of
    them) or at the quantile levels."""
    if kind == "categorical":
        return _categories(values)
    rows = len(values)
    present = np.sort(values.drop_nulls().to_numpy())
    if not len(present):
        return ColumnSummary(kind=kind, rows=rows, missing=rows, distinct=0)
    distinct = int(np.count_nonzero(np.diff(present))) + 1
    if distinct <= GRID:
        edges = np.unique(present)
    else:  # quantiles to 10 significant digits (a smaller file); the function is exact at them
        edges = np.unique([float(f"{q:.10g}") for q in np.quantile(present, _LEVELS, method="inverted_cdf")])
    cdf = np.round(np.searchsorted(present, edges, side="right") / len(present), 9)
    return ColumnSummary(kind=kind, rows=rows, missing=rows - len(present), distinct=distinct,
                         mean=float(present.mean()), std=float(present.std()), min=float(present[0]),
                         max=float(present[-1]), edges=edges.tolist(), cdf=cdf.tolist())


def _categories(values: pl.Series) -> ColumnSummary:
    rows = len(values)
    counts = values.drop_nulls().rename("value").value_counts(name="rows")
    counts = counts.sort(["rows", "value"], descending=[True, False])
    distinct = counts.height
    singletons = int((counts.get_column("rows") == 1).sum())
    kept = counts if distinct <= MAX_CATEGORIES else counts.head(TOP_KEPT)
    present = int(counts.get_column("rows").sum())
    table = dict(zip(kept.get_column("value").to_list(), kept.get_column("rows").to_list(), strict=True))
    return ColumnSummary(kind="categorical", rows=rows, missing=rows - present, distinct=distinct,
                         counts=table, other=present - sum(table.values()), singletons=singletons)


def model_outputs(pipeline: Any, X: Any, task: str) -> pl.DataFrame:
    """The model's outputs on `X` as the prediction log names them: `prediction` (the class as
    text, or the value) and, for classifiers, `proba_<class>` (the positive class only when binary)."""
    from looml.store.predictions import label_text

    predicted = pipeline.predict(X)
    if task == "regression":
        return pl.DataFrame({"prediction": np.asarray(predicted, dtype=np.float64)})
    columns: dict[str, pl.Series] = {"prediction": pl.Series([label_text(v) for v in predicted],
                                                             dtype=pl.String)}
    if hasattr(pipeline, "predict_proba"):
        proba = np.asarray(pipeline.predict_proba(X), dtype=np.float64)
        classes = list(pipeline.classes_)
        for j, cls in enumerate(classes):
            if len(classes) == 2 and j == 0:
                continue
            columns[f"proba_{label_text(cls)}"] = pl.Series(proba[:, j])
    return pl.DataFrame(columns)


def _permutation_importance(pipeline: Any, X: Any, y: np.ndarray, seed: int) -> dict[str, float]:
    """Each feature's share of the permutation importance on up to 1,000 rows (negative -> 0);
    empty when no feature matters (then every column weighs the same).

    The model's own `score` (accuracy or R²) drops when one column's values are shuffled. Every
    shuffled copy of the rows is scored in a few large `predict` calls rather than one call per
    column and repeat: on wide tables the per-call cost of a pipeline, not the rows, was most
    of the time (130 columns: 390 calls).
    """
    import pandas as pd

    if len(X) > _IMPORTANCE_ROWS:
        pick = np.random.default_rng(seed).choice(len(X), _IMPORTANCE_ROWS, replace=False)
        X, y = X.iloc[pick], y[pick]
    X = X.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    copies = [(column, rng.permutation(len(X))) for _ in range(_IMPORTANCE_REPEATS) for column in X.columns]
    per_call = max(1, _IMPORTANCE_BATCH_ROWS // len(X))
    drops: dict[str, list[float]] = {str(c): [] for c in X.columns}
    score = _scorer(pipeline)
    baseline = score(y, np.asarray(pipeline.predict(X)))
    for start in range(0, len(copies), per_call):
        batch = copies[start:start + per_call]
        stacked = pd.concat([X.assign(**{column: X[column].to_numpy()[order]}) for column, order in batch],
                            ignore_index=True)
        predicted = np.asarray(pipeline.predict(stacked))
        for k, (column, _) in enumerate(batch):
            rows = predicted[k * len(X):(k + 1) * len(X)]
            drops[str(column)].append(baseline - score(y, rows))
    scores = np.clip(np.nan_to_num([np.mean(drops[str(c)]) for c in X.columns]), 0.0, None)
    total = float(scores.sum())
    if total <= 0.0:
        return {}
    return {str(name): round(float(s) / total, 6) for name, s in zip(X.columns, scores, strict=True)}


def _scorer(pipeline: Any) -> Any:
    """What the estimator's `score` computes from predictions: accuracy, or R² for regressors."""
    from sklearn.base import is_regressor
    from sklearn.metrics import accuracy_score, r2_score

    return r2_score if is_regressor(pipeline) else accuracy_score


def reference_for_model(pipeline: Any, train: pl.DataFrame, X_holdout: Any, y_holdout: np.ndarray,
                        features: dict[str, str], task: str, seed: int) -> Reference:
    """The reference of a trained model: its training split's features, its outputs on the
    holdout split (a pandas frame `X_holdout`) and the features' permutation importance there."""
    outputs = model_outputs(pipeline, X_holdout, task)
    importance = _permutation_importance(pipeline, X_holdout, y_holdout, seed) if len(X_holdout) else {}
    return summarise(train, features, predictions=outputs, importance=importance,
                     origin=f"features: training split ({train.height} rows); predictions and importance: "
                            f"holdout split ({len(X_holdout)} rows)")


def load_reference(tracking_uri: str, model_name: str, version: str | None = None) -> Reference | None:
    """The reference logged with a registered model version (default: the champion), or None when
    the version was registered before references were logged. Raises `RegistryError` when there
    is no such version."""
    from looml.store.versions import model_documents

    found, documents = model_documents(tracking_uri, model_name, version, paths=(REFERENCE_ARTIFACT,))
    if REFERENCE_ARTIFACT not in documents:
        return None
    return Reference.from_dict({**json.loads(documents[REFERENCE_ARTIFACT]), "model_version": found})
