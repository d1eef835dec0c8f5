"""The files of the prediction log and the feedback store: day folders, names, atomic writes.

    <root>/<kind>/date=YYYY-MM-DD/part-<utc time>-<pid>-<token>-<seq>.parquet

A file gets its real name only once complete: it is written to `.<name>.tmp` in the same folder,
fsynced and renamed, and readers look only at `part-*.parquet`, so a file left by a killed
process is never read. Several worker processes write into the same folders; the pid, a random
token per writer and a sequence number keep their names apart.

A log writes a file per flush (about one a second under traffic), so `compact(folder)` merges a
folder's small files into `part-...-compacted.parquet` files, which name the files they hold
again in their Parquet metadata. Readers never see a row twice or lose one, even while
compaction runs, because nothing is ever rewritten in place:

1. the compacted file is written under a temporary name and renamed, complete, into the folder;
2. `parts()` leaves out every file a compacted file in the folder holds (so a listing taken
   before the rename reads the small files, and one taken after reads the compacted file);
3. the small files are deleted only by a later compaction, once their compacted file is
   `grace` seconds old (10 minutes): long after any reader that listed them has opened them.

A compaction killed at any point leaves either no compacted file (the small files are read) or
a complete one (they are left out, and deleted later). One process compacts a folder at a time
(an exclusive `flock` on `.compact.lock`; another compaction skips the folder).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import polars as pl

__all__ = ["Namer", "by_day", "compact", "compact_logs", "day_folders", "parts", "utc", "write_atomic",
           "write_parquet"]

logger = logging.getLogger(__name__)

COMPACTED = "-compacted.parquet"  # the end of a compacted file's name
_SOURCES = "looml.compacted_from"  # its Parquet metadata key: a JSON list of the file names it holds
GRACE_SECONDS = 600.0  # how long the files a compacted file holds stay on disk after it is written
SMALL_BYTES = 16 * 2**20  # files below this size are compacted ...
TARGET_BYTES = 64 * 2**20  # ... into files of about this size at most
_STAMPED = len("part-20261122T120000000000Z")  # a file name's prefix up to its time


def day_folders(folder: Path) -> list[tuple[str, Path]]:
    """(YYYY-MM-DD, folder) of every date=... partition, oldest first."""
    if not folder.is_dir():
        return []
    return sorted((p.name.removeprefix("date="), p) for p in folder.iterdir()
                  if p.is_dir() and p.name.startswith("date="))


def parts(folder: Path) -> list[Path]:
    """The complete files of one folder that hold each of its rows once: temporary `.part-*.tmp`
    files are not matched, nor the files a compacted file holds again."""
    files = sorted(folder.glob("part-*.parquet"))
    held = {name for f in files if f.name.endswith(COMPACTED) for name in _sources(f)}
    return [f for f in files if f.name not in held] if held else files


def _sources(path: Path) -> list[str]:
    """The names of the files a compacted file holds (and those they held, transitively)."""
    try:
        return json.loads(pl.read_parquet_metadata(path).get(_SOURCES, "[]"))
    except FileNotFoundError:  # deleted meanwhile: a newer compacted file holds it and its sources
        return []


def compact_logs(root: Path, *, grace: float = GRACE_SECONDS) -> int:
    """`compact` every day folder of the prediction log and the feedback store under `root` (a
    server's `.looml/logs`); the number of files merged. A folder that cannot be compacted (a
    read-only disk, an unreadable file) is logged and left as it is: its rows read as before."""
    merged = 0
    for kind in ("predictions", "feedback"):
        for _, folder in day_folders(Path(root) / kind):
            try:
                merged += compact(folder, grace=grace)
            except (OSError, pl.exceptions.PolarsError):
                logger.warning("could not compact %s; its files are read as they are", folder, exc_info=True)
    return merged


def compact(folder: Path, *, small_bytes: int = SMALL_BYTES, target_bytes: int = TARGET_BYTES,
            grace: float = GRACE_SECONDS, clock: Callable[[], float] = time.time) -> int:
    """Merge the small files of `folder` that share a schema into compacted files, in name order
    (so rows keep their order), and delete the files that compacted files at least `grace`
    seconds old hold again. Returns the number of files merged; 0 when another process is
    compacting the folder. See the module docstring for why readers see every row once.
    """
    with _exclusive(folder) as held:
        if not held:
            return 0
        files = sorted(folder.glob("part-*.parquet"))
        sources = {f.name: _sources(f) for f in files if f.name.endswith(COMPACTED)}
        _delete_expired(folder, files, sources, clock() - grace)
        covered = {name for names in sources.values() for name in names}
        live = [f for f in files if f.name not in covered and f.exists()]
        merged = 0
        for batch in _batches([f for f in live if f.stat().st_size < small_bytes], target_bytes):
            held_again = [name for f in batch for name in [f.name, *sources.get(f.name, [])]]
            frame = pl.concat([pl.read_parquet(f, hive_partitioning=False) for f in batch], how="vertical")
            # named after its first row's file: "part-<utc time>" sorts it among the files it holds
            name = f"{batch[0].name[:_STAMPED]}-{os.getpid()}-{secrets.token_hex(4)}{COMPACTED}"
            meta = {_SOURCES: json.dumps(sorted(set(held_again)))}
            write_atomic(folder, name, frame, lambda frame, handle, meta=meta: frame.write_parquet(
                handle, compression="zstd", statistics=True, metadata=meta))
            merged += len(batch)
        return merged


def _batches(files: list[Path], target_bytes: int) -> Iterator[list[Path]]:
    """Runs of consecutive files of one schema, about `target_bytes` at most; only runs of two or more."""
    run: list[Path] = []
    size, schema = 0, None
    for f in files:
        this, bytes_ = list(pl.read_parquet_schema(f).items()), f.stat().st_size
        if run and (this != schema or size + bytes_ > target_bytes):
            if len(run) > 1:
                yield run
            run, size = [], 0
        run.append(f)
        size += bytes_
        schema = this
    if len(run) > 1:
        yield run


def _delete_expired(folder: Path, files: list[Path], sources: dict[str, list[str]], before: float) -> None:
    """Delete the files held again by a compacted file written before `before`: small files first,
    then compacted ones (whose sources a newer compacted file lists too, so no order loses a row)."""
    expired = {name for f in files if f.name in sources and f.stat().st_mtime < before
               for name in sources[f.name]}
    for f in sorted((folder / name for name in expired), key=lambda f: f.name.endswith(COMPACTED)):
        f.unlink(missing_ok=True)


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[bool]:
    """Hold an exclusive lock on `folder` (True), or yield False at once when another process does."""
    import fcntl

    with open(folder / ".compact.lock", "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Namer:
    """Unique file names across processes and logs: time, pid, a random token and a sequence."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._token = secrets.token_hex(4)
        self._seq = itertools.count()

    def next(self) -> str:
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"part-{stamp}-{os.getpid()}-{self._token}-{next(self._seq):06d}.parquet"


def write_parquet(frame: pl.DataFrame, handle: BinaryIO) -> None:
    frame.write_parquet(handle, compression="zstd", statistics=True)


def write_atomic(folder: Path, name: str, frame: pl.DataFrame,
                  write: Callable[[pl.DataFrame, BinaryIO], None]) -> Path:
    """Write `frame` to a temporary name in `folder`, fsync it, then rename it to `name`."""
    folder.mkdir(parents=True, exist_ok=True)
    final, temp = folder / name, folder / f".{name}.tmp"
    try:
        with open(temp, "xb") as handle:
            write(frame, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return final


def by_day(frame: pl.DataFrame, column: str) -> list[tuple[str, pl.DataFrame]]:
    """`frame` split by the UTC day of `column`, as (YYYY-MM-DD, rows)."""
    if frame.is_empty():
        return []
    days = frame[column].dt.date()
    if days.min() == days.max():
        return [(days[0].isoformat(), frame)]
    parts = frame.with_columns(days.alias("__day")).partition_by("__day", as_dict=True, include_key=False,
                                                                 maintain_order=True)
    return [(key[0].isoformat(), part) for key, part in sorted(parts.items())]

