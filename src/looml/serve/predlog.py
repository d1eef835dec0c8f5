"""The prediction log and the feedback store: what was served, and what it turned out to be.

    PredictionLog(root, spec).append(rows)        every scored request; never blocks it
    FeedbackStore(root).append(parse_feedback(body))   ground-truth labels, written at once
    read_predictions / read_feedback / join_feedback    what monitoring reads

Under `root` (the server's `.looml/logs`):

    predictions/date=YYYY-MM-DD/part-<utc time>-<pid>-<token>-<seq>.parquet
    feedback/date=YYYY-MM-DD/part-<utc time>-<pid>-<token>-<seq>.parquet

A file gets its real name only once complete: it is written to `.<name>.tmp` in the same folder,
fsynced and renamed, and readers look only at `part-*.parquet`, so a file left by a killed
process is never read. Several worker processes write into the same folders; the pid, a random
token per log and a sequence number keep their names apart. The day is the UTC day of each row's
timestamp (of its receipt, for feedback), so one flush may write into two days.

A logged row:

    request_id, row      String, Int64     the request's id and the row's index in it
    row_id               String            "<request_id>:<row>" (`row_id()`): what feedback names
    timestamp            Datetime(us, UTC) when the request was scored
    model_name, model_version, endpoint    String
    <feature>            one column per model feature, by kind: numeric -> Float64 (numeric strings
                         parsed; unparseable, NaN -> null); categorical -> String (as the model's
                         coercer sees it: True -> "true", 3 -> "3"); datetime -> Datetime(us),
                         naive UTC, parsed as the coercer parses it (unparseable -> null). A feature
                         named like a column above, or starting "proba_" / "input_", is stored as
                         "input_<name>" (`feature_column()`).
    prediction           String for classifiers (`label_text()`), Float64 for regression
    proba_<class>        Float64, one per class (class named by `label_text()`), classifiers only

A feedback row: row_id, request_id, row (null for an opaque row key), label (String,
`label_text()`), timestamp (when the label was observed; its receipt when not sent), received_at.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl

from looml.errors import Problem, RequestError, did_you_mean
from looml.learn.features import category_text
from looml.serve.model import Batch, Prediction
from looml.spec import PredictionLogSpec

__all__ = [
    "FeedbackStore",
    "PredictionLog",
    "RowsToLog",
    "feature_column",
    "feature_frame",
    "join_feedback",
    "label_text",
    "own_names",
    "parse_feedback",
    "read_feedback",
    "read_predictions",
    "row_id",
]

logger = logging.getLogger(__name__)

_META = {"request_id": pl.String, "row": pl.Int64, "row_id": pl.String,
         "timestamp": pl.Datetime("us", "UTC"), "model_name": pl.String, "model_version": pl.String,
         "endpoint": pl.String}
_RESERVED = {*_META, "prediction", "label", "label_timestamp"}
_FEEDBACK = {"row_id": pl.String, "request_id": pl.String, "row": pl.Int64, "label": pl.String,
             "timestamp": pl.Datetime("us", "UTC"), "received_at": pl.Datetime("us", "UTC")}
_FEEDBACK_KEYS = ("row_id", "request_id", "row", "label", "timestamp")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_ROW = 2**63 - 1  # the row column is Int64
_POLL_SECONDS = 0.05  # how often the writer looks at the age of the oldest buffered row


def row_id(request_id: str, row: int) -> str:
    """The key of one served row: what the server answers per row and feedback names."""
    return f"{request_id}:{row}"


def feature_column(name: str) -> str:
    """The log column of feature `name`: the name itself unless it would collide with a log column."""
    if name in _RESERVED or name.startswith(("proba_", "input_")):
        return f"input_{name}"
    return name


def own_names(frame: pl.DataFrame, features: Iterable[str]) -> pl.DataFrame:
    """Logged rows with each of `features` under its own name (see `feature_column`); the
    other columns (the prediction, `proba_*`, request ids) as they are."""
    renames = {feature_column(n): n for n in features if feature_column(n) != n}
    return frame.rename({k: v for k, v in renames.items() if k in frame.columns})


def feature_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The feature columns of logged rows, under their own names (the inverse of `feature_column`)."""
    out = {}
    for name in frame.columns:
        if name in _RESERVED or name.startswith("proba_"):
            continue
        inner = name.removeprefix("input_")
        original = inner if name.startswith("input_") and feature_column(inner) == name else name
        out[name] = original
    return frame.select(list(out)).rename(out)


