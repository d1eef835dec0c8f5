"""The `looml.yaml` spec: pydantic models validated once, at the edge.

`load_spec(path)` reads the YAML, validates it and reports every problem at once, each
with its YAML location and line number, the bad value, what was expected and, for a
misspelt key, a "did you mean".

The sections live in one module per part of the spec: `data` (sources, validation, split),
`features` (preprocessing, feature engineering), `modeling` (models, tuning, evaluation,
registry, tracking) and `operations` (serve, monitor, alerts, loop); `Spec` and the loading
are here, and every name is importable from `looml.spec`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from looml.errors import Problem, SpecError, did_you_mean
from looml.spec._base import (
    _METRICS,
    ALIASES,
    CLASSIFICATION_METRICS,
    DEFAULT_CANDIDATES,
    LOWER_IS_BETTER,
    MODEL_NAMES,
    REGRESSION_METRICS,
    ModelName,
    Task,
    _field_errors,
    _Section,
)
from looml.spec._yaml import read_yaml
from looml.spec.data import (
    CheckSpec,
    DataSpec,
    FileSource,
    HttpSource,
    Pagination,
    PythonSource,
    Source,
    SplitBy,
    SplitSpec,
    SqlSource,
    ValidationSpec,
)
from looml.spec.features import (
    BinningSpec,
    CategoricalSpec,
    ColumnSpec,
    DatetimeSpec,
    DerivedSpec,
    FeaturesSpec,
    ImportanceSpec,
    NumericSpec,
    PcaSpec,
    PolynomialSpec,
    PreprocessingSpec,
    RfeSpec,
    SelectionSpec,
    TextSpec,
)
from looml.spec.modeling import (
    CandidateSpec,
    EvaluationSpec,
    GateSpec,
    ModelsSpec,
    ParamRange,
    RegistrySpec,
    TrackingSpec,
    TuningSpec,
)
from looml.spec.operations import (
    DRIFT_THRESHOLDS,
    P_VALUE_METHODS,
    AlertsSpec,
    BatchingSpec,
    ColumnDriftSpec,
    DriftMethod,
    DriftSpec,
    DriftTestSpec,
    Duration,
    LoopSpec,
    MonitorSpec,
    PerformanceSpec,
    PredictionLogSpec,
    PromotionSpec,
    ServeSpec,
    TriggersSpec,
)

__all__ = [
    "ALIASES",
    "CLASSIFICATION_METRICS",
    "DEFAULT_CANDIDATES",
    "DRIFT_THRESHOLDS",
    "LOWER_IS_BETTER",
    "MODEL_NAMES",
    "P_VALUE_METHODS",
    "REGRESSION_METRICS",
    "AlertsSpec",
    "BatchingSpec",
    "BinningSpec",
    "CandidateSpec",
    "CategoricalSpec",
    "CheckSpec",
    "ColumnDriftSpec",
    "ColumnSpec",
    "DataSpec",
    "DatetimeSpec",
    "DerivedSpec",
    "DriftMethod",
    "DriftSpec",
    "DriftTestSpec",
    "Duration",
    "EvaluationSpec",
    "FeaturesSpec",
    "FileSource",
    "GateSpec",
    "HttpSource",
    "ImportanceSpec",
    "LoopSpec",
    "ModelName",
    "ModelsSpec",
    "MonitorSpec",
    "NumericSpec",
    "Pagination",
    "ParamRange",
    "PcaSpec",
    "PerformanceSpec",
    "PolynomialSpec",
    "PredictionLogSpec",
    "PreprocessingSpec",
    "PromotionSpec",
    "PythonSource",
    "RegistrySpec",
    "RfeSpec",
    "SelectionSpec",
    "ServeSpec",
    "Source",
    "Spec",
    "SplitBy",
    "SplitSpec",
    "SqlSource",
    "Task",
    "TextSpec",
    "TrackingSpec",
    "TriggersSpec",
    "TuningSpec",
    "ValidationSpec",
    "load_spec",
    "parse_spec",
    "spec_json_schema",
    "validate_spec",
    "yaml_duplicate_keys",
    "yaml_lines",
]


_OPERATIONAL = frozenset({"project_dir", "serve", "monitor", "alerts", "loop"})


class Spec(_Section):
    """The whole looml.yaml."""

    seed: int = Field(42, ge=0, description="The one seed for splits, folds and models.")
    data: DataSpec
    validation: ValidationSpec = ValidationSpec()
    split: SplitSpec = SplitSpec()
    preprocessing: PreprocessingSpec = PreprocessingSpec()
    features: FeaturesSpec = FeaturesSpec()
    models: ModelsSpec = ModelsSpec()
    tuning: TuningSpec = TuningSpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    registry: RegistrySpec
    tracking: TrackingSpec = TrackingSpec()
    serve: ServeSpec = ServeSpec()
    monitor: MonitorSpec = MonitorSpec()
    alerts: AlertsSpec = AlertsSpec()
    loop: LoopSpec = LoopSpec()
    project_dir: Path = Field(Path("."), exclude=True, description="Set by load_spec; not a YAML key.")

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> Spec:
        # Caught here rather than after training: a metric of the other task cannot rank or gate.
        paths = self.evaluation.custom_paths
        custom = {*paths, *(p.rpartition(":")[2] for p in paths)}
        named = [(("evaluation", *loc), name) for loc, name in self.evaluation.metric_locations()
                 if name not in custom]  # a custom metric fits whichever task it is given
        task = self.data.task
        if task != "auto":
            _field_errors("Spec", [
                (loc, f"not a {task} metric, and data.task is {task!r}", name,
                 f"use one of {', '.join(_METRICS[task])}")
                for loc, name in named if name not in _METRICS[task]
            ])
        tasks = {t for _, name in named for t, metrics in _METRICS.items() if name in metrics}
        if len(tasks) > 1:
            _field_errors("Spec", [(
                ("evaluation",),
                "mixes classification and regression metrics: "
                + ", ".join(f"{'.'.join(loc[1:])}: {name}" for loc, name in named),
                None, "name metrics of one task only (classification: roc_auc, accuracy, ...; "
                      "regression: rmse, mae, r2)",
            )])
        return self

    @model_validator(mode="after")
    def _paths_stay_in_the_project(self) -> Spec:
        # A relative path is the project's own: "../../etc/passwd" reads (and the schema file
        # writes) outside it only when the spec says so with an absolute path.
        named = [(("validation", "schema_file"), self.validation.schema_file)]
        source = self.data.source
        if isinstance(source, FileSource) and not _REMOTE.match(source.path):
            named.append((("data", "source", "path"), source.path.removeprefix("file://")))
        _field_errors("Spec", [
            (loc, "a relative path that leads outside the project folder (the folder of looml.yaml)",
             path, "move the file into the project folder, or give its absolute path to read it from "
                   "there on purpose")
            for loc, path in named if _escapes(path)])
        return self

    def section_hash(self, *names: str) -> str:
        """A stable hash of the named sections (used in cache keys and lineage)."""
        payload = {n: getattr(self, n) for n in names}
        blob = json.dumps(
            {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in payload.items()},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def spec_hash(self) -> str:
        """Hash of the sections that make the model: everything but where the spec lives and how
        the model is served and watched (`serve`, `monitor`, `alerts`, `loop`), so changing those
        never registers a new version."""
        return self.section_hash(*[n for n in type(self).model_fields if n not in _OPERATIONAL])

    def resolve(self, path: str) -> Path:
        """A path from the spec, relative to the spec file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.project_dir / p


