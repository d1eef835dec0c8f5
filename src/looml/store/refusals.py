"""When the storage refuses a write: a full disk, a file-size limit, a quota, a read-only folder.

    with storage_errors(path): ...        # such a refusal while writing `path` -> StorageError
    storage_cause(exc) -> (why, file) | None
    storage_error(where, exc) -> StorageError

Libraries report it in their own words: Python's `OSError` (errno 28, 27, 122, 30, 13), Rust's
"os error 28" inside a Polars error, SQLite's "database or disk is full" or "disk I/O error",
and MLflow or skops wrap any of these in their own exceptions. `storage_cause` looks through the
exception and the ones it was raised from, so the user is told what is full, not what failed.
"""

from __future__ import annotations

import contextlib
import errno
import re
from collections.abc import Iterator
from pathlib import Path

from looml.errors import LoomlError, Problem, StorageError

__all__ = ["storage_cause", "storage_error", "storage_errors"]

_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file is larger than this process may "
           "write (ulimit -f)", errno.EDQUOT: "the disk quota is used up",
           errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
           errno.EPERM: "permission denied"}
_OS_ERROR = re.compile(r"os error (\d+)|\[Errno (\d+)\]")
_SQLITE = re.compile(r"database or disk is full|disk I/O error", re.IGNORECASE)


@contextlib.contextmanager
def storage_errors(path: Path | str) -> Iterator[None]:
    """A refusal of the storage while writing `path`, as a `StorageError` naming it, the cause and
    the fix; any other error as it is."""
    try:
        yield
    except LoomlError:
        raise
    except Exception as exc:
        if storage_cause(exc) is None:
            raise
        raise storage_error(path, exc) from None


def storage_cause(exc: BaseException) -> tuple[str, str | None] | None:
    """Why the storage refused (and the file, when the error names it), from `exc` or the
    exceptions it was raised from; None when it is not the storage."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _ERRNOS:
            named = current.filename if isinstance(current.filename, str) else None
            return f"{_ERRNOS[current.errno]} ({current.strerror})", named
        text = str(current)
        found = _OS_ERROR.search(text)
        code = int(found.group(1) or found.group(2)) if found else None
        if code in _ERRNOS:
            return _ERRNOS[code], None
        if _SQLITE.search(text):
            return "SQLite could not write its database (a full disk, a size limit, a read-only folder)", None
        current = current.__cause__ or current.__context__
    return None


def storage_error(where: Path | str, exc: BaseException) -> StorageError:
    """The `StorageError` for a write to `where` (a file, a folder, a tracking URI) that the
    storage refused (`storage_cause(exc)` is not None)."""
    found = storage_cause(exc)
    assert found is not None, "storage_error is for a refusal of the storage"
    why, named = found
    shown = named or str(where)
    return StorageError(Problem(
        loc="storage", value=shown, message=f"cannot write here: {why}",
        fix="free space on the disk that holds it (or raise the limit), or make its folder writable, "
            "then run the command again: nothing was left half-written, and the stages already done "
            "are cached"))
