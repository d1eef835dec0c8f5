"""What a folder holds, readable: for the tests that look for a secret in everything looml wrote.

    texts_under(folder) -> (where, bytes) for every file, and for what a file holds compressed:
                           each member of a zip archive (skops models), every value and column
                           name of a Parquet file (snapshots, the prediction log)
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl

__all__ = ["texts_under"]


def texts_under(folder: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        yield str(path), data
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.namelist():
                    yield f"{path}!{member}", archive.read(member)
        if data[:4] == b"PAR1":
            frame = pl.read_parquet(io.BytesIO(data))
            yield f"{path} (values)", frame.select(pl.all().cast(pl.String)).write_csv().encode()