def label_text(value: Any) -> str | None:
    """A class label or feedback label as text, the same on both sides of the join.

    None / NaN -> None; True -> "true"; 1 and 1.0 -> "1"; strings as they are.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(float(value))
    return str(value.item() if isinstance(value, np.generic) else value)


@dataclass(frozen=True)
class RowsToLog:
    """One scoring call, as the server hands it to the log (references, not copies).

    A call that served several requests (micro-batching) gives their ids and endpoints as
    tuples, in row order, with `request_rows` holding each request's row count.
    """

    request_id: str | tuple[str, ...]
    timestamp: datetime  # UTC; a naive datetime is taken as UTC
    model_name: str
    model_version: str
    endpoint: str | tuple[str, ...]
    features: dict[str, str]  # column -> numeric | categorical | datetime, the model's features
    batch: Batch
    prediction: Prediction
    classes: list[Any] | None = None  # None for regression
    request_rows: tuple[int, ...] = ()

    @property
    def rows(self) -> int:
        """How many rows were scored."""
        return len(self.prediction.labels)

    def callers(self) -> list[tuple[str, str, int]]:
        """(request id, endpoint, rows) of each request served, in row order."""
        if isinstance(self.request_id, str):
            return [(self.request_id, str(self.endpoint), self.rows)]
        endpoints = ((self.endpoint,) * len(self.request_id) if isinstance(self.endpoint, str)
                     else self.endpoint)
        return list(zip(self.request_id, endpoints, self.request_rows, strict=True))


class PredictionLog:
    """Buffers scored requests in memory and writes them to Parquet from a background thread.

    `append` only takes a lock and stores a reference. Rows beyond `spec.max_buffer_rows` (held
    in the buffer or being written) are dropped and counted in `dropped`; `written` counts rows
    on disk. A file is written when `spec.flush_rows` rows are buffered, when the oldest is
    `spec.flush_seconds` old (by `clock`), and on `close()`. `write` puts one frame into an open
    file (tests replace it).
    """

    def __init__(self, root: Path, spec: PredictionLogSpec, *, clock: Callable[[], float] = time.time,
                 write: Callable[[pl.DataFrame, BinaryIO], None] | None = None) -> None:
        self.folder = Path(root) / "predictions"
        self.spec = spec
        self.written = 0
        self.dropped = 0
        self.failed_writes = 0
        self._clock = clock
        self._write = write or _write_parquet
        self._names = _Namer(clock)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._buffer: list[RowsToLog] = []
        self._buffered = 0  # rows in _buffer
        self._held = 0  # rows in _buffer or being written: what max_buffer_rows bounds
        self._oldest: float | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        if spec.enabled:
            self._thread = threading.Thread(target=self._run, name="looml-prediction-log", daemon=True)
            self._thread.start()

    @property
    def buffered(self) -> int:
        """Rows waiting in memory (including a flush in progress)."""
        return self._held

    def append(self, rows: RowsToLog) -> None:
        """Queue one scored request for the log; drop it (counted) when the buffer is full."""
        if self._thread is None:
            return
        n = rows.rows
        with self._lock:
            if self._closed or self._held + n > self.spec.max_buffer_rows:
                self.dropped += n
                return
            self._buffer.append(rows)
            self._buffered += n
            self._held += n
            if self._oldest is None:
                self._oldest = self._clock()
            full = self._buffered >= self.spec.flush_rows
        if full:
            self._wake.set()

    def close(self) -> None:
        """Write everything buffered and stop the writer thread; later calls do nothing."""
        with self._lock:
            self._closed = True
        if self._thread is not None:
            self._wake.set()
            self._thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait(_POLL_SECONDS)
            self._wake.clear()
            with self._lock:
                closing = self._closed
                due = self._buffered > 0 and (
                    closing or self._buffered >= self.spec.flush_rows
                    or self._clock() - (self._oldest or 0.0) >= self.spec.flush_seconds)
                taken: list[RowsToLog] = []
                if due:
                    taken, self._buffer, self._buffered, self._oldest = self._buffer, [], 0, None
            if taken:
                self._flush(taken)
            if closing:
                return

    def _flush(self, taken: list[RowsToLog]) -> None:
        total = sum(item.rows for item in taken)
        done = 0
        try:
            for day, part in _by_day(_frame(taken), "timestamp"):
                _write_atomic(self.folder / f"date={day}", self._names.next(), part, self._write)
                done += part.height
                self.written += part.height
        except Exception:
            # The server must keep serving when the disk is full or a value will not convert.
            logger.exception("prediction log: could not write %d rows under %s", total - done, self.folder)
            with self._lock:
                self.failed_writes += 1
                self.dropped += total - done
        finally:
            with self._lock:
                self._held -= total


class FeedbackStore:
    """Ground-truth labels, written synchronously (feedback is rare), one file per call and day."""

    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(root) / "feedback"
        self._clock = clock
        self._names = _Namer(clock)

    def append(self, records: list[dict[str, Any]]) -> int:
        """Store records as `parse_feedback` returns them; return how many were stored."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        rows = []
        for record in records:
            request, row = record.get("request_id"), record.get("row")
            key = record.get("row_id") or row_id(request, row or 0)
            rows.append({"row_id": key, "request_id": request, "row": row,
                         "label": label_text(record["label"]),
                         "timestamp": _utc(record.get("timestamp") or now), "received_at": now})
        frame = pl.DataFrame(rows, schema=_FEEDBACK) if rows else pl.DataFrame(schema=_FEEDBACK)
        for day, part in _by_day(frame, "received_at"):
            _write_atomic(self.folder / f"date={day}", self._names.next(), part, _write_parquet)
        return frame.height


