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
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from looml.data.profile import Profile
from looml.data.validate import ValidationReport
from looml.errors import DataError, Problem, did_you_mean
from looml.spec import yaml_duplicate_keys, yaml_lines

__all__ = ["ColumnSchema", "Schema", "infer_schema", "load_schema", "schema_yaml"]

_MAX_DOMAIN = 50  # categorical columns with at most this many values get a category domain
Role = Literal["feature", "target", "id", "ignored"]
ColumnType = Literal["numeric", "categorical", "text", "datetime", "boolean", "other"]


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
    earliest: datetime | None = Field(None, description="Earliest allowed moment (datetime columns, UTC).")
    latest: datetime | None = Field(None, description="Latest allowed moment (datetime columns, UTC); "
                                    "none: any later date (new data is expected to be later).")
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
        low = high = earliest = None
        # Dates are bounded below only: new data is expected to be later than the training data.
        # Ids are not bounded (new rows get new ones), nor ignored columns (the model never sees
        # them), nor free text.
        bounded = role in ("feature", "target") and report.features.get(name) != "text"
        if bounded and kind == "datetime" and col.earliest and col.latest:
            earliest = _earliest(col.earliest, col.latest, range_margin)
        if bounded and kind == "numeric" and col.min is not None and col.max is not None:
            pad = (col.max - col.min) * range_margin
            low, high = _round(col.min - pad, col.integral, down=True), _round(col.max + pad, col.integral,
                                                                                down=False)
            if col.min >= 0:  # a count, an age, an income: the margin never makes negatives valid
                low = max(low, 0.0)
        columns[name] = ColumnSchema(
            type=kind, role=role, required=role != "ignored", nullable=col.missing > 0 or role == "ignored",
            missing_rate=round(col.missing_rate(profile.rows), 6),
            min=low, max=high, earliest=earliest, categories=domains.get(name) if bounded else None,
            cardinality=col.n_unique,
        )
    return Schema(target=report.target, columns=columns)


def _earliest(first: str, last: str, margin: float) -> datetime:
    """The first moment seen, less `margin` of the span seen, at midnight (naive UTC)."""
    def naive(text: str) -> datetime:
        moment = datetime.fromisoformat(text)
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment

    start, end = naive(first), naive(last)
    low = start - (end - start) * margin
    return datetime(low.year, low.month, low.day)


def _type(kind: str, feature_kind: str | None) -> ColumnType:
    if feature_kind == "text":  # free text, read as words: no domain, no "unknown category"
        return "text"
    if kind == "string":
        return "categorical"
    if kind in ("numeric", "datetime", "boolean"):
        return kind  # type: ignore[return-value]
    return "categorical" if feature_kind == "categorical" else "other"


def _domains(frame: pl.DataFrame, names: list[str]) -> dict[str, list[str]]:
    """Sorted distinct values, as the strings a batch's values are compared with."""
    if not names:
        return {}
    schema = frame.schema
    uniques = frame.select(_text(n, schema[n]).drop_nulls().unique().implode() for n in names).row(0)
    return {n: sorted(values) for n, values in zip(names, uniques, strict=True)}


def _text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column's values as category text, by `learn.features.category_text`'s rule: a whole
    number in a float column is written without its decimal point (1.0 is "1")."""
    column = pl.col(name)
    if not dtype.is_float():
        return column.cast(pl.String)
    whole = column.is_finite() & (column == column.round(0)) & (column.abs() < 2.0**63)
    return pl.when(whole).then(column.cast(pl.Int64).cast(pl.String)).otherwise(column.cast(pl.String))


def _round(value: float, integral: bool, down: bool) -> float:
    """A readable bound that still includes `value`: whole numbers for integral columns, else six
    significant digits, rounded away from the data so that the training data is always in range."""
    if integral:
        return float(math.floor(value) if down else math.ceil(value))
    rounded = float(f"{value:.6g}")
    if rounded > value if down else rounded < value:
        step = 10.0 ** (math.floor(math.log10(abs(rounded))) - 5) if rounded else 1e-6
        rounded = float(f"{rounded - step if down else rounded + step:.6g}")
    return rounded + 0.0  # no negative zero in the file


def schema_yaml(schema: Schema, source: str) -> str:
    """The schema as commented YAML, for people to read and edit; `load_schema` reads it back equal."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    source = " ".join(source.split())  # one comment line, whatever the source's name holds
    head = (f"# looml data schema, inferred on {stamp} from {source}.\n"
            "# Edit it to pin, relax or extend what a good batch looks like: remove `categories:`,\n"
            "# `min:` / `max:` or `earliest:` / `latest:` to stop checking them, set `nullable: true` to\n"
            "# allow gaps, `required: false` for optional columns. Every batch (training data, `looml\n"
            "# validate --data`, served traffic) is checked against this file; see docs/spec.md, section\n"
            "# validation.\n")
    body: dict[str, Any] = {"version": schema.version, "target": schema.target, "columns": {}}
    for name, col in schema.columns.items():
        body["columns"][name] = {k: v for k, v in col.model_dump(mode="json").items() if v is not None}
    text = yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    if yaml.load(text, Loader=_Loader) != body:
        # PyYAML mangles a few characters (U+0085) when writing them unescaped.
        text = yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=False, width=100)
    return head + text


