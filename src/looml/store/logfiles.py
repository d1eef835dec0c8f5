"""The files of the prediction log and the feedback store: day folders, names, atomic writes.

    <root>/<kind>/date=YYYY-MM-DD/part-<utc time>-<pid>-<token>-<seq>.parquet

A file gets its real name only once complete: it is written to `.<name>.tmp` in the same folder,
fsynced and renamed, and readers look only at `part-*.parquet`, so a file left by a killed
process is never read. Several worker processes write into the same folders; the pid, a random
token per writer and a sequence number keep their names apart.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import polars as pl

__all__ = ["Namer", "by_day", "day_folders", "parts", "utc", "write_atomic", "write_parquet"]


def day_folders(folder: Path) -> list[tuple[str, Path]]:
    """(YYYY-MM-DD, folder) of every date=... partition, oldest first."""
    if not folder.is_dir():
        return []
    return sorted((p.name.removeprefix("date="), p) for p in folder.iterdir()
                  if p.is_dir() and p.name.startswith("date="))


def parts(folder: Path) -> list[Path]:
    """The complete files of one folder (temporary `.part-*.tmp` files are not matched)."""
    return sorted(folder.glob("part-*.parquet"))


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

