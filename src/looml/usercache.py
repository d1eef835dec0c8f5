"""looml's per-user cache folder: what a machine keeps between commands to save time (an empty
tracking store to copy, the compiled scorers' checks). Losing it costs only time.

    user_cache_dir() -> $LOOML_CACHE_DIR, else $XDG_CACHE_HOME/looml, else ~/.cache/looml
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["user_cache_dir"]


def user_cache_dir() -> Path:
    """looml's per-user cache: $LOOML_CACHE_DIR, else $XDG_CACHE_HOME/looml, else ~/.cache/looml."""
    if os.environ.get("LOOML_CACHE_DIR"):
        return Path(os.environ["LOOML_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "looml"
