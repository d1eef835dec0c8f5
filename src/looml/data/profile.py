"""Profile: per-column types, missing rates, cardinality and summary statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

__all__ = ["ColumnProfile", "Profile", "profile"]

_TOP_VALUES = 50  # value counts are kept for columns with at most this many distinct values


@dataclass(frozen=True)
class ColumnProfile:
    """Summary of one column."""

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
    top_values: dict[str, int] = field(default_factory=dict)

    def missing_rate(self, rows: int) -> float:
        """Share of rows where this column is null."""
        return self.missing / rows if rows else 0.0


@dataclass(frozen=True)
class Profile:
    """Summary of a whole frame."""

    rows: int
    columns: list[ColumnProfile]

    def column(self, name: str) -> ColumnProfile:
        """The profile of one column, by name."""
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> list[str]:
        """The column names, in file order."""
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {"rows": self.rows, "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """Rebuild from `to_dict` output."""
        return cls(rows=data["rows"], columns=[ColumnProfile(**c) for c in data["columns"]])


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
    """Compute a `Profile` of `frame` in one pass of Polars expressions per statistic group."""
    kinds = {name: _kind(dtype) for name, dtype in frame.schema.items()}
    exprs: list[pl.Expr] = []
    for name, kind in kinds.items():
        col = pl.col(name)
        exprs += [col.null_count().alias(f"{name}\0missing"), col.n_unique().alias(f"{name}\0unique")]
        if kind == "numeric":
            finite = col.cast(pl.Float64)
            exprs += [
                finite.min().alias(f"{name}\0min"), finite.max().alias(f"{name}\0max"),
                finite.mean().alias(f"{name}\0mean"), finite.std().alias(f"{name}\0std"),
                (finite.drop_nulls() == finite.drop_nulls().round()).all().alias(f"{name}\0integral"),
            ]
    stats = frame.select(exprs).row(0, named=True) if exprs else {}
    columns = []
    for name, kind in kinds.items():
        missing = int(stats[f"{name}\0missing"])
        # n_unique counts null as a value; the profile counts distinct non-null values.
        n_unique = int(stats[f"{name}\0unique"]) - (1 if missing else 0)
        top: dict[str, int] = {}
        if n_unique <= _TOP_VALUES and kind != "datetime":
            counts = frame.get_column(name).drop_nulls().value_counts(sort=True)
            top = {str(v): int(c) for v, c in counts.iter_rows()}
        numeric = {}
        if kind == "numeric":
            numeric = {k: _float(stats[f"{name}\0{k}"]) for k in ("min", "max", "mean", "std")}
            numeric["integral"] = bool(stats[f"{name}\0integral"]) if n_unique else False
        columns.append(ColumnProfile(name=name, dtype=str(frame.schema[name]), kind=kind,
                                     missing=missing, n_unique=n_unique, top_values=top, **numeric))
    return Profile(rows=frame.height, columns=columns)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None
