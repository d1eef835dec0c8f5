"""The compiled check's verdict, remembered on this machine.

    verdict_key(identity, features, schema, profile) -> str
    recall(key) -> (True, None) | (False, reason) | None   (None: never checked here)
    remember(key, reason)                                   (reason None: it matched)

Checking a compiled scorer against its pipeline scores ~35 validation batches through the
pipeline: 3-4 s for a vote of three members, paid by every `looml serve`, server worker,
`looml predict` and `monitor` that loads the model. The outcome depends only on the model
version, the validation rows (made from the features, the schema and the profile), looml's
own code and the libraries that score, so it is kept under the per-user cache keyed by all
of them: a model loaded again on the same machine, by the same looml and the same libraries,
gets the same answer without the check. Any change to any of them is a new key, checked anew.
A cache that cannot be read or written only costs the check.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

from looml.data.schema import Schema
from looml.usercache import user_cache_dir

__all__ = ["recall", "remember", "verdict_key"]

# What scores either side: the pipeline's libraries and the compiled forms' runtimes.
_LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "onnx", "onnxruntime", "lightgbm", "xgboost",
              "catboost", "skops", "threadpoolctl")


def verdict_key(identity: str, features: dict[str, str], schema: Schema | None,
                profile: dict[str, Any] | None) -> str:
    """A digest of the model (`identity`: its store, name, version and run), the inputs of the
    validation rows, looml's code and the scoring libraries' versions."""
    parts = {"model": identity, "features": features, "profile": profile,
             "schema": schema.model_dump(mode="json") if schema is not None else None,
             "environment": _environment()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def recall(key: str) -> tuple[bool, str | None] | None:
    """(True, None) if the compiled scorer matched, (False, why) if it did not, None if unknown."""
    try:
        found = json.loads(_path(key).read_text(encoding="utf-8"))
        return bool(found["matches"]), found.get("reason")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(key: str, reason: str | None) -> None:
    """Keep the check's outcome (`reason` None: it matched), written whole or not at all."""
    path = _path(key)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        partial.write_text(json.dumps({"matches": reason is None, "reason": reason}), encoding="utf-8")
        partial.replace(path)


def _path(key: str) -> Path:
    return user_cache_dir() / "compiled-checks" / f"{key}.json"


@functools.cache
def _environment() -> dict[str, Any]:
    """Python, the scoring libraries' versions and a digest of every source file of looml."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    root = Path(__file__).resolve().parents[2]  # the looml package
    code = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        code.update(path.relative_to(root).as_posix().encode())
        code.update(path.read_bytes())
    return {"python": sys.version, "libraries": versions, "looml": code.hexdigest()}
