"""The audit trail: every registry decision `looml loop` or `looml models` takes, kept.

    audit_log(tracking_uri, home) -> AuditLog | TagAuditLog
    log.append(decision); log.records(model_name) -> [Decision, oldest first]

On a local store, one JSON line per decision appended to `.looml/audit.jsonl` (written with
one `write` call and fsynced, so a line is whole or absent); on a shared tracking store, one
tag of the registered model per decision (team mode, decision 51), so every project folder
pointing at the server reads the same history.

A decision that moves an alias is recorded twice: `pending` before the move, then `done` (same
`id`). A process killed between the two leaves a pending record, which `settle` resolves against
the registry: applied if the alias went where it says (or the next decision starts from there),
else `interrupted`. So the trail never misses a move that happened, nor claims one that did not.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from looml.store.connect import import_mlflow
from looml.store.team import AUDIT_PREFIX, is_shared

__all__ = ["AuditLog", "Decision", "TagAuditLog", "audit_log", "settle"]


@dataclass(frozen=True)
class Decision:
    """One registry decision: what was done, to which versions, on what evidence, and why."""

    action: str  # promote | keep | rollback | retrain_failed
    model_name: str
    champion_before: str | None
    champion_after: str | None
    challenger: str | None = None
    reason: str = ""
    triggers: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)  # metrics, the test, drift and performance
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    by: str = "looml loop"
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "done"  # pending: recorded before its alias move (see `settle`)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)


class AuditLog:
    """The append-only decision log of one project."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, decision: Decision) -> None:
        """Append one decision as one line, durably."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(decision.to_dict(), default=str, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self, model_name: str | None = None) -> list[Decision]:
        """Every decision, oldest first (a torn last line from a crash is skipped)."""
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                raw = json.loads(line)
            except json.JSONDecodeError:
                continue
            if model_name is None or raw.get("model_name") == model_name:
                found.append(Decision(**raw))
        return _collapse(found)


class TagAuditLog:
    """The decision log of a model kept as tags of its registered model (same interface as
    `AuditLog`). Each decision is its own tag, set in one call: appends from two
    machines never overwrite each other, and a record is whole or absent."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri

    def _client(self) -> Any:
        return import_mlflow().MlflowClient(self.tracking_uri)

    def append(self, decision: Decision) -> None:
        """Record one decision as a tag of `decision.model_name` (`OSError` if the server refuses,
        as the file log raises, so `record_move` undoes the alias move)."""
        from mlflow.exceptions import MlflowException

        key = f"{AUDIT_PREFIX}{time.time_ns() // 1_000_000:015d}.{uuid.uuid4().hex[:8]}"
        value = json.dumps(decision.to_dict(), default=str, sort_keys=True)
        try:
            self._client().set_registered_model_tag(decision.model_name, key, value)
        except MlflowException as exc:
            raise OSError(f"the tracking server refused the audit record: {exc}") from exc

    def records(self, model_name: str | None = None) -> list[Decision]:
        """Every decision about `model_name`, oldest first (none if the model is not registered)."""
        from mlflow.exceptions import MlflowException

        if model_name is None:
            return []
        try:
            tags = self._client().get_registered_model(model_name).tags or {}
        except MlflowException:
            return []
        found = []
        for key in sorted(k for k in tags if k.startswith(AUDIT_PREFIX)):
            with contextlib.suppress(json.JSONDecodeError, TypeError):
                found.append(Decision(**json.loads(tags[key])))
        return _collapse(found)


def audit_log(tracking_uri: str, home: Path) -> AuditLog | TagAuditLog:
    """Where a project's decisions are kept: `home/audit.jsonl` for a local store, the registered
    model's tags on a shared one (so every project folder using it reads the same history)."""
    return TagAuditLog(tracking_uri) if is_shared(tracking_uri) else AuditLog(home / "audit.jsonl")


def _collapse(records: list[Decision]) -> list[Decision]:
    """One record per decision: a pending one is dropped where its `done` record follows."""
    done = {r.id for r in records if r.state != "pending"}
    return [r for r in records if not (r.state == "pending" and r.id in done)]


def settle(records: list[Decision], champion: str | None) -> list[Decision]:
    """The records with each pending one resolved: `done` if its move happened (the next
    decision starts from its `champion_after`, or, being the last, the alias is there now),
    else `interrupted` (its process died before the move)."""
    out = []
    for i, record in enumerate(records):
        if record.state == "pending":
            later = records[i + 1] if i + 1 < len(records) else None
            now = later.champion_before if later is not None else champion
            record = replace(record, state="done" if now == record.champion_after else "interrupted")
        out.append(record)
    return out
