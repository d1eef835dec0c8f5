"""Reading a batch's input chunk by chunk: local Parquet sliced, local CSV and NDJSON streamed,
anything else fetched whole and sliced.

    read_chunks(source, base_dir, wanted, features, chunk_rows, where)
        -> (chunks, rows when known, column names)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl

from looml.errors import DataError, Problem
from looml.spec import FileSource

__all__ = ["read_chunks"]

# The null markers of the training reader (looml.data.sources.files), so a CSV scores as it trained.
_CSV_NULLS = ["", "NA", "N/A", "NaN", "null"]


def read_chunks(source: Any, base_dir: Path, wanted: list[str], features: dict[str, str], chunk_rows: int,
          where: str) -> tuple[Iterator[pl.DataFrame], int | None, list[str]]:
    """The input's chunks (only the columns in `wanted`), its row count when known beforehand, and
    the names of its columns (of its first file)."""
    from looml.data.sources import fetch, local_paths
    from looml.data.sources.files import detect_format

    paths = local_paths(source, base_dir) if isinstance(source, FileSource) else None
    if paths is not None:
        formats = [detect_format(PurePosixPath(p.name), source.format) for p in paths]
        streamable = source.encoding in ("utf8", "utf8-lossy") and not source.skip_bad_lines
        if all(f in ("parquet", "ndjson") or (f == "csv" and streamable) for f in formats):
            scans = [_scan(p, f, source, features, where) for p, f in zip(paths, formats, strict=True)]
            total = sum(n for _, n in scans) if all(n is not None for _, n in scans) else None
            names = _guard(lambda: scans[0][0].collect_schema().names(), paths[0], formats[0],
                           where) if scans else []
            return _stream(scans, paths, formats, wanted, chunk_rows, where), total, names
    frame = fetch(source, base_dir).frame
    names = frame.columns
    frame = frame.select([c for c in wanted if c in frame.columns])
    return ((frame.slice(start, chunk_rows) for start in range(0, frame.height, chunk_rows)), frame.height,
            names)


def _scan(path: Path, fmt: str, source: FileSource, features: dict[str, str],
          where: str) -> tuple[pl.LazyFrame, int | None]:
    if fmt == "parquet":
        lazy = pl.scan_parquet(path, glob=False)
        return lazy, _guard(lambda: lazy.select(pl.len()).collect().item(), path, fmt, where)
    if fmt == "ndjson":
        return pl.scan_ndjson(path, infer_schema_length=10_000, glob=False), None
    # Features are read as text and typed per chunk (see _batch): a stray value late in the file
    # is then a rejected row, not a parse error that ends the run.
    separator = source.separator or ("\t" if path.name.lower().endswith(".tsv") else ",")
    return pl.scan_csv(path, separator=separator, null_values=_CSV_NULLS, encoding=source.encoding,
                       schema_overrides=dict.fromkeys(features, pl.String), infer_schema_length=10_000,
                       try_parse_dates=True, glob=False), None


def _stream(scans: list[tuple[pl.LazyFrame, int | None]], paths: list[Path], formats: list[str],
            wanted: list[str], chunk_rows: int, where: str) -> Iterator[pl.DataFrame]:
    for (lazy, rows), path, fmt in zip(scans, paths, formats, strict=True):
        names = _guard(lambda lazy=lazy: lazy.collect_schema().names(), path, fmt, where)
        lazy = lazy.select([c for c in wanted if c in names])
        if rows is not None:  # Parquet: a slice reads only the pages it needs
            for start in range(0, rows, chunk_rows):
                yield _guard(lambda lazy=lazy, start=start: lazy.slice(start, chunk_rows).collect(),
                             path, fmt, where)
            continue
        batches = _guard(lambda lazy=lazy: iter(lazy.collect_batches(chunk_size=chunk_rows)),
                         path, fmt, where)
        while (chunk := _guard(lambda batches=batches: next(batches, None), path, fmt, where)) is not None:
            yield chunk


def _guard(read: Callable[[], Any], path: Path, fmt: str, where: str) -> Any:
    """`read()`, with a Polars or OS error turned into a DataError naming the file."""
    try:
        return read()
    except (pl.exceptions.PolarsError, OSError) as exc:
        cause = str(exc).strip().split("\n\n")[0]  # Polars appends tips about its own API
        fix = f"check that the file is valid {fmt}" + (
            "; an id column must keep the type of its first 10,000 values" if fmt == "csv" else "")
        raise DataError(Problem(loc=where, value=str(path), message=f"cannot read the file as {fmt}: {cause}",
                                fix=fix)) from exc


