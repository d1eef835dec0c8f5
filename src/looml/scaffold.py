"""`looml init`: write a commented starter looml.yaml with roles inferred from the data."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import yaml

from looml.data.profile import Profile, profile
from looml.data.sources.files import read_table
from looml.data.validate import ValidationReport, validate
from looml.errors import DataError, Problem, SpecError
from looml.spec import (
    AlertsSpec,
    CategoricalSpec,
    DataSpec,
    FeaturesSpec,
    LoopSpec,
    MonitorSpec,
    PreprocessingSpec,
    ServeSpec,
    SplitSpec,
    TuningSpec,
    ValidationSpec,
    validate_spec,
)
from looml.store.artifacts import atomic_write

__all__ = ["init_spec"]


def init_spec(data: Path, target: str, out: Path, *, model_name: str | None = None,
              overwrite: bool = False) -> Path:
    """Profile `data`, infer the task and column roles, and write a starter spec to `out`."""
    if out.exists() and not overwrite:
        raise SpecError(Problem(loc=str(out), message="a spec already exists here",
                                fix="pass --force to overwrite it, or --out to write elsewhere"))
    source = os.path.relpath(data.resolve(), out.parent.resolve())
    if source.split(os.sep)[0] == os.pardir:  # outside the project: a relative path would be refused
        source = str(data.resolve())
    try:
        frame = read_table(data)
        data_profile = profile(frame)
        report = validate(data_profile, DataSpec(source=source, target=target), SplitSpec(),
                          PreprocessingSpec())
    except DataError as exc:
        raise DataError([_as_option(p) for p in exc.problems]) from exc
    name = model_name or re.sub(r"[^A-Za-z0-9_.\-]+", "-", data.stem).strip("-.") or "model"
    by_role: dict[str, list[str]] = {}
    for column, kind in report.features.items():
        by_role.setdefault(kind, []).append(column)
    roles = [line for kind, cols in by_role.items()
             for line in textwrap.wrap(f"{kind}: {', '.join(cols)}", 86, initial_indent="  #   ",
                                       subsequent_indent="  #       ")]
    roles += [f"  #   dropped: {col} ({why})" for col, why in report.dropped.items()]
    # Only columns with a distinct value in every row are row ids; near-unique text is not.
    ids = [c for c, why in report.dropped.items()
           if why.startswith("id-like") and data_profile.column(c).n_unique == data_profile.rows]
    # Multiclass models are judged by their probabilities (log loss), as the benchmarks judge them;
    # a one-vs-rest ROC AUC ranks a badly calibrated model as high as a calibrated one.
    classes = data_profile.column(target).n_unique
    primary = "rmse" if report.task == "regression" else "roc_auc" if classes <= 2 else "log_loss"
    dates = [c for c, kind in report.features.items() if kind == "datetime"]
    timed = any(_has_time(frame[c]) for c in dates)
    parts = ["year", "month", "day", "dayofweek"] + (["hour"] if timed else [])
    categorical = [c for c, kind in report.features.items() if kind == "categorical"]
    split_by = _time_split(frame, data_profile, report, dates)
    text = _TEMPLATE.format(
        when=datetime.now(UTC).strftime("%Y-%m-%d"), data=data, rows=data_profile.rows,
        source=_quote(source), target=_quote(target), task=report.task, task_reason=report.task_reason,
        roles="\n".join(roles), ids=_flow(ids), primary=primary, name=_quote(name),
        parts=", ".join(parts), target_encoded=_target_encoded(frame, categorical),
        target_note=_target_note(frame[target], report.task, classes), rest=_other_sections(),
        split_by=split_by,
    )
    validate_spec(yaml.safe_load(text), project_dir=out.parent.resolve())  # valid before written
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return out


_TIME_MIN_DISTINCT = 20  # distinct moments a column needs before init splits by it


def _time_split(frame: pl.DataFrame, data_profile: Profile, report: ValidationReport,
                dates: list[str]) -> str:
    """The `split.by` lines: set to the date column with the most distinct moments when there is
    one that can order the rows (a model with a date is used on later rows than it learnt from,
    so the holdout should be the latest period), else a commented proposal saying why not."""
    usable = sorted((c for c in dates if data_profile.column(c).kind == "datetime"),
                    key=lambda c: -data_profile.column(c).n_unique)
    if not usable:
        return ("  # Split by time or by group instead of at random, e.g.\n"
                "  # by: {time: order_date}   or   by: {group: customer_id}")
    column = usable[0]
    why = ""
    if data_profile.column(column).n_unique < _TIME_MIN_DISTINCT:
        why = f"{column!r} has only {data_profile.column(column).n_unique} distinct moments"
    elif report.task == "classification":
        ordered = frame.drop_nulls(column).sort(column)[report.target].drop_nulls()
        cut = ordered.len() - max(1, ordered.len() // 5)
        for part, name in ((ordered.tail(ordered.len() - cut), "latest"), (ordered.head(cut), "earlier")):
            missing = sorted(set(map(str, report.classes)) - set(map(str, part.unique())))
            if missing and not why:
                why = f"the {name} rows have no {', '.join(missing[:5])}"
    others = [c for c in usable if c != column]
    also = f" (other date columns: {', '.join(others)})" if others else ""
    if why:
        return (f"  # A time split would hold out the latest rows by {column}{also}, but {why}:\n"
                f"  # by: {{time: {_quote(column)}}}")
    return ("  # The holdout is the latest period by this date column and CV folds chain forward\n"
            f"  # (train on the past, score the next block){also}. Remove it for a random split.\n"
            f"  by: {{time: {_quote(column)}}}")


def _has_time(column: pl.Series) -> bool:
    """Whether a date column carries a time of day (else an hour part would be constant)."""
    if column.dtype == pl.String:
        try:
            column = column.str.to_datetime(strict=False)
        except pl.exceptions.PolarsError:
            return True  # the coercer will parse it: keep the hour rather than guess
    if not isinstance(column.dtype, pl.Datetime):
        return False
    return bool((column.dt.truncate("1d") != column).any())


def _target_encoded(frame: pl.DataFrame, categorical: list[str]) -> str:
    """The comment naming the columns `encoding: auto` will target encode (above high_cardinality)."""
    limit = CategoricalSpec().high_cardinality
    many = [c for c in categorical if frame[c].drop_nulls().n_unique() > limit]
    if not many:
        return f"  # Every categorical column has at most {limit} values: all are one-hot encoded."
    lines = textwrap.wrap(f"Target encoded (more than {limit} values; the others one-hot): "
                          + ", ".join(many), 86, initial_indent="  # ", subsequent_indent="  #   ")
    return "\n".join(lines)


def _target_note(target: pl.Series, task: str, classes: int) -> str:
    """Which class is positive (binary), or whether a skewed target wants target_transform."""
    values = target.drop_nulls()
    if task == "classification":
        if classes != 2:
            return f"  # {classes} classes; multiclass metrics average over them."
        positive = values.unique().sort()[1]
        return (f"  # Positive class (roc_auc, precision, recall, f1): {positive!r}, the second of the "
                "sorted classes.")
    skew = values.cast(pl.Float64).skew()
    if skew is None or abs(skew) < 1.0:
        return "  # target_transform: none  # the target is not skewed"
    fit = "log" if values.min() >= 0 else "yeo-johnson"
    return (f"  # The target is skewed (skewness {skew:.1f}): fitting on a transformed target often\n"
            f"  # predicts it better; `auto` applies {fit} when the training target is skewed.\n"
            "  # target_transform: auto")


def _other_sections() -> str:
    """Every section init leaves at its defaults, written out commented: uncomment to change one."""
    blocks = []
    for name, section in (("validation", ValidationSpec), ("features", FeaturesSpec), ("tuning", TuningSpec),
                          ("serve", ServeSpec), ("monitor", MonitorSpec), ("alerts", AlertsSpec),
                          ("loop", LoopSpec)):
        doc = " ".join((section.__doc__ or name).strip().split("\n\n")[0].split())
        head = textwrap.wrap(doc, 96, initial_indent="# ", subsequent_indent="# ")
        body = yaml.safe_dump({name: section().model_dump(mode="json")}, sort_keys=False, width=100)
        blocks.append("\n".join(head) + "\n" + "".join(f"# {line}\n" for line in body.splitlines()))
    return "\n".join(blocks)


def _as_option(problem: Problem) -> Problem:
    """Name the command-line option, not the spec key: there is no looml.yaml yet."""
    if problem.loc == "data.source":
        fix = ("check the path given to --data" if problem.message == "data file not found"
               else problem.fix)
        return dataclasses.replace(problem, loc="--data", fix=fix)
    if problem.loc == "data.target":
        return dataclasses.replace(problem, loc="--target")
    return problem


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(_quote(i) for i in items) + "]"


def _quote(text: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./\-]*", text):
        return text
    return json.dumps(text)  # a JSON string is a valid double-quoted YAML scalar


_TEMPLATE = """\
# looml.yaml: written by `looml init` on {when} from {data} ({rows} rows).
# Every key is described in docs/spec.md; `looml schema` prints the JSON Schema.
# Run it with:  looml run looml.yaml