def parse_feedback(body: bytes) -> list[dict[str, Any]]:
    """Check a feedback body: one record or a list of `{row_id | request_id [+ row], label [, timestamp]}`.

    Returns records with row_id, request_id, row, label and timestamp (a UTC datetime or None).
    Raises `RequestError` (400 for a body that is not JSON, else 422) listing every bad record.
    """
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise RequestError(Problem("body", f"is not valid JSON: {exc}",
                                   fix='send {"row_id": "...", "label": ...} or a list of such objects'),
                           status=400) from exc
    records = [data] if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise RequestError(Problem("body", "must be a feedback object or a list of them",
                                   value=type(data).__name__,
                                   fix='send [{"row_id": "<id from the prediction>", "label": ...}]'),
                           status=422)
    if not records:
        raise RequestError(Problem("body", "holds no feedback records",
                                   fix='send [{"row_id": "<id from the prediction>", "label": ...}]'),
                           status=422)
    problems: list[Problem] = []
    parsed = [_parse_record(f"records[{i}]", record, problems) for i, record in enumerate(records)]
    if problems:
        raise RequestError(problems, status=422)
    return [record for record in parsed if record is not None]


def _parse_record(loc: str, record: Any, problems: list[Problem]) -> dict[str, Any] | None:
    """One feedback record checked; its problems appended to `problems`."""
    if not isinstance(record, dict):
        problems.append(Problem(loc, "must be an object", value=record,
                                fix='write it as {"row_id": "...", "label": ...}'))
        return None
    before = len(problems)
    for key in record:
        if key not in _FEEDBACK_KEYS:
            hint = did_you_mean(str(key), _FEEDBACK_KEYS)
            problems.append(Problem(f"{loc}.{key}", "is not a feedback field", value=key,
                                    fix=hint or f"use only {', '.join(_FEEDBACK_KEYS)}"))
    label = record.get("label")
    if label is None:
        problems.append(Problem(f"{loc}.label", "is missing", fix="add the true label of the row"))
    elif not isinstance(label, str | int | float | bool) or (isinstance(label, float) and
                                                              not math.isfinite(label)):
        problems.append(Problem(f"{loc}.label", "must be a string, a number or a boolean", value=label,
                                fix="send the true class (classifiers) or the true value (regression)"))
    elif isinstance(label, str) and not label.strip():
        problems.append(Problem(f"{loc}.label", "is empty", fix="send the true label of the row"))
    key, request, row = record.get("row_id"), record.get("request_id"), record.get("row")
    for name, value in (("row_id", key), ("request_id", request)):
        if value is not None and (not isinstance(value, str) or not value):
            problems.append(Problem(f"{loc}.{name}", "must be a non-empty string", value=value,
                                    fix=f"send the {name} the prediction response gave"))
    if row is not None and (isinstance(row, bool) or not isinstance(row, int) or not 0 <= row <= _MAX_ROW):
        problems.append(Problem(f"{loc}.row", f"must be an integer >= 0 and <= {_MAX_ROW}", value=row,
                                fix="send the row's index in its request (0 for the first)"))
    if key is None and request is None:
        problems.append(Problem(loc, "has neither row_id nor request_id", fix=(
            'send the "row_id" the prediction response gave, or its "request_id" (and "row" '
            "for a row other than the first)")))
    timestamp = _parse_time(f"{loc}.timestamp", record.get("timestamp"), problems)
    if len(problems) > before:
        return None
    if key is None:
        row = row or 0
        key = row_id(request, row)
    else:
        own_request, own_row = _split_row_id(key)
        if (request is not None and own_request != request) or (row is not None and own_row != row):
            given = ", ".join(f"{name} {value!r}" for name, value in (("request_id", request), ("row", row))
                              if value is not None)
            problems.append(Problem(f"{loc}.row_id", f"does not match {given}", value=key,
                                    fix="send row_id alone"))
            return None
        request, row = own_request, own_row
    return {"row_id": key, "request_id": request, "row": row, "label": label_text(label),
            "timestamp": timestamp}


