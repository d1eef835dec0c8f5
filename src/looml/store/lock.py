"""One writer per project: `looml run`, a `looml loop` cycle and `looml models promote / rollback`
take `.looml/lock` before they change the cache, the registry or the audit trail.

    with project_lock(home, "looml run"):           # BusyError at once if another process holds it
    with project_lock(home, "looml loop", wait=60):  # or wait up to 60 s for it

An advisory `flock` on the file: the kernel releases it when its process ends, however it ends
(a `kill -9` leaves no stale lock to clean). While held, the file names the holder (pid, host,
command, start time), so the second process says who it waits for. The lock is reentrant in one
process: a loop cycle that retrains runs `looml run` under the lock it already holds. Readers
(`looml serve`, `looml predict`, `looml monitor`) take no lock: they read versions and artifacts,
which are written whole or not at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from looml.errors import BusyError, Problem

__all__ = ["LOCK_NAME", "project_lock"]

LOCK_NAME = "lock"
_POLL_SECONDS = 0.2
_held: dict[Path, int] = {}  # lock file -> depth, in this process
_guard = threading.Lock()


@contextlib.contextmanager
def project_lock(home: Path, what: str, wait: float = 0.0) -> Iterator[None]:
    """Hold the project's lock while the block runs; `BusyError` naming the holder when another
    process keeps it past `wait` seconds."""
    path = (Path(home) / LOCK_NAME).resolve()
    with _guard:
        if path in _held:
            _held[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, what, wait)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": what,
                  "argv": " ".join(sys.argv[:4]), "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        with _guard:
            _held[path] = 1
        try:
            yield
        finally:
            with _guard:
                del _held[path]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, what: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise _busy(path, what, wait) from None
            time.sleep(_POLL_SECONDS)


def _busy(path: Path, what: str, wait: float) -> BusyError:
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        holder = {}
    who = "another looml process"
    if holder:
        who = (f"{holder.get('command', 'a looml process')} (pid {holder.get('pid', '?')} on "
               f"{holder.get('host', '?')}, since {holder.get('since', '?')})")
    waited = f" for {wait:g} s" if wait else ""
    stop = f"stop it (kill {holder['pid']})" if holder.get("pid") else "stop it"
    return BusyError(Problem(
        loc=str(path.parent), value=what,
        message=f"{who} is changing this project; {what} waited{waited} and changed nothing" if wait else
                f"{who} is changing this project; {what} changed nothing",
        fix=f"wait for it to finish and run {what} again, or {stop}"))
