"""Ground-truth labels for served rows: parsed, checked, stored, and joined to the prediction log.

    records = parse_feedback(body)
    check_feedback(records, root)                      every row id logged, every label a class
    FeedbackStore(root).append(records)                written at once (feedback is rare)
    read_feedback(root); join_feedback(predictions, feedback)

Under `root`, `feedback/date=YYYY-MM-DD/part-*.parquet` (the UTC day of receipt), written as
`store.logfiles` writes every log file. A feedback row: row_id, request_id, row (null for an
opaque row key), label (String, `label_text()`), timestamp (when the label was observed; its
receipt when not sent), received_at. A later label for a row corrects an earlier one; a record
`{"row_id": ..., "retract": true}` withdraws the row's label (stored with a null label).

Deprecated, accepted until the next release: `/predict` used to answer each row's id under the
name `request_id` (now `row_id`), so a record `{"request_id": "<request>:<row>", "label": ...}`
(no `row`) that names no logged row as a request id is taken as that row id.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from looml.errors import Problem, RequestError, did_you_mean
from looml.store.logfiles import Namer, by_day, day_folders, parts, utc, write_atomic, write_parquet
from looml.store.predictions import MAX_ROW, label_text, row_id

__all__ = ["FeedbackStore", "check_feedback", "join_feedback", "parse_feedback", "read_feedback"]

_FEEDBACK = {"row_id": pl.String, "request_id": pl.String, "row": pl.Int64, "label": pl.String,
             "timestamp": pl.Datetime("us", "UTC"), "received_at": pl.Datetime("us", "UTC")}


_FEEDBACK_KEYS = ("row_id", "request_id", "row", "label", "timestamp", "retract")
_SHOWN = 20  # unknown row ids named in one problem
_LEGACY = "legacy_row_id"  # a request_id that may be a row id, as /predict named it before


class FeedbackStore:
    """Ground-truth labels, written synchronously (feedback is rare), one file per call and day."""

    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(root) / "feedback"
        self._clock = clock
        self._names = Namer(clock)

    def append(self, records: list[dict[str, Any]]) -> int:
        """Store records as `parse_feedback` returns them; return how many were stored."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        rows = []
        for record in records:
            request, row = record.get("request_id"), record.get("row")
            key = record.get("row_id") or row_id(request, row or 0)
            rows.append({"row_id": key, "request_id": request, "row": row,
                         "label": None if record["label"] is None else label_text(record["label"]),
                         "timestamp": utc(record.get("timestamp") or now), "received_at": now})
        frame = pl.DataFrame(rows, schema=_FEEDBACK) if rows else pl.DataFrame(schema=_FEEDBACK)
        for day, part in by_day(frame, "received_at"):
            write_atomic(self.folder / f"date={day}", self._names.next(), part, write_parquet)
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
    label, retract = record.get("label"), record.get("retract", False)
    if not isinstance(retract, bool):
        problems.append(Problem(f"{loc}.retract", "must be true or false", value=retract,
                                fix='send "retract": true to withdraw the row\'s label'))
    elif retract and label is not None:
        problems.append(Problem(f"{loc}.label", "is given with retract: true", value=label,
                                fix="send the corrected label alone (a later label replaces an earlier "
                                    "one), or retract without a label"))
    elif retract:
        pass
    elif label is None:
        problems.append(Problem(f"{loc}.label", "is missing", fix='add the true label of the row (or '
                                '"retract": true to withdraw one sent before)'))
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
    if row is not None and (isinstance(row, bool) or not isinstance(row, int) or not 0 <= row <= MAX_ROW):
        problems.append(Problem(f"{loc}.row", f"must be an integer >= 0 and <= {MAX_ROW}", value=row,
                                fix="send the row's index in its request (0 for the first)"))
    if key is None and request is None:
        problems.append(Problem(loc, "has neither row_id nor request_id", fix=(
            'send the "row_id" the prediction response gave, or its "request_id" (and "row" '
            "for a row other than the first)")))
    timestamp = _parse_time(f"{loc}.timestamp", record.get("timestamp"), problems)
    if len(problems) > before:
        return None
    legacy = None
    if key is None:
        if row is None and _split_row_id(request)[0] is not None:
            legacy = request
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
    parsed = {"row_id": key, "request_id": request, "row": row,
              "label": None if label is None else label_text(label), "timestamp": timestamp}
    if legacy is not None:
        parsed[_LEGACY] = legacy
    return parsed