def _parse_time(loc: str, value: Any, problems: list[Problem]) -> datetime | None:
    """A timestamp sent as ISO 8601 text or epoch seconds, as a UTC datetime."""
    if value is None:
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            return _utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError, OSError):
        pass
    problems.append(Problem(loc, "is not an ISO 8601 time or epoch seconds", value=value,
                            fix='send e.g. "2026-11-22T14:03:00Z", or leave it out for the time received'))
    return None


def _split_row_id(key: str) -> tuple[str | None, int | None]:
    """(request_id, row) of a "<request_id>:<row>" key; (None, None) for any other row key."""
    request, _, row = key.rpartition(":")
    if request and row.isascii() and row.isdigit() and int(row) <= _MAX_ROW:
        return request, int(row)
    return None, None


def read_predictions(root: Path, *, since: datetime | None = None, until: datetime | None = None,
                     last_rows: int | None = None) -> pl.DataFrame:
    """The logged rows with `since <= timestamp < until` (naive datetimes are UTC), oldest first.

    `last_rows` keeps only the newest that many. Only the day folders needed are read; files of
    model versions with other features are joined column-wise (missing columns are null).
    """
    since, until = (_utc(since) if since else None), (_utc(until) if until else None)
    days = [(day, folder) for day, folder in _day_folders(Path(root) / "predictions")
            if (since is None or day >= since.date().isoformat())
            and (until is None or day <= until.date().isoformat())]
    condition = pl.lit(True)
    if since is not None:
        condition &= pl.col("timestamp") >= since
    if until is not None:
        condition &= pl.col("timestamp") < until
    order = ["timestamp", "request_id", "row"]
    if last_rows is None:
        return _scan([folder for _, folder in days], condition).sort(order)
    frames: list[pl.DataFrame] = []
    found = 0
    for _, folder in reversed(days):  # newest day first; stop once enough rows are found
        frame = _scan([folder], condition)
        if frame.height:
            frames.append(frame)
            found += frame.height
        if found >= last_rows:
            break
    frame = _concat(frames[::-1]) if frames else _scan([], condition)
    return frame.sort(order).tail(last_rows)


