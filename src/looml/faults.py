"""Named fault points: where a test may kill the process with SIGKILL (issue 16).

A call `fault_point("register.after_version")` does nothing unless the environment arms that
point when the process starts:

    LOOML_FAULT=register.after_version      kill at the first time the point is reached
    LOOML_FAULT=artifacts.before_rename@3   kill at the third time it is reached
    LOOML_FAULT=stage.train.before>artifacts.before_rename@2
                                            ... counting only after `stage.train.before` was
                                            reached (a write inside that stage, whatever the
                                            stages before it wrote or took from the cache)
    LOOML_FAULT_TRACE=/path/trace.txt       append each reached point's name, one a line (so a
                                            test learns which points a run reaches, in order)

The environment is read once, at import: a disarmed point costs one global lookup and one
comparison (about 40 ns), so the calls stay in production code. Both variables are removed
from the environment when read, so only the process that was started with them is armed: the
trial workers, the fork server and any `looml` a command starts are not. This module imports only the
standard library, so every layer (stages included, tests/test_layering.py) may call it.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV", "TRACE_ENV", "configure", "fault_point"]

ENV = "LOOML_FAULT"
TRACE_ENV = "LOOML_FAULT_TRACE"


_ARMED: tuple[str, int] | None = None
_AFTER: str | None = None  # counting starts once this point is reached
_TRACE: str | None = None
_ACTIVE = False
_hits: dict[str, int] = {}


def configure() -> None:
    """Arm the points from the environment (done at import; a process forked from one that had
    already imported looml calls it again after setting the variables)."""
    global _ARMED, _AFTER, _TRACE, _ACTIVE
    value = os.environ.pop(ENV, "")
    after, _, value = value.rpartition(">")
    _AFTER = after or None
    name, _, count = value.partition("@")
    _ARMED = (name, int(count) if count.isdigit() and int(count) > 0 else 1) if value else None
    _TRACE = os.environ.pop(TRACE_ENV, "") or None
    _ACTIVE = _ARMED is not None or _TRACE is not None
    _hits.clear()


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL here if `LOOML_FAULT` names this point (and its count is
    reached); record the point if `LOOML_FAULT_TRACE` names a file; otherwise do nothing."""
    global _AFTER
    if not _ACTIVE:
        return
    if _TRACE is not None:
        fd = os.open(_TRACE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{name}\n".encode())
        finally:
            os.close(fd)
    if _AFTER is not None:
        if name == _AFTER:
            _AFTER = None
        return
    hits = _hits[name] = _hits.get(name, 0) + 1
    if _ARMED is not None and (name, hits) == _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)


configure()