# One seed for the split, the folds and the models.
seed: 42

data:
  # CSV, Parquet or NDJSON; relative to this file.
  source: {source}
  target: {target}
  # Inferred: {task_reason}.
  task: {task}
  # Roles looml inferred from the data (re-checked on every run):
{roles}
  # Row identifiers: kept in the data, never used as features.
  id_columns: {ids}
  # Columns never used as features.
  drop_columns: []

split:
  # Share of rows held out for the final evaluation; nothing else reads them.
  test_size: 0.2
  # Cross-validation folds on the training split: 5 unless a tight tuning.time_budget
  # needs fewer (down to 2). Set it to keep a number.
  # folds: 5
{split_by}

preprocessing:
  numeric: {{impute: median, scale: standard, missing_indicator: true}}
  categorical: {{encoding: auto, min_frequency: 0.01, max_categories: 50, high_cardinality: 50}}
{target_encoded}
  datetime: {{parts: [{parts}]}}
  # Drop columns whose values are (nearly) all distinct.
  drop_id_like: true
{target_note}

models:
  # Each is a name, or {{name: ..., params: {{...}}}}.
  candidates: [lightgbm, linear, random_forest]

evaluation:
  # Ranks the candidates.
  primary_metric: {primary}
  # A model is registered only if it reaches these on the holdout split,
  # e.g. min: {{roc_auc: 0.7}} or max: {{rmse: 10.0}}.
  gate:
    min: {{}}
    max: {{}}

registry:
  model_name: {name}
  # When a run's model becomes the champion: auto (only when there is none yet; a later model is
  # compared with the champion and reported), if_better (also when that comparison shows it
  # better), never (only `looml models promote` or the loop move it).
  promote: auto

tracking:
  # Any MLflow tracking URI; the default is a SQLite file beside this spec.
  uri: sqlite:///.looml/mlflow.db
  experiment: looml

# The sections below are at their defaults (see docs/spec.md): uncomment a key to change it.

{rest}"""