def read_feedback(root: Path) -> pl.DataFrame:
    """Every stored feedback record, in the order received (corrections come after what they correct)."""
    files = [f for _, folder in _day_folders(Path(root) / "feedback") for f in _parts(folder)]
    if not files:
        return pl.DataFrame(schema=_FEEDBACK)
    return pl.scan_parquet(files, hive_partitioning=False).collect().sort("received_at", maintain_order=True)


def join_feedback(predictions: pl.DataFrame, feedback: pl.DataFrame) -> pl.DataFrame:
    """`predictions` with `label` and `label_timestamp` of the latest feedback on each row (null if none).

    The label is cast to Float64 when the predictions are (regression); a label that is not a
    number becomes null.
    """
    latest = (feedback.sort("received_at", maintain_order=True)
              .unique("row_id", keep="last", maintain_order=True)
              .select("row_id", "label", pl.col("timestamp").alias("label_timestamp")))
    if predictions.schema.get("prediction") == pl.Float64:
        latest = latest.with_columns(pl.col("label").cast(pl.Float64, strict=False))
    return predictions.join(latest, on="row_id", how="left")


def _day_folders(folder: Path) -> list[tuple[str, Path]]:
    """(YYYY-MM-DD, folder) of every date=... partition, oldest first."""
    if not folder.is_dir():
        return []
    return sorted((p.name.removeprefix("date="), p) for p in folder.iterdir()
                  if p.is_dir() and p.name.startswith("date="))


def _parts(folder: Path) -> list[Path]:
    """The complete files of one folder (temporary `.part-*.tmp` files are not matched)."""
    return sorted(folder.glob("part-*.parquet"))


def _scan(folders: Sequence[Path], condition: pl.Expr) -> pl.DataFrame:
    """The rows of every file in `folders` that meet `condition`."""
    files = [f for folder in folders for f in _parts(folder)]
    if not files:
        return pl.DataFrame(schema={**_META, "prediction": pl.String})
    scans = [pl.scan_parquet(f, hive_partitioning=False) for f in files]
    return pl.concat(scans, how="diagonal_relaxed").filter(condition).collect()


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def _utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- building and writing files ------------------------------------------------------------------

