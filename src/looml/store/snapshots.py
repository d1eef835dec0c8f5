"""The snapshot catalog: every data version a project ingested, and who used it.

A snapshot is the Parquet file of exactly the rows one ingest read, stored once in the
content-addressed store; its digest is the data version. The catalog keeps one small JSON
entry per digest under `.looml/snapshots/`: where the rows came from (no credentials), their
shape, when they were first and last seen, and the runs and model versions trained on them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from looml.store.artifacts import atomic_write

__all__ = ["SnapshotCatalog", "SnapshotEntry"]


@dataclass
class SnapshotEntry:
    """One data version."""

    digest: str
    source: str
    rows: int
    columns: list[str]
    first_seen: str
    last_seen: str
    used_by: list[dict[str, str]] = field(default_factory=list)  # {run_id, model, version, at}


class SnapshotCatalog:
    """Entries by digest in one folder; each written whole, by rename."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        return self.root / f"{digest}.json"

    def get(self, digest: str) -> SnapshotEntry | None:
        """The entry of a digest (a prefix of at least 6 characters is enough), or None."""
        if len(digest) < 64:
            matches = sorted(self.root.glob(f"{digest}*.json")) if len(digest) >= 6 else []
            if len(matches) != 1:
                return None
            digest = matches[0].stem
        try:
            return SnapshotEntry(**json.loads(self._path(digest).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def record(self, digest: str, source: str, rows: int, columns: list[str]) -> SnapshotEntry:
        """Add a snapshot, or mark a known one as seen again."""
        now = _now()
        entry = self.get(digest) or SnapshotEntry(digest=digest, source=source, rows=rows,
                                                  columns=columns, first_seen=now, last_seen=now)
        entry.last_seen = now
        self._write(entry)
        return entry

    def record_use(self, digest: str, run_id: str, model: str, version: str) -> None:
        """Note that a run (and the model version it registered) trained on this snapshot."""
        entry = self.get(digest)
        if entry is None:
            return
        use = {"run_id": run_id, "model": model, "version": str(version)}
        if not any({k: u.get(k) for k in use} == use for u in entry.used_by):
            entry.used_by.append({**use, "at": _now()})
            self._write(entry)

    def entries(self) -> list[SnapshotEntry]:
        """Every snapshot, newest first."""
        found = [self.get(p.stem) for p in self.root.glob("*.json")] if self.root.is_dir() else []
        return sorted((e for e in found if e is not None), key=lambda e: e.last_seen, reverse=True)

    def _write(self, entry: SnapshotEntry) -> None:
        blob = json.dumps(asdict(entry), indent=1)
        atomic_write(self._path(entry.digest), lambda tmp: tmp.write_text(blob))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