_REMOTE = re.compile(r"^(?!file://)[A-Za-z][A-Za-z0-9+.-]*://")


def _escapes(path: str) -> bool:
    """Whether a relative path climbs above its start (`..` past the top, before any symlink)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return False
    depth = 0
    for part in p.parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return False


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of looml.yaml, for editors and `looml schema`."""
    schema = Spec.model_json_schema()
    schema["properties"].pop("project_dir", None)
    schema["title"] = "looml.yaml"
    return schema


def load_spec(path: str | Path) -> Spec:
    """Read and validate a looml.yaml; raise `SpecError` listing every problem at once."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(Problem(
            loc=str(path), message="spec file not found",
            fix="pass the path to looml.yaml, or create one with `looml init --data FILE --target COL`",
        ))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(Problem(loc=str(path), message=f"cannot read the spec file: {exc}",
                                fix="save looml.yaml as UTF-8 text")) from exc
    return parse_spec(text, project_dir=path.parent.resolve(), name=str(path))


def parse_spec(text: str, project_dir: Path, name: str = "looml.yaml") -> Spec:
    """Validate the text of a looml.yaml; `name` starts the location of whole-file problems.

    `load_spec` reads the file and calls this; the hostile-input tests call it on text."""
    node, raw = read_yaml(text, name)
    if not isinstance(raw, dict):
        raise SpecError(Problem(
            loc=name,
            message=("the spec file is empty" if raw is None else
                     "expected a YAML mapping of sections (data:, registry:, ...)"),
            value=None if raw is None else type(raw).__name__,
            fix="see `looml init` for a starter spec",
        ))
    duplicates = yaml_duplicate_keys(node)
    try:
        spec = validate_spec(raw, project_dir=project_dir, lines=yaml_lines(node))
    except SpecError as exc:
        raise SpecError([*duplicates, *exc.problems]) from exc.__cause__
    if duplicates:
        raise SpecError(duplicates)
    return spec


def validate_spec(raw: dict[str, Any], project_dir: Path, lines: dict[tuple, int] | None = None) -> Spec:
    """Validate a spec already parsed into a dict; raise `SpecError` with every problem."""
    if "project_dir" in raw:
        raise SpecError(Problem(loc="project_dir", message="not a spec key; it is set by looml",
                                fix="remove it"))
    try:
        return Spec.model_validate({**raw, "project_dir": project_dir})
    except ValidationError as exc:
        raise SpecError([_problem(err, lines or {}) for err in exc.errors()]) from exc


_SOURCE_KINDS = ("file", "sql", "http", "python")
_PATTERN_FIXES = {
    r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$":
        "use letters, digits, '_', '.' and '-' only, starting with a letter or digit",
    r"^https?://": "give a full URL starting with http:// or https://",
    r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$": "write it as 'module:function', e.g. 'loaders:load_orders'",
}


def _problem(err: Any, lines: dict[tuple, int]) -> Problem:
    tagged = tuple(err["loc"])
    # pydantic puts a union's tag in the location (data.source.sql.url); the YAML has no such key.
    loc = tuple(p for i, p in enumerate(tagged)
                if not (i and tagged[i - 1] == "source" and p in _SOURCE_KINDS))
    dotted = ".".join(str(part) for part in loc) or "(root)"
    line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _fields_at(Spec, tagged[:-1])
        hint = did_you_mean(str(loc[-1]), allowed)
        fix = hint or f"allowed keys here: {', '.join(allowed)}"
        return Problem(loc=dotted, line=line, message="unknown key", fix=fix)
    if kind == "missing":
        parent = ".".join(str(part) for part in loc[:-1])
        where = f"under `{parent}:`" if parent else "at the top level"
        return Problem(loc=dotted, line=line, message="required key is missing",
                       fix=f"add `{loc[-1]}:` {where}")
    message = err["msg"]
    if kind == "union_tag_invalid":
        tag = str(err.get("ctx", {}).get("tag", ""))
        return Problem(loc=f"{dotted}.kind", line=lines.get((*loc, "kind"), line),
                       message="unknown source kind", value=tag,
                       fix=did_you_mean(tag, _SOURCE_KINDS) or f"use one of {', '.join(_SOURCE_KINDS)}")
    if kind in ("model_type", "model_attributes_type") and loc[-1:] == ("source",):
        return Problem(loc=dotted, line=line, message="expected a file path, or a mapping with "
                       f"kind: {' | '.join(_SOURCE_KINDS)}", value=err.get("input"),
                       fix="e.g. `source: data.csv`, or `source: {kind: sql, url: ..., table: ...}`")
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        choices = re.findall(r"'([^']*)'", expected)
        suggestion = did_you_mean(str(err.get("input")), choices)
        return Problem(loc=dotted, line=line, message=f"expected one of {expected}",
                       value=err.get("input"), fix=suggestion or f"use one of {', '.join(choices)}")
    value = err.get("input")
    if isinstance(value, dict | list):
        value = None
    fix = err.get("ctx", {}).get("fix", "") if kind == "looml" else ""
    if kind == "string_pattern_mismatch":
        fix = _PATTERN_FIXES.get(err.get("ctx", {}).get("pattern", ""), "")
    return Problem(loc=dotted, line=line, message=message.removeprefix("Value error, "),
                   value=value, fix=fix)


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of the model found by walking `loc` (union tags included) down from `model`."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not _is_model(current) and isinstance(current, tuple):  # a tagged union: pick by tag
            current = next((m for m in current if m.model_fields["kind"].default == part
                            or get_args(m.model_fields["kind"].annotation) == (part,)), None)
            continue
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:
            return []
        members = _union_models(field.annotation)
        current = members if len(members) > 1 else _inner_model(field.annotation)
    return [n for n in current.model_fields if n != "project_dir"] if _is_model(current) else []


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _union_models(annotation: Any) -> tuple:
    """The models of a (possibly Annotated) union of models, or ()."""
    args = get_args(annotation)
    if args and get_origin(annotation) is Annotated:
        return _union_models(args[0])
    return tuple(a for a in args if _is_model(a))


def _inner_model(annotation: Any) -> Any:
    if _is_model(annotation):
        return annotation
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def yaml_duplicate_keys(node: yaml.Node | None, prefix: str = "") -> list[Problem]:
    """A key given twice in one mapping: YAML keeps the last silently, looml refuses.

    `prefix` starts each location (a file name, say)."""
    problems: list[Problem] = []

    def walk(n: yaml.Node, path: tuple) -> None:
        if isinstance(n, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in n.value:
                line = key.start_mark.line + 1
                if key.value in first:
                    problems.append(Problem(
                        loc=prefix + ".".join(str(p) for p in (*path, key.value)), line=line,
                        message=f"duplicate key (first on line {first[key.value]}); YAML would "
                                "silently keep only the last one",
                        fix="merge the two into one key"))
                first.setdefault(key.value, line)
                walk(value, (*path, key.value))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return problems


def yaml_lines(node: yaml.Node | None) -> dict[tuple, int]:
    """Map each YAML path (keys and list indexes) to its 1-based line number."""
    index: dict[tuple, int] = {}

    def walk(n: yaml.Node, path: tuple) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                p = (*path, key.value)
                index[p] = key.start_mark.line + 1
                walk(value, p)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                index[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return index
