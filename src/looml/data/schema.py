"""The data schema: what a good batch looks like, inferred once and then the user's to edit.

On the first run the schema is inferred from the data (each column's type, whether it may be
missing and how often it was, its value range, its category domain and cardinality) and
written as YAML beside looml.yaml. From then on it is read, not inferred: the user pins,
relaxes or extends it, and every batch (training data, a file given to `looml validate
--data`, served traffic) is checked against it. It is logged with each model version.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from looml.data.profile import Profile
from looml.data.validate import ValidationReport
from looml.errors import DataError, Problem, did_you_mean
from looml.spec import yaml_lines

__all__ = ["ColumnSchema", "Schema", "infer_schema", "load_schema", "schema_yaml"]

_MAX_DOMAIN = 50  # categorical columns with at most this many values get a category domain
Role = Literal["feature", "target", "id", "ignored"]
ColumnType = Literal["numeric", "categorical", "datetime", "boolean", "other"]


class ColumnSchema(BaseModel):
    """What one column may hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ColumnType
    role: Role = "feature"
    required: bool = Field(True, description="A batch without this column is an anomaly.")
    nullable: bool = Field(True, description="false: any missing value is an anomaly.")
    missing_rate: float = Field(0.0, ge=0.0, le=1.0, description="The reference share of missing values.")
    min: float | None = Field(None, description="Lowest allowed value (numeric columns).")
    max: float | None = Field(None, description="Highest allowed value (numeric columns).")
    categories: list[str] | None = Field(None, description="The allowed values; none: any value.")
    cardinality: int | None = Field(None, ge=0, description="Distinct values seen at inference.")


class Schema(BaseModel):
    """Every column a batch should have, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    target: str
    columns: dict[str, ColumnSchema]

    def digest(self) -> str:
        """A hash of the content (not the file's bytes: comments and layout do not count)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def infer_schema(frame: pl.DataFrame, profile: Profile, report: ValidationReport,
                 id_columns: list[str], range_margin: float) -> Schema:
    """The schema of `frame` as validation understood it: roles, types, ranges and domains.

    Numeric ranges are widened by `range_margin` of their span on each side, so that new
    data a little beyond the training range is not an anomaly but a corrupt value is.
    """
    domains = _domains(frame, [c.name for c in profile.columns
                               if c.kind in ("string", "boolean") and 0 < c.n_unique <= _MAX_DOMAIN])
    columns: dict[str, ColumnSchema] = {}
    for col in profile.columns:
        name = col.name
        if name == report.target:
            role: Role = "target"
        elif name in id_columns:
            role = "id"
        elif name in report.features:
            role = "feature"
        else:
            role = "ignored"
        kind = _type(col.kind, report.features.get(name))
        low = high = None
        # Dates are not bounded: new data is expected to be later than the training data.
        if kind == "numeric" and col.min is not None and col.max is not None:
            pad = (col.max - col.min) * range_margin
            low, high = _round(col.min - pad, col.integral), _round(col.max + pad, col.integral)
        columns[name] = ColumnSchema(
            type=kind, role=role, required=role != "ignored", nullable=col.missing > 0,
            missing_rate=round(col.missing_rate(profile.rows), 6),
            min=low, max=high, categories=domains.get(name), cardinality=col.n_unique,
        )
    return Schema(target=report.target, columns=columns)


def _type(kind: str, feature_kind: str | None) -> ColumnType:
    if kind == "string":
        return "categorical"
    if kind in ("numeric", "datetime", "boolean"):
        return kind  # type: ignore[return-value]
    return "categorical" if feature_kind == "categorical" else "other"


def _domains(frame: pl.DataFrame, names: list[str]) -> dict[str, list[str]]:
    """Sorted distinct values, as the strings a batch's values are compared with."""
    if not names:
        return {}
    uniques = frame.select(pl.col(n).cast(pl.String).drop_nulls().unique().implode() for n in names).row(0)
    return {n: sorted(values) for n, values in zip(names, uniques, strict=True)}


def _round(value: float, integral: bool) -> float:
    # Six significant digits keep the YAML readable; integral columns get whole-number bounds.
    if integral:
        return float(round(value))
    return float(f"{value:.6g}")


def schema_yaml(schema: Schema, source: str) -> str:
    """The schema as commented YAML, for people to read and edit."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    head = (f"# looml data schema, inferred on {stamp} from {source}.\n"
            "# Edit it to pin, relax or extend what a good batch looks like: remove `categories:` or\n"
            "# `min:` / `max:` to stop checking them, set `nullable: true` to allow gaps, `required: false`\n"
            "# for optional columns. Every batch (training data, `looml validate --data`, served traffic)\n"
            "# is checked against this file; see docs/spec.md, section validation.\n")
    body: dict[str, Any] = {"version": schema.version, "target": schema.target, "columns": {}}
    for name, col in schema.columns.items():
        body["columns"][name] = {k: v for k, v in col.model_dump(mode="json").items() if v is not None}
    return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


def load_schema(path: Path) -> Schema:
    """Read a schema file; raise `DataError` listing every problem with its line."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(Problem(loc=str(path), message=f"cannot read the schema file: {exc}",
                                fix="fix the YAML, or delete the file to infer it again")) from exc
    try:
        return Schema.model_validate(raw)
    except ValidationError as exc:
        lines = yaml_lines(node)
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
            fix = "delete the file to infer it again from the data"
            if err["type"] == "extra_forbidden":
                fix = did_you_mean(str(loc[-1]), ColumnSchema.model_fields) or (
                    f"allowed keys: {', '.join(ColumnSchema.model_fields)}")
            value = err.get("input") if not isinstance(err.get("input"), dict | list) else None
            problems.append(Problem(loc=f"{path.name}: {'.'.join(map(str, loc))}", line=line,
                                    message=err["msg"], value=value, fix=fix))
        raise DataError(problems) from exc

