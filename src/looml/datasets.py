"""Data-level verbs: check a new batch against the champion's schema; list data snapshots.

    validate_batch(spec, data)  -> BatchCheck        (what `looml validate --data` does)
    snapshots(spec)             -> [SnapshotEntry]   (what `looml data` lists)

The batch check is the same `check_batch` that guards training, with the schema that was
logged with the champion model version, so a batch is judged by what the served model saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from looml.data.anomalies import Anomaly, check_batch
from looml.data.schema import Schema, load_schema
from looml.data.sources import describe, fetch
from looml.errors import DataError, Problem, RegistryError, SpecError
from looml.spec import DataSpec, Spec, load_spec
from looml.store.connect import local_tracking_uri
from looml.store.snapshots import SnapshotCatalog, SnapshotEntry
from looml.store.versions import SCHEMA_ARTIFACT, model_documents

__all__ = ["BatchCheck", "parse_source", "snapshots", "validate_batch"]


@dataclass(frozen=True)
class BatchCheck:
    """The anomalies of one batch against a schema, and where the schema came from."""

    source: str
    rows: int
    schema_origin: str
    anomalies: list[Anomaly]

    @property
    def errors(self) -> list[Anomaly]:
        """The anomalies of severity error."""
        return [a for a in self.anomalies if a.severity == "error"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {"source": self.source, "rows": self.rows, "schema_origin": self.schema_origin,
                "valid": not self.errors, "anomalies": [a.to_dict() for a in self.anomalies]}


def validate_batch(spec: Spec | str | Path, data: str, version: str | None = None) -> BatchCheck:
    """Check the rows of `data` against the schema of the champion (or of `version`).

    `data` is a file path, glob or URL, or an inline YAML mapping of a source
    (`{kind: sql, url: ..., query: ...}`). Without a registered model, the project's schema
    file is used. Findings are returned, not raised; unreadable data raises `DataError`.
    """
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    source = parse_source(data)
    schema, origin = _schema(spec, version)
    frame = fetch(source, Path.cwd()).frame
    return BatchCheck(source=describe(source), rows=frame.height, schema_origin=origin,
                      anomalies=check_batch(frame, schema, spec.validation, scoring=True))


def snapshots(spec: Spec | str | Path) -> list[SnapshotEntry]:
    """Every data snapshot of the project, newest first, with the runs and versions that used it."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    return SnapshotCatalog(spec.project_dir / ".looml" / "snapshots").entries()


def parse_source(data: str) -> Any:
    """A `--data` value as a source: a path, glob or URL, or an inline YAML mapping of one."""
    raw: Any = data
    if data.lstrip().startswith("{"):
        try:
            raw = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise SpecError(Problem(loc="--data", value=data, message=f"not a YAML mapping: {exc}",
                                    fix="write it as {kind: sql, url: ..., query: ...}")) from exc
    try:
        return TypeAdapter(DataSpec).validate_python({"source": raw, "target": "-"}).source
    except ValidationError as exc:
        raise SpecError([Problem(loc=".".join(map(str, ("--data", *e["loc"][1:]))), message=e["msg"],
                                 fix="see docs/spec.md, data.source") for e in exc.errors()]) from exc


def _schema(spec: Spec, version: str | None) -> tuple[Schema, str]:
    tracking_uri = local_tracking_uri(spec.tracking.uri, spec.project_dir)
    local = spec.resolve(spec.validation.schema_file)
    try:
        found, documents = model_documents(tracking_uri, spec.registry.model_name, version)
    except RegistryError:
        if version is not None or not local.is_file():
            raise
        return load_schema(local), f"{local.name} (no registered champion yet)"
    if SCHEMA_ARTIFACT not in documents:
        raise DataError(Problem(loc="registry.model_name", value=f"{spec.registry.model_name} v{found}",
                                message="this model version was registered without a schema",
                                fix="re-run `looml run` to register a version with its schema"))
    path = Path(f"{spec.registry.model_name}-v{found}-schema.yaml")
    return _parse(documents[SCHEMA_ARTIFACT], path), f"model {spec.registry.model_name} version {found}"


def _parse(text: str, name: Path) -> Schema:
    try:
        return Schema.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise DataError(Problem(loc=str(name), message=f"the registered schema is unreadable: {exc}",
                                fix="re-run `looml run` to register a version with a valid schema")) from exc
