"""What every step of the lifecycle shares: the wiring's code version and the digest of a result."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Every stage's code version includes the pipeline's modules: the glue shapes what stages see.
WIRING = ("looml.pipeline", "looml.pipeline.common", "looml.pipeline.prepare", "looml.pipeline.model",
          "looml.pipeline.record")


def digest_of(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