def _parse_time(loc: str, value: Any, problems: list[Problem]) -> datetime | None:
    """A timestamp sent as ISO 8601 text or epoch seconds, as a UTC datetime."""
    if value is None:
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            return utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError, OSError):
        pass
    problems.append(Problem(loc, "is not an ISO 8601 time or epoch seconds", value=value,
                            fix='send e.g. "2026-11-22T14:03:00Z", or leave it out for the time received'))
    return None


def _split_row_id(key: str) -> tuple[str | None, int | None]:
    """(request_id, row) of a "<request_id>:<row>" key; (None, None) for any other row key."""
    request, _, row = key.rpartition(":")
    if request and row.isascii() and row.isdigit() and int(row) <= MAX_ROW:
        return request, int(row)
    return None, None


def check_feedback(records: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    """The records to store, each naming a row of the prediction log under `root`.

    Raises `RequestError` (422) naming every record whose row the log does not hold, or whose
    label cannot be a true value of that row: not one of the classes of the model that scored
    it, or not a number for a regressor. A retraction needs only its row. A record that sent a
    row id as `request_id` (the deprecated name) is returned naming that row.
    """
    wanted = {r["row_id"] for r in records} | {r[_LEGACY] for r in records if _LEGACY in r}
    logged = {row["row_id"]: row for row in _logged_rows(root, wanted)}
    records = [_resolved(r, logged) for r in records]
    problems: list[Problem] = []
    unknown = [(i, r["row_id"]) for i, r in enumerate(records) if r["row_id"] not in logged]
    if unknown:
        shown = ", ".join(repr(key) for _, key in unknown[:_SHOWN])
        shown += " ..." if len(unknown) > _SHOWN else ""
        problems.append(Problem(
            f"records[{unknown[0][0]}].row_id" if len(unknown) == 1 else "records",
            f"{len(unknown)} row id(s) not in the prediction log: {shown}", value=unknown[0][1],
            fix="send the row_id (or request_id and row) a prediction answered; a prediction is in the "
                "log within serve.log.flush_seconds of being served (retry after that), and only while "
                "serve.log is enabled"))
    for i, record in enumerate(records):
        row, label = logged.get(record["row_id"]), record["label"]
        if row is None or label is None:
            continue
        if row["classes"] is None:
            try:
                ok = math.isfinite(float(label))
            except ValueError:
                ok = False
            if not ok:
                problems.append(Problem(f"records[{i}].label", "is not a number, and the model that scored "
                                        "this row is a regressor", value=label,
                                        fix="send the true value of the target as a number"))
        elif label not in row["classes"]:
            problems.append(Problem(f"records[{i}].label", f"is not a class of model version "
                                    f"{row['model_version']}, which scored this row", value=label,
                                    fix=f"send one of {', '.join(map(repr, row['classes']))}"))
    if problems:
        raise RequestError(problems, status=422)
    return records


def _resolved(record: dict[str, Any], logged: dict[str, Any]) -> dict[str, Any]:
    """`record` without its legacy key; naming the row its `request_id` is, when only that is logged."""
    legacy = record.get(_LEGACY)
    record = {k: v for k, v in record.items() if k != _LEGACY}
    if legacy is not None and record["row_id"] not in logged and legacy in logged:
        request, row = _split_row_id(legacy)
        record.update(row_id=legacy, request_id=request, row=row)
    return record


def _logged_rows(root: Path, wanted: set[str]) -> list[dict[str, Any]]:
    """row_id, model_version and the classes (None for a regressor) of the logged rows in `wanted`."""
    files = [f for _, folder in day_folders(Path(root) / "predictions") for f in parts(folder)]
    if not files or not wanted:
        return []
    frame = pl.concat([pl.scan_parquet(f, hive_partitioning=False) for f in files], how="diagonal_relaxed") \
        .filter(pl.col("row_id").is_in(list(wanted))).collect()
    probas = [c for c in frame.columns if c.startswith("proba_")]
    regression = frame.schema["prediction"] == pl.Float64
    out = []
    for row in frame.iter_rows(named=True):
        classes = None if regression else [c.removeprefix("proba_") for c in probas if row[c] is not None]
        out.append({"row_id": row["row_id"], "model_version": row["model_version"], "classes": classes})
    return out


def read_feedback(root: Path) -> pl.DataFrame:
    """Every stored feedback record, in the order received (corrections come after what they correct)."""
    files = [f for _, folder in day_folders(Path(root) / "feedback") for f in parts(folder)]
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

