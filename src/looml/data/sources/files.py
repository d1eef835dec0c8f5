"""File sources: local files, globs, folders and fsspec URLs, read as CSV, Parquet, NDJSON or Excel.

    local_paths(source, base_dir) -> [Path] | None   (the sorted local files; None for a URL)
    read_files(source, base_dir)  -> (frame, notes)  (every file, one schema, one frame)
    read_table(path, fmt)         -> frame           (one local file, as `looml init` reads it)

A clean CSV costs one `pl.read_csv`. Only when that fails, or when the last column has missing
values (Polars pads a short line with nulls, which cannot be told apart afterwards), is the file
scanned for records with the wrong number of fields, so that they can be reported by line number.
Encodings other than UTF-8 are decoded in Python, so the whole file is held in memory twice.
Remote files are read into memory whole (`locate`: which files a source names), then parsed by
the same readers as local ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import numpy as np
import polars as pl

from looml.data.sources.locate import FORMATS, File, is_remote, local_files, remote_files
from looml.errors import DataError, Problem, did_you_mean
from looml.spec import FileSource

__all__ = ["FORMATS", "detect_format", "local_paths", "read_files", "read_table"]

_NULLS = ["", "NA", "N/A", "NaN", "null"]
_SHOWN = 5  # line numbers quoted in a message before "and N more"
_CODECS = {"latin1": "latin-1", "cp1252": "cp1252", "utf16": "utf-16"}


def detect_format(path: PurePath, declared: str = "auto") -> str:
    """The file format: the declared one, or the one its extension names."""
    if declared != "auto":
        return declared
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(Problem(
            loc="data.source.format", value=path.suffix or path.name,
            message="cannot tell the file format from the extension",
            fix=f"set data.source.format to one of csv, parquet, ndjson, excel (known extensions: "
                f"{', '.join(sorted(FORMATS))})",
        ))
    return fmt


def local_paths(source: FileSource, base_dir: Path) -> list[Path] | None:
    """The local files a source reads, sorted; None for a remote URL (it must be fetched).

    Raises `DataError` when a glob or folder holds no data file.
    """
    if is_remote(source.path):
        return None
    return [file.path for file in local_files(source, base_dir)]  # type: ignore[misc]


def read_files(source: FileSource, base_dir: Path,
               env: Mapping[str, str] | None = None) -> tuple[pl.DataFrame, list[str]]:
    """Read every file a `FileSource` names into one frame; also return notes for the user.

    Files must have the same columns (in any order); int and float versions of a column are
    unified to float, other type differences are relaxed to a common type (often text) with a note.
    Problems in several files are reported together.
    """
    env = os.environ if env is None else env
    files = remote_files(source, env) if is_remote(source.path) else local_files(source, base_dir)
    frames: list[pl.DataFrame] = []
    notes: list[str] = []
    problems: list[Problem] = []
    for file in files:
        try:
            frame, file_notes = _read_one(file, source)
        except DataError as exc:
            problems.extend(exc.problems)
            continue
        frames.append(frame)
        notes.extend(file_notes)
    if problems:
        raise DataError(problems)
    frame, combine_notes = _combine(files, frames, source.file_column)
    return frame, notes + combine_notes


def read_table(path: Path, fmt: str = "auto") -> pl.DataFrame:
    """Read one local file whole; raise `DataError` naming the file and the fix when it cannot."""
    frame, _ = _read_one(File(path.name, str(path), path), FileSource(path=str(path), format=fmt))
    # A float NaN (Parquet, NDJSON) is a missing value, as "NaN" in a CSV already is.
    return frame.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))


# --- one file ------------------------------------------------------------------------------------

def _read_one(file: File, source: FileSource) -> tuple[pl.DataFrame, list[str]]:
    if file.path is not None:
        if not file.path.is_file():
            raise DataError(Problem(
                loc="data.source", value=file.where, message="data file not found",
                fix="check data.source in looml.yaml (relative paths start at the spec's folder)",
            ))
        if not os.access(file.path, os.R_OK):
            raise DataError(Problem(loc="data.source", value=file.where,
                                    message="the data file cannot be read: permission denied",
                                    fix=f"give this user read permission (chmod u+r {file.path.name})"))
    fmt = detect_format(PurePosixPath(file.name), source.format)
    if (file.path.stat().st_size if file.path is not None else len(file.data or b"")) == 0:
        raise DataError(Problem(loc="data.source", value=file.where, message="the data file is empty",
                                fix="point data.source at a file with a header row and data rows"))
    try:
        if fmt == "csv":
            frame, notes = _read_csv(file, source)
        elif fmt == "excel":
            frame, notes = _read_excel(file, source)
        elif fmt == "parquet":
            frame, notes = pl.read_parquet(file.handle(), glob=False), []
        else:
            frame, notes = pl.read_ndjson(file.handle(), infer_schema_length=10_000), []
    except pl.exceptions.NoDataError as exc:
        raise DataError(Problem(loc="data.source", value=file.where, message="the data file is empty",
                                fix="point data.source at a file with a header row and data rows")) from exc
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        # Polars appends tips about its own API arguments; the first paragraph is the cause.
        cause = str(exc).strip().split("\n\n")[0]
        raise DataError(Problem(
            loc="data.source", value=file.where, message=f"cannot read the file as {fmt}: {cause}",
            fix=f"check that the file is valid {fmt}, or set data.source.format",
        )) from exc
    if frame.height == 0:
        raise DataError(Problem(loc="data.source", value=file.where, message="the data file has no rows",
                                fix="point data.source at a file with data rows"))
    return frame, notes


def _read_excel(file: File, source: FileSource) -> tuple[pl.DataFrame, list[str]]:
    import fastexcel

    try:
        return _read_sheet(file, source)
    except fastexcel.FastExcelError as exc:
        # Reported like any unreadable file; calamine's context lines repeat the path.
        raise ValueError(str(exc).strip().splitlines()[0]) from exc


def _read_sheet(file: File, source: FileSource) -> tuple[pl.DataFrame, list[str]]:
    if source.sheet is not None:
        import fastexcel

        names = fastexcel.read_excel(file.data if file.path is None else str(file.path)).sheet_names
        if source.sheet not in names:
            hint = did_you_mean(source.sheet, names)
            raise DataError(Problem(
                loc="data.source.sheet", value=source.sheet,
                message=f"{file.name} has no such sheet; its sheets are {', '.join(map(repr, names))}",
                fix=f"set data.source.sheet to one of them{'; ' + hint if hint else ''}"))
    # Types from every row: calamine turns a value that disagrees with the first 100 into a null.
    frame = pl.read_excel(file.handle(), engine="calamine", sheet_name=source.sheet, infer_schema_length=None)
    return frame, _text_notes(frame, file.name, lambda: np.arange(frame.height) + 2, "row")  # type: ignore[arg-type]


# --- CSV -----------------------------------------------------------------------------------------

def _read_csv(file: File, source: FileSource) -> tuple[pl.DataFrame, list[str]]:
    separator = source.separator or ("\t" if file.name.lower().endswith(".tsv") else ",")
    text: Path | bytes
    if source.encoding in _CODECS:
        text = _transcode(file, source.encoding)
    else:
        text = file.path if file.data is None else file.data  # type: ignore[assignment]
    encoding = "utf8-lossy" if source.encoding == "utf8-lossy" else "utf8"
    frame: pl.DataFrame | None = None
    failure: pl.exceptions.ComputeError | None = None
    try:
        frame = _parse_csv(text, separator, encoding)
    except pl.exceptions.ComputeError as exc:
        if "invalid utf-8" in str(exc):
            raise _not_utf8(file) from exc
        if "found more fields" not in str(exc):
            raise
        failure = exc
    if frame is not None:
        padded = frame.get_column(frame.columns[-1]).is_null().arg_true()
        if frame.width < 2 or padded.len() == 0 or _whole(text, file, separator, padded, frame):
            return frame, _text_notes(frame, file.name, lambda: _record_lines(file, text, separator))
    raw = text if isinstance(text, bytes) else file.raw()
    layout = _Layout.scan(raw, separator)
    body = np.arange(layout.fields.size) > 0
    expected = int(layout.fields[0])
    blank = layout.blank & body & (expected > 1)  # in a one-column file a blank line is a missing value
    bad = body & ~layout.blank & (layout.fields != expected) & (expected > 1)
    if bad.any() and not source.skip_bad_lines:
        raise DataError(Problem(
            loc="data.source", value=file.where,
            message=f"{int(bad.sum())} line(s) of {file.name} do not have the header's {expected} fields: "
                    f"{_lines(layout.lines[bad], layout.fields[bad])}",
            fix="fix those lines, or set data.source.skip_bad_lines: true to skip them"))
    if not bad.any() and not blank.any():
        if frame is None:  # Polars saw a problem that the field count does not show
            raise failure  # type: ignore[misc]
        return frame, _text_notes(frame, file.name, lambda: layout.lines[1:])
    keep = ~(bad | blank)
    frame = _parse_csv(layout.keep(raw, keep), separator, encoding)
    notes = []
    if bad.any():
        notes.append(f"skipped {int(bad.sum())} line(s) of {file.name} that do not have the header's "
                     f"{expected} fields: {_lines(layout.lines[bad])}")
    if blank.any():
        notes.append(f"skipped {int(blank.sum())} blank line(s) of {file.name}: "
                     f"{_lines(layout.lines[blank])}")
    kept = layout.lines[keep & body]
    return frame, notes + _text_notes(frame, file.name, lambda: kept)


def _whole(text: Path | bytes, file: File, separator: str, rows: pl.Series, frame: pl.DataFrame) -> bool:
    """True when the rows whose last field is missing are not short lines: checked on those lines
    alone, which needs no full scan when nothing is quoted (then data row i is record i + 1)."""
    if rows.len() > 100_000:
        return False
    raw = text if isinstance(text, bytes) else file.raw()
    if b'"' in raw:
        return False
    breaks = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 10)
    records = breaks.size + (0 if raw.endswith(b"\n") else 1)
    if records != frame.height + 1:
        return False
    starts = np.concatenate([[0], breaks + 1])
    sep = separator.encode()
    for row in rows.to_list():
        start = int(starts[row + 1])
        end = int(starts[row + 2]) - 1 if row + 2 < starts.size else len(raw)
        if raw.count(sep, start, end) != frame.width - 1 or raw[start:end] in (b"", b"\r"):
            return False
    return True


def _parse_csv(text: Path | bytes, separator: str, encoding: str) -> pl.DataFrame:
    """Read a CSV, inferring types from the first rows and, if a later row disagrees, from all.

    Polars' full-file type inference is single-threaded and was 40x slower than the read
    itself on a 200,000-row file (18 s against 0.4 s), so it is the fallback, not the rule.
    """
    options: dict[str, Any] = {"separator": separator, "try_parse_dates": True, "null_values": _NULLS,
                               "encoding": encoding, "glob": False}
    try:
        return pl.read_csv(text, **options)
    except pl.exceptions.ComputeError as exc:
        if "found more fields" in str(exc) or "invalid utf-8" in str(exc):
            raise
        return pl.read_csv(text, infer_schema_length=None, **options)


def _transcode(file: File, encoding: str) -> bytes:
    raw = file.raw()
    try:
        return raw.decode(_CODECS[encoding]).encode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(Problem(
            loc="data.source.encoding", value=encoding,
            message=f"{file.name} is not valid {encoding}: {_position(raw, exc)}",
            fix="set data.source.encoding to the file's encoding (utf8, latin1, cp1252, utf16)")) from exc


def _not_utf8(file: File) -> DataError:
    raw = file.raw()
    try:
        raw.decode("utf-8")
        where = ""
    except UnicodeDecodeError as exc:
        where = f" ({_position(raw, exc)})"
    return DataError(Problem(
        loc="data.source.encoding", value=file.where, message=f"{file.name} is not valid UTF-8{where}",
        fix="set data.source.encoding: latin1 (or cp1252), or utf8-lossy to replace the bad bytes"))


def _position(raw: bytes, exc: UnicodeDecodeError) -> str:
    line = raw.count(b"\n", 0, exc.start) + 1
    return f"byte 0x{raw[exc.start]:02x} at offset {exc.start}, line {line}"


def _record_lines(file: File, text: Path | bytes, separator: str) -> np.ndarray:
    """The line each data row starts on: scanned only when a note needs it."""
    return _Layout.scan(text if isinstance(text, bytes) else file.raw(), separator).lines[1:]


def _lines(lines: np.ndarray, fields: np.ndarray | None = None) -> str:
    """'lines 4, 9 and 3 more', or with field counts 'line 4 has 2, line 9 has 5'."""
    shown = lines[:_SHOWN].tolist()
    more = f" and {lines.size - _SHOWN} more" if lines.size > _SHOWN else ""
    if fields is not None:
        counts = fields[:_SHOWN].tolist()
        return ", ".join(f"line {line} has {n}" for line, n in zip(shown, counts, strict=True)) + more
    return f"line{'s' if lines.size > 1 else ''} {', '.join(map(str, shown))}{more}"


@dataclass(frozen=True)
class _Layout:
    """Where each CSV record is: its byte range (without the line break), first line and field count."""

    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    fields: np.ndarray
    blank: np.ndarray

    @staticmethod
    def scan(raw: bytes, separator: str) -> _Layout:
        """Split `raw` into records the way a CSV reader does: a separator or a line break between an
        odd number of double quotes is inside a quoted field ('""' escapes count twice, so they cancel).
        """
        buf = np.frombuffer(raw, dtype=np.uint8)
        newlines = np.flatnonzero(buf == 10)
        separators = np.flatnonzero(buf == ord(separator))
        quotes = np.flatnonzero(buf == 34)
        breaks = newlines
        if quotes.size:
            breaks = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
            separators = separators[np.searchsorted(quotes, separators) % 2 == 0]
        starts = np.concatenate([[0], breaks + 1])
        ends = np.concatenate([breaks, [buf.size]])
        if starts[-1] == buf.size:  # the final line break ends the last record; nothing follows
            starts, ends = starts[:-1], ends[:-1]
        fields = np.searchsorted(separators, ends) - np.searchsorted(separators, starts) + 1
        length = ends - starts
        last = buf[np.maximum(ends - 1, 0)] if buf.size else np.zeros(0, np.uint8)
        blank = (length == 0) | ((length == 1) & (last == 13))
        return _Layout(starts, ends, np.searchsorted(newlines, starts) + 1, fields, blank)

    def keep(self, raw: bytes, keep: np.ndarray) -> bytes:
        """`raw` without the records where `keep` is False (each with its line break)."""
        buf = np.frombuffer(raw, dtype=np.uint8)
        stops = np.concatenate([self.starts[1:], [buf.size]])
        change = np.zeros(buf.size + 1, dtype=np.int64)
        np.add.at(change, self.starts[~keep], 1)
        np.add.at(change, stops[~keep], -1)
        return buf[np.cumsum(change[:-1]) == 0].tobytes()


def _text_notes(frame: pl.DataFrame, name: str, lines: Callable[[], np.ndarray],
                unit: str = "line") -> list[str]:
    """Notes for mostly-numeric columns that a few stray values made text."""
    notes = []
    for column, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        values = frame.get_column(column)
        head = values.drop_nulls().head(1000)
        if head.len() == 0 or head.cast(pl.Float64, strict=False).null_count() * 2 > head.len():
            continue  # a text column, not a numeric one gone wrong
        failed = (values.is_not_null() & values.cast(pl.Float64, strict=False).is_null()).arg_true()
        if failed.len() == 0 or failed.len() * 2 > values.len() - values.null_count():
            continue
        examples: dict[str, int] = {}
        for row in failed.head(1000).to_list():
            examples.setdefault(values[row], row)
            if len(examples) == 3:
                break
        at = lines()
        shown = ", ".join(f"{value!r} ({unit} {at[row]})" for value, row in examples.items())
        notes.append(f"column {column!r} of {name} was read as text because of {failed.len()} value(s) "
                     f"such as {shown}; clean them or they become a categorical feature")
    return notes


# --- several files -------------------------------------------------------------------------------

def _combine(files: list[File], frames: list[pl.DataFrame],
             file_column: str | None) -> tuple[pl.DataFrame, list[str]]:
    first = frames[0]
    problems = []
    for file, frame in zip(files[1:], frames[1:], strict=True):
        missing = [c for c in first.columns if c not in frame.columns]
        extra = [c for c in frame.columns if c not in first.columns]
        if missing or extra:
            what = "; ".join(f"{label} {', '.join(map(repr, cols))}"
                             for label, cols in (("missing", missing), ("extra", extra)) if cols)
            problems.append(Problem(
                loc="data.source.path", value=file.where,
                message=f"{file.name} has other columns than {files[0].name}: {what}",
                fix="give every file the same columns, or narrow data.source.path to files of one layout"))
    if file_column is not None and file_column in first.columns:
        problems.append(Problem(loc="data.source.file_column", value=file_column,
                                message="the files already have a column of that name",
                                fix="choose another name for data.source.file_column"))
    if problems:
        raise DataError(problems)
    frames = [frame.select(first.columns) for frame in frames]
    schemas = [frame.schema for frame in frames]  # each `.schema` is built anew: not once per column
    notes: list[str] = []
    targets: dict[str, pl.DataType] = {}
    for column in first.columns:
        # A column with no values in one file has no type to speak of there (CSV makes it text).
        typed = {}
        for file, frame, schema in zip(files, frames, schemas, strict=True):
            if frame.get_column(column).null_count() < frame.height:
                typed.setdefault(schema[column], file.name)
        if len(typed) == 1:
            targets[column] = next(iter(typed))
        elif len(typed) > 1:
            try:
                target = pl.concat([pl.DataFrame(schema={column: d}) for d in typed],
                                   how="vertical_relaxed").schema[column]
            except pl.exceptions.PolarsError as exc:
                kinds = ", ".join(f"{d} in {n}" for d, n in typed.items())
                raise DataError(Problem(
                    loc="data.source.path", value=column, fix="give the column one type in every file",
                    message=f"column {column!r} has types that cannot be combined: {kinds}")) from exc
            targets[column] = target
            if not target.is_numeric():
                kinds = ", ".join(f"{d} in {n}" for d, n in typed.items())
                notes.append(f"column {column!r} has different types across files ({kinds}); "
                             f"it was read as {target}")
    frames = [frame.with_columns(pl.col(c).cast(t) for c, t in targets.items() if schema[c] != t)
              for frame, schema in zip(frames, schemas, strict=True)]
    if file_column is not None:
        frames = [frame.with_columns(pl.lit(file.name, dtype=pl.String).alias(file_column))
                  for file, frame in zip(files, frames, strict=True)]
    return (frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")), notes
