"""`looml init`: write a commented starter looml.yaml with roles inferred from the data."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import yaml

from looml.data.profile import profile
from looml.data.sources.files import read_table
from looml.data.validate import validate
from looml.errors import DataError, Problem, SpecError
from looml.spec import DataSpec, PreprocessingSpec, SplitSpec, validate_spec
from looml.store.artifacts import atomic_write

__all__ = ["init_spec"]


def init_spec(data: Path, target: str, out: Path, *, model_name: str | None = None,
              overwrite: bool = False) -> Path:
    """Profile `data`, infer the task and column roles, and write a starter spec to `out`."""
    if out.exists() and not overwrite:
        raise SpecError(Problem(loc=str(out), message="a spec already exists here",
                                fix="pass --force to overwrite it, or --out to write elsewhere"))
    source = os.path.relpath(data.resolve(), out.parent.resolve())
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
    text = _TEMPLATE.format(
        when=datetime.now(UTC).strftime("%Y-%m-%d"), data=data, rows=data_profile.rows,
        source=_quote(source), target=_quote(target), task=report.task, task_reason=report.task_reason,
        roles="\n".join(roles), ids=_flow(ids), primary=primary, name=_quote(name),
    )
    validate_spec(yaml.safe_load(text), project_dir=out.parent.resolve())  # valid before written
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return out


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

preprocessing:
  numeric: {{impute: median, scale: standard, missing_indicator: true}}
  categorical: {{min_frequency: 0.01, max_categories: 50}}
  datetime: {{parts: [year, month, day, dayofweek, hour]}}
  # Drop columns whose values are (nearly) all distinct.
  drop_id_like: true

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

tracking:
  # Any MLflow tracking URI; the default is a SQLite file beside this spec.
  uri: sqlite:///.looml/mlflow.db
  experiment: looml
"""
