"""Run stages through a content-addressed cache.

A stage's output is a small JSON manifest (values plus the digests of the artifacts it
wrote), stored under a hash of everything the stage depends on: its code version, its
spec section, the digests of its inputs and the library versions. An unchanged stage is
not run again; a changed one says why it re-ran. The manifest is written last and
atomically, so a killed run resumes after its last finished stage.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from looml.faults import fault_point
from looml.store.artifacts import ArtifactStore, atomic_write

__all__ = ["Runner", "StageRecord"]

_LIBRARIES = ("looml", "polars", "pyarrow", "numpy", "pandas", "scikit-learn", "lightgbm", "mlflow")


@dataclass(frozen=True)
class StageRecord:
    """What happened to one stage in one run."""

    name: str
    status: str  # "ran" or "cached"
    reason: str
    seconds: float
    key: str


@dataclass
class Runner:
    """Looks stages up in the cache and runs those that are missing or stale."""

    cache_dir: Path
    store: ArtifactStore
    force: bool = False
    on_start: Callable[[str], None] | None = None
    on_finish: Callable[[StageRecord], None] | None = None
    records: list[StageRecord] = field(default_factory=list)

    def run(
        self,
        name: str,
        *,
        code: Sequence[str],  # module names, or "package:relative/file" for data files
        config: Any,
        inputs: dict[str, str],
        compute: Callable[[], dict[str, Any]],
        still_valid: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Return the stage's manifest, from the cache when nothing it depends on changed.

        `still_valid(output)` can reject a cached output whose effect outside the cache
        is gone (a registry that was deleted, say).
        """
        parts = {
            "code": _code_version(tuple(code)),
            "config": config,
            "inputs": inputs,
            "libraries": library_versions(),
        }
        key = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
        stage_dir = self.cache_dir / name
        manifest_path = stage_dir / f"{key}.json"
        if self.on_start:
            self.on_start(name)
        started = time.perf_counter()
        cached = None if self.force else self._load(manifest_path)
        if cached is not None and still_valid is not None and not still_valid(cached):
            cached = None
        if cached is not None:
            record = StageRecord(name, "cached", "nothing it depends on changed",
                                 time.perf_counter() - started, key)
            output = cached
        else:
            reason = "--force" if self.force else self._why(stage_dir, parts, manifest_path)
            fault_point(f"stage.{name}.before")
            output = compute()
            fault_point(f"stage.{name}.computed")
            # Not sort_keys: a cached output must come back exactly as computed, dict order
            # included (the order of feature columns decides what a model learns).
            blob = json.dumps({"parts": parts, "output": output}, default=str)
            atomic_write(manifest_path, lambda tmp: tmp.write_text(blob))
            record = StageRecord(name, "ran", reason, time.perf_counter() - started, key)
        latest = json.dumps({"key": key, "parts": parts}, sort_keys=True, default=str)
        atomic_write(stage_dir / "latest.json", lambda tmp: tmp.write_text(latest))
        fault_point(f"stage.{name}.done")
        self._record(record)
        return output

    def uncached(self, name: str, reason: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run a step that cannot be cached (fetching a database's rows), and record it."""
        if self.on_start:
            self.on_start(name)
        started = time.perf_counter()
        output = compute()
        self._record(StageRecord(name, "ran", reason, time.perf_counter() - started, ""))
        return output

    def note(self, name: str, status: str, reason: str) -> None:
        """Record a stage that was decided without running anything."""
        if self.on_start:
            self.on_start(name)
        self._record(StageRecord(name, status, reason, 0.0, ""))

    def _record(self, record: StageRecord) -> None:
        self.records.append(record)
        if self.on_finish:
            self.on_finish(record)

    def _load(self, manifest_path: Path) -> dict[str, Any] | None:
        try:
            output = json.loads(manifest_path.read_text())["output"]
        except (OSError, ValueError, KeyError):
            return None
        if not all(self.store.has(d) for d in output.get("artifacts", {}).values()):
            return None
        return output

    def _why(self, stage_dir: Path, parts: dict[str, Any], manifest_path: Path) -> str:
        if manifest_path.is_file():
            return "its cached result is missing, unreadable or out of date"
        try:
            before = json.loads((stage_dir / "latest.json").read_text())["parts"]
        except (OSError, ValueError, KeyError):
            return "first run"
        now = json.loads(json.dumps(parts, sort_keys=True, default=str))
        changed = [k for k in ("inputs", "config", "code", "libraries") if before.get(k) != now[k]]
        if "inputs" in changed:
            names = sorted(k for k in now["inputs"] if before["inputs"].get(k) != now["inputs"][k])
            changed[changed.index("inputs")] = f"input {', '.join(names)}"
        labels = {"config": "its spec section", "code": "its code", "libraries": "library versions"}
        return "changed: " + ", ".join(labels.get(c, c) for c in changed) if changed else "first run"


@cache
def _code_version(modules: tuple[str, ...]) -> str:
    """Hash of the source files of the named modules, found without importing them."""
    h = hashlib.sha256()
    for name in modules:
        package, _, resource = name.partition(":")  # "pkg:path/in/pkg" names a data file
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ImportError(f"cannot find the source of module {package!r}")
        origin = Path(spec.origin)
        h.update((origin.parent / resource if resource else origin).read_bytes())
    return h.hexdigest()[:16]


@cache
def library_versions() -> dict[str, str]:
    """Installed versions of the libraries whose behaviour a cached result depends on."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
