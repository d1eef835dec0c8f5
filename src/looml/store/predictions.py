"""The prediction log: every row a server scored, written in the background, read by monitoring.

    PredictionLog(root, spec).append(rows)        every scored request; never blocks it
    read_predictions(root, since=..., until=...)  what monitoring reads

Under `root` (the server's `.looml/logs`), `predictions/date=YYYY-MM-DD/part-*.parquet`, written
as `store.logfiles` writes every log file. The day is the UTC day of each row's timestamp, so one
flush may write into two days.

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
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl

from looml.learn.features import category_text, iso_stamps
from looml.spec import PredictionLogSpec
from looml.store.logfiles import Namer, by_day, day_folders, parts, utc, write_atomic, write_parquet

__all__ = ["MAX_ROW", "PredictionLog", "RowsToLog", "feature_column", "feature_frame", "label_text",
           "own_names", "read_predictions", "row_id"]

logger = logging.getLogger(__name__)

_META = {"request_id": pl.String, "row": pl.Int64, "row_id": pl.String,
         "timestamp": pl.Datetime("us", "UTC"), "model_name": pl.String, "model_version": pl.String,
         "endpoint": pl.String}

_RESERVED = {*_META, "prediction", "label", "label_timestamp"}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MAX_ROW = 2**63 - 1  # the row column is Int64

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
    batch: Mapping[str, Any]  # column -> the raw values the request sent (a serve `Batch`)
    prediction: Any  # `labels`, and `proba` (None for regression): a serve `Prediction`
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
        self._write = write or write_parquet
        self._names = Namer(clock)
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

    def flush(self) -> None:
        """Write what is buffered now, in the calling thread (feedback that names a row just served)."""
        with self._lock:
            taken, self._buffer, self._buffered, self._oldest = self._buffer, [], 0, None
        if taken:
            self._flush(taken)

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
            for day, part in by_day(_frame(taken), "timestamp"):
                write_atomic(self.folder / f"date={day}", self._names.next(), part, self._write)
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


def read_predictions(root: Path, *, since: datetime | None = None, until: datetime | None = None,
                     last_rows: int | None = None) -> pl.DataFrame:
    """The logged rows with `since <= timestamp < until` (naive datetimes are UTC), oldest first.

    `last_rows` keeps only the newest that many. Only the day folders needed are read; files of
    model versions with other features are joined column-wise (missing columns are null).
    """
    since, until = (utc(since) if since else None), (utc(until) if until else None)
    days = [(day, folder) for day, folder in day_folders(Path(root) / "predictions")
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


def _scan(folders: Sequence[Path], condition: pl.Expr) -> pl.DataFrame:
    """The rows of every file in `folders` that meet `condition`."""
    files = [f for folder in folders for f in parts(folder)]
    if not files:
        return pl.DataFrame(schema={**_META, "prediction": pl.String})
    scans = [pl.scan_parquet(f, hive_partitioning=False) for f in files]
    return pl.concat(scans, how="diagonal_relaxed").filter(condition).collect()


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def _frame(taken: list[RowsToLog]) -> pl.DataFrame:
    """The log rows of several requests; requests of the same model layout are built together."""
    groups: dict[tuple[Any, ...], list[RowsToLog]] = {}
    for item in taken:
        classes = None if item.classes is None else tuple(label_text(c) for c in item.classes)
        groups.setdefault((tuple(item.features.items()), classes), []).append(item)
    return _concat([_group_frame(items) for items in groups.values()])


def _group_frame(items: list[RowsToLog]) -> pl.DataFrame:
    """The log rows of requests that share features and classes (built eagerly: a lazy query per
    step costs more than the work for one request)."""
    callers = [(*caller, (utc(item.timestamp) - _EPOCH) // timedelta(microseconds=1), item.model_name,
                item.model_version) for item in items for caller in item.callers()]
    request_ids, endpoints, counts, stamps, names, versions = (list(field) for field in zip(*callers,
                                                                                             strict=True))
    sizes = np.asarray(counts, dtype=np.int64)
    which = pl.Series(np.repeat(np.arange(len(callers)), sizes))
    rows = pl.Series(np.arange(len(which)) - np.repeat(np.cumsum(sizes) - sizes, sizes), dtype=pl.Int64)

    def each_row(values: list[Any], dtype: pl.DataType) -> pl.Series:
        return pl.Series(values, dtype=dtype).gather(which)

    request_id = each_row(request_ids, pl.String)
    columns: dict[str, pl.Series] = {
        "request_id": request_id, "row": rows, "row_id": request_id + ":" + rows.cast(pl.String),
        "timestamp": each_row(stamps, pl.Int64).cast(_META["timestamp"]),
        "model_name": each_row(names, pl.String), "model_version": each_row(versions, pl.String),
        "endpoint": each_row(endpoints, pl.String),
    }
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
    return pl.DataFrame([series.alias(name) for name, series in columns.items()])


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
    """Datetimes parsed like the model's coercer (naive ISO text by numpy, else pandas' mixed
    formats), as naive UTC Datetime(us)."""
    import pandas as pd

    stamps = iso_stamps(values)
    if stamps is not None:
        return pl.Series(stamps, dtype=pl.Datetime("us"))
    parsed = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce", format="mixed", utc=True)
    return pl.Series(parsed.dt.tz_localize(None).to_numpy()).cast(pl.Datetime("us"))