class _Namer:
    """Unique file names across processes and logs: time, pid, a random token and a sequence."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._token = secrets.token_hex(4)
        self._seq = itertools.count()

    def next(self) -> str:
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"part-{stamp}-{os.getpid()}-{self._token}-{next(self._seq):06d}.parquet"


def _write_parquet(frame: pl.DataFrame, handle: BinaryIO) -> None:
    frame.write_parquet(handle, compression="zstd", statistics=True)


def _write_atomic(folder: Path, name: str, frame: pl.DataFrame,
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


def _by_day(frame: pl.DataFrame, column: str) -> list[tuple[str, pl.DataFrame]]:
    """`frame` split by the UTC day of `column`, as (YYYY-MM-DD, rows)."""
    if frame.is_empty():
        return []
    days = frame[column].dt.date()
    if days.min() == days.max():
        return [(days[0].isoformat(), frame)]
    parts = frame.with_columns(days.alias("__day")).partition_by("__day", as_dict=True, include_key=False,
                                                                 maintain_order=True)
    return [(key[0].isoformat(), part) for key, part in sorted(parts.items())]


def _frame(taken: list[RowsToLog]) -> pl.DataFrame:
    """The log rows of several requests; requests of the same model layout are built together."""
    groups: dict[tuple[Any, ...], list[RowsToLog]] = {}
    for item in taken:
        classes = None if item.classes is None else tuple(label_text(c) for c in item.classes)
        groups.setdefault((tuple(item.features.items()), classes), []).append(item)
    return _concat([_group_frame(items) for items in groups.values()])


def _group_frame(items: list[RowsToLog]) -> pl.DataFrame:
    """The log rows of requests that share features and classes."""
    callers = [(*caller, (_utc(item.timestamp) - _EPOCH) // timedelta(microseconds=1), item.model_name,
                item.model_version) for item in items for caller in item.callers()]
    meta = pl.DataFrame(callers, schema={"request_id": pl.String, "endpoint": pl.String, "rows": pl.Int64,
                                         "timestamp": pl.Int64, "model_name": pl.String,
                                         "model_version": pl.String}, orient="row")
    counts = meta["rows"].to_numpy()
    which = np.repeat(np.arange(len(callers)), counts)
    meta = meta.drop("rows")[which]
    rows = np.arange(len(which)) - np.repeat(np.cumsum(counts) - counts, counts)
    columns: dict[str, pl.Series] = {}
    for name, kind in items[0].features.items():
        chunks = [item.batch.get(name) for item in items]
        chunks = [[None] * item.rows if chunk is None else chunk for chunk, item in zip(chunks, items,
                                                                                         strict=True)]
        columns[feature_column(name)] = _feature(chunks, kind)
    first = items[0]
    labels = np.concatenate([np.asarray(item.prediction.labels) for item in items])
    if first.classes is None:
        columns["prediction"] = pl.Series(values=labels.astype(np.float64), nan_to_null=True)
    else:
        columns["prediction"] = _texts(labels.tolist(), label_text)
        if all(item.prediction.proba is not None for item in items):
            proba = np.concatenate([np.asarray(item.prediction.proba, dtype=np.float64) for item in items])
            for j, cls in enumerate(first.classes):
                columns[f"proba_{label_text(cls)}"] = pl.Series(proba[:, j])
    return meta.with_columns(
        pl.col("timestamp").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        row=pl.Series(rows, dtype=pl.Int64),
    ).with_columns(
        row_id=pl.concat_str(pl.col("request_id"), pl.lit(":"), pl.col("row").cast(pl.String)),
        **columns,
    ).select(*_META, *columns)


def _feature(chunks: list[Any], kind: str) -> pl.Series:
    """One feature's values over several requests, typed by its kind."""
    if kind == "numeric":
        # One conversion for the whole column: per-request calls dominate with single-row requests.
        if all(isinstance(chunk, np.ndarray) for chunk in chunks):
            joined: Any = np.concatenate(chunks)
        else:
            joined = list(itertools.chain.from_iterable(chunks))
        # nan_to_null in the constructor: Series.fill_nan runs a lazy query per column (0.15 ms each)
        return pl.Series(values=_floats(joined), dtype=pl.Float64, nan_to_null=True)
    values = list(itertools.chain.from_iterable(
        chunk.tolist() if isinstance(chunk, np.ndarray) else chunk for chunk in chunks))
    if kind == "datetime":
        return _datetimes(values)
    return _texts(values, _category_text)


def _floats(values: Any) -> np.ndarray:
    """Numbers as float64; numeric strings parsed; None and anything unparseable -> NaN."""
    try:
        out = np.asarray(values, dtype=np.float64)
        if out.ndim == 1:
            return out
    except (TypeError, ValueError, OverflowError):
        pass
    return np.array([_float(v) for v in values], dtype=np.float64)


def _float(value: Any) -> float:
    try:
        return float(value) if isinstance(value, str | int | float | np.number | np.bool_) else math.nan
    except (ValueError, OverflowError):
        return math.nan


def _category_text(value: Any) -> str | None:
    """A categorical value as the model's coercer turns it into text (missing -> None)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    return category_text(value)


def _texts(values: list[Any], convert: Callable[[Any], str | None]) -> pl.Series:
    """A String series; values that are not all text go through `convert` one by one."""
    try:
        return pl.Series(values, dtype=pl.String)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        return pl.Series([convert(v) for v in values], dtype=pl.String)


def _datetimes(values: list[Any]) -> pl.Series:
    """Datetimes parsed like the model's coercer (pandas, mixed formats), as naive UTC Datetime(us)."""
    import pandas as pd

    parsed = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce", format="mixed", utc=True)
    return pl.Series(parsed.dt.tz_localize(None).to_numpy()).cast(pl.Datetime("us"))
