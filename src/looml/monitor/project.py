"""The project a loop cycle or a registry verb acts on: its spec, tracking store, home folder,
audit trail and champion.

    project_of(spec) -> Project;  champion_of(project) -> the champion version (RegistryError if none)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looml.errors import Problem, RegistryError
from looml.spec import Spec, load_spec
from looml.store.audit import AuditLog, Decision, TagAuditLog, audit_log, settle
from looml.store.connect import local_tracking_uri
from looml.store.versions import champion_version

__all__ = ["LOCK_WAIT_SECONDS", "Project", "champion_of", "project_of"]

LOCK_WAIT_SECONDS = 60.0  # a loop cycle or a hand promotion waits this long for a run to finish


@dataclass
class Project:
    spec: Spec
    tracking_uri: str
    home: Path
    _schemas: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.registry.model_name

    @property
    def audit(self) -> AuditLog | TagAuditLog:
        return audit_log(self.tracking_uri, self.home)

    def decisions(self) -> list[Decision]:
        """The model's recorded decisions, oldest first, an interrupted move settled against
        the registry (`store.audit.settle`)."""
        return settle(self.audit.records(self.name), champion_version(self.tracking_uri, self.name))

    def schema(self, version: str) -> Any:
        """The `Schema` logged with a version (read from the registry once per cycle), or None."""
        if version not in self._schemas:
            import yaml

            from looml.data.schema import Schema
            from looml.store.versions import SCHEMA_ARTIFACT, model_documents

            _, documents = model_documents(self.tracking_uri, self.name, version)
            text = documents.get(SCHEMA_ARTIFACT)
            self._schemas[version] = None if text is None else Schema.model_validate(yaml.safe_load(text))
        return self._schemas[version]


def project_of(spec: Spec | str | Path) -> Project:
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    return Project(spec, local_tracking_uri(spec.tracking.uri, spec.project_dir),
                    spec.project_dir / ".looml")


def champion_of(project: Project) -> str:
    version = champion_version(project.tracking_uri, project.name)
    if version is None:
        raise RegistryError(Problem(loc="registry.model_name", value=project.name,
                                    message="the registered model has no champion",
                                    fix="run `looml run` until a model passes the gate"))
    return version
