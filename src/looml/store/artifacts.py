"""A content-addressed artifact store on the local disk.

Each artifact is stored once, under `sha256[:2]/sha256` of its bytes. Writes go to a
temporary name in the same folder and are renamed into place, so a killed process
never leaves a half-written artifact under a real name. A temporary name carries the pid of
its writer, so one left by a killed process is found and removed (`sweep_temp`) without touching
a live writer's. A write the storage refuses (a full disk, a size limit, a read-only folder) is
a `StorageError` that names the file (`store.refusals`).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from looml.faults import fault_point
from looml.store.refusals import storage_errors

__all__ = ["ArtifactStore", "atomic_write", "file_digest", "sweep_temp"]

_CHUNK = 1 << 20
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$|^\.[^.]+-(\d+)-[0-9a-f]+\.db\.tmp$")


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` then rename tmp onto `path`; nothing is left behind on failure. The file
    gets the mode a plain `open` would give it (0666 less the umask), not mkstemp's private 0600:
    looml.yaml, the schema and the reports are the user's files. A full disk, a file-size limit
    or a read-only folder is a `StorageError` naming the file."""
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                        dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            write(tmp)
            fault_point("artifacts.before_rename")  # the whole file is under its temporary name
            os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def sweep_temp(root: Path) -> list[Path]:
    """Remove the temporary files under `root` that a process killed mid-write left behind
    (named `.<name>.<pid>.<random>.tmp` by `atomic_write` and `put_file`, and
    `.mlflow-<pid>-<token>.db.tmp` by the tracking warm-up; the pid no longer alive); return
    them. A live writer's file is left alone."""
    removed = []
    for path in root.rglob(".*.tmp") if root.is_dir() else ():
        found = _TEMP_NAME.match(path.name)
        pid = found and (found.group(1) or found.group(2))
        if not pid or _alive(int(pid)):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once, at import, before any thread writes
    os.umask(mask)
    return mask


_UMASK = _read_umask()


class ArtifactStore:
    """Immutable blobs addressed by their sha256."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        """Where the artifact with this digest lives (whether or not it exists)."""
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        """True when the artifact is present."""
        return self.path(digest).is_file()

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; return their digest."""
        digest = hashlib.sha256(data).hexdigest()
        if not self.has(digest):
            atomic_write(self.path(digest), lambda tmp: tmp.write_bytes(data))
        return digest

    def put_file(self, write: Callable[[Path], None]) -> str:
        """Store whatever `write(path)` writes to a scratch file; return its digest."""
        with storage_errors(self.root):
            return self._put_file(write)

    def _put_file(self, write: Callable[[Path], None]) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".new.{os.getpid()}.", suffix=".tmp", dir=self.root)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            write(tmp)
            fault_point("artifacts.put_file.written")  # a snapshot written, not yet under its digest
            digest = file_digest(tmp)
            target = self.path(digest)
            if target.is_file():
                return digest
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            return digest
        finally:
            tmp.unlink(missing_ok=True)

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of an artifact, checked against its digest."""
        data = self.path(digest).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise OSError(f"artifact {digest[:12]} is corrupt; delete {self.path(digest)} and re-run")
        return data
