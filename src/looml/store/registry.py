"""Registry moves with an audit trail: promote, keep, rollback, and the versions they name.

Every decision is recorded in the audit trail (`store.audit`). An alias moves in one MLflow
call, between the decision's pending record and its done record, so the trail never misses a
move, even when the process is killed in between (`store.audit.settle`).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from looml.errors import Problem, RegistryError
from looml.faults import fault_point
from looml.store.audit import AuditLog, Decision, TagAuditLog
from looml.store.connect import import_mlflow, names_the_store
from looml.store.team import champion_lease, is_shared
from looml.store.versions import CHAMPION

__all__ = ["CHALLENGER", "VersionInfo", "move_alias", "record_move", "version_info", "versions"]

CHALLENGER = "challenger"


@dataclass(frozen=True)
class VersionInfo:
    """A registered version as `looml models` lists it."""

    version: str
    created: str
    aliases: list[str]
    run_id: str
    metrics: dict[str, float]  # the holdout metrics, without the `test_` prefix
    data_digest: str
    best_model: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)


def _client(tracking_uri: str) -> Any:
    return import_mlflow().MlflowClient(tracking_uri)


@names_the_store
def version_info(tracking_uri: str, name: str, version: str) -> VersionInfo:
    """One version's aliases, holdout metrics and lineage; `RegistryError` if there is none."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        found = client.get_model_version(name, version)
        run = client.get_run(found.run_id)
    except MlflowException as exc:
        raise RegistryError(Problem(loc="version", value=f"{name} v{version}",
                                    message="no such model version", fix="see `looml models list`")) from exc
    return _info(found, run)


def _info(found: Any, run: Any) -> VersionInfo:
    created = datetime.fromtimestamp(found.creation_timestamp / 1000, UTC).isoformat(timespec="seconds")
    metrics = {k.removeprefix("test_"): v for k, v in run.data.metrics.items() if k.startswith("test_")}
    return VersionInfo(version=str(found.version), created=created, aliases=sorted(found.aliases or []),
                       run_id=found.run_id, metrics=metrics,
                       data_digest=(found.tags or {}).get("looml.data_digest", ""),
                       best_model=run.data.params.get("best_model", ""))


@names_the_store
def versions(tracking_uri: str, name: str) -> list[VersionInfo]:
    """Every version of the registered model, newest first."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        found = client.search_model_versions(f"name = '{name}'")
    except MlflowException as exc:
        raise RegistryError(Problem(loc="registry.model_name", value=name,
                                    message=f"cannot list versions: {exc}",
                                    fix="check tracking.uri and run `looml run` first")) from exc
    found = sorted(found, key=lambda v: int(v.version), reverse=True)
    # search_model_versions leaves `aliases` empty: each version is read again for them.
    return [_info(client.get_model_version(name, v.version), client.get_run(v.run_id)) for v in found]


@names_the_store
def move_alias(tracking_uri: str, name: str, alias: str, version: str | None) -> None:
    """Point `alias` at `version` (one MLflow call), or remove it when `version` is None."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        if version is None:
            client.delete_registered_model_alias(name, alias)
        else:
            client.set_registered_model_alias(name, alias, version)
    except MlflowException as exc:
        raise RegistryError(Problem(loc="registry", value=f"{name}@{alias} -> {version}",
                                    message=f"MLflow refused to move the alias: {exc}",
                                    fix="check the tracking URI and the version")) from exc


def record_move(tracking_uri: str, audit: AuditLog | TagAuditLog, decision: Decision,
                alias: str = CHAMPION) -> None:
    """Move `alias` to `decision.champion_after` and record the decision (see `_move_and_record`).

    On a shared store this happens under the champion lease, after checking that the champion is
    still `decision.champion_before`: a decision taken on a champion another process has moved
    meanwhile is refused (`RegistryError`), not applied over the other move."""
    if not is_shared(tracking_uri):
        _move_and_record(tracking_uri, audit, decision, alias)
        return
    from looml.store.versions import champion_version

    with champion_lease(_client(tracking_uri), decision.model_name):
        now = champion_version(tracking_uri, decision.model_name)
        if alias == CHAMPION and now != decision.champion_before:
            raise RegistryError(Problem(
                loc="champion", value=f"{decision.model_name} v{now}",
                message=f"the champion moved while this decision was taken (it was "
                        f"v{decision.champion_before}); nothing was changed",
                fix="see `looml models history`, then decide again"))
        _move_and_record(tracking_uri, audit, decision, alias)


def _move_and_record(tracking_uri: str, audit: AuditLog | TagAuditLog, decision: Decision,
                     alias: str = CHAMPION) -> None:
    """Record the decision as pending, move `alias` to `decision.champion_after`, then record it
    done. If the pending record cannot be written nothing moves; if the move fails, the record
    says it was interrupted; a kill between them is settled on reading (`store.audit.settle`)."""
    audit.append(replace(decision, state="pending"))
    fault_point("audit.after_pending")  # recorded as pending, the alias not moved yet
    try:
        move_alias(tracking_uri, decision.model_name, alias, decision.champion_after)
    except BaseException:
        with contextlib.suppress(OSError):
            audit.append(replace(decision, state="interrupted"))
        raise
    fault_point("audit.after_move")  # the alias moved, its done record not yet written
    with contextlib.suppress(OSError):  # the pending record already settles as done
        audit.append(decision)