# libyaml when PyYAML has it: the pure-Python emitter and parser took most of a minute on a
# 10,000-column schema.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    try:
        return yaml.compose(text, Loader=_Loader), yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:  # PyYAML's own parser words the error better: let it say it
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)


def load_schema(path: Path) -> Schema:
    """Read a schema file; raise `DataError` listing every problem with its YAML path and line."""
    try:
        text = path.read_text(encoding="utf-8")
        node, raw = _parse(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(Problem(loc=path.name, message=f"cannot read the schema file: {exc}",
                                fix="save it as UTF-8 text, or delete it to infer it again")) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(Problem(
            loc=path.name, line=mark.line + 1 if mark is not None else None,
            message=f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
            fix="check indentation and quoting near that line, or delete the file to infer it again",
        )) from exc
    if not isinstance(raw, dict):
        raise DataError(Problem(loc=path.name, value=None if raw is None else type(raw).__name__,
                                message="expected a mapping with version:, target: and columns:",
                                fix="delete the file to infer it again from the data"))
    lines = yaml_lines(node)
    problems = yaml_duplicate_keys(node, f"{path.name}: ")
    try:
        schema = Schema.model_validate(raw)
    except ValidationError as exc:
        raise DataError([*problems, *(_problem(err, lines, path.name) for err in exc.errors())]) from exc
    problems += _inconsistencies(schema, lines, path.name)
    if problems:
        raise DataError(problems)
    return schema


_CHOICES = {"type": get_args(ColumnType), "role": get_args(Role)}


def _problem(err: Any, lines: dict[tuple, int], file: str) -> Problem:
    loc = tuple(err["loc"])
    where = f"{file}: {'.'.join(map(str, loc)) or '(root)'}"
    line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
    value = err.get("input") if not isinstance(err.get("input"), dict | list) else None
    if err["type"] == "extra_forbidden":
        allowed = list(ColumnSchema.model_fields if len(loc) == 3 else Schema.model_fields)
        return Problem(loc=where, line=line, message="unknown key",
                       fix=did_you_mean(str(loc[-1]), allowed) or f"allowed keys here: {', '.join(allowed)}")
    if err["type"] == "missing":
        return Problem(loc=where, line=line, message="required key is missing",
                       fix="add it, or delete the file to infer it again from the data")
    if err["type"] == "literal_error" and str(loc[-1]) in _CHOICES:
        choices = _CHOICES[str(loc[-1])]
        return Problem(loc=where, line=line, message=f"expected one of {', '.join(choices)}", value=value,
                       fix=did_you_mean(str(value), choices) or f"use one of {', '.join(choices)}")
    return Problem(loc=where, line=line, message=err["msg"], value=value,
                   fix="correct the value, or delete the file to infer it again from the data")


def _inconsistencies(schema: Schema, lines: dict[tuple, int], file: str) -> list[Problem]:
    """What each key allows but the keys together do not: the target's column, min above max."""
    problems = []
    if schema.target not in schema.columns:
        problems.append(Problem(loc=f"{file}: target", line=lines.get(("target",)), value=schema.target,
                                message="the target is not one of the columns",
                                fix=did_you_mean(schema.target, schema.columns)
                                or "list the target under columns:, or correct target:"))
    for name, col in schema.columns.items():
        if col.min is not None and col.max is not None and col.min > col.max:
            problems.append(Problem(loc=f"{file}: columns.{name}.min", value=col.min,
                                    line=lines.get(("columns", name, "min")),
                                    message=f"min is above max ({col.max:g})",
                                    fix="swap them, or remove one to leave that side open"))
        if col.earliest is not None and col.latest is not None and col.earliest > col.latest:
            problems.append(Problem(loc=f"{file}: columns.{name}.earliest", value=col.earliest.isoformat(),
                                    line=lines.get(("columns", name, "earliest")),
                                    message=f"earliest is after latest ({col.latest.isoformat()})",
                                    fix="swap them, or remove one to leave that side open"))
    return problems
