"""Request validation: a batch checked against the served model's schema before it is scored.

    validate_batch(batch, model, max_rows) -> warnings     raises RequestError (422, or 413)

Problems refuse the request (422), every one listed by column and rows (counted from 0):
- a feature column the model needs is absent (with a did-you-mean against the request's
  columns); a column the schema marks `required: false` may be absent (a warning: every
  row then counts as missing);
- a numeric column holds values that are not numbers (numeric strings such as "3.5" are
  numbers, as the pipeline's SchemaCoercer reads them);
- a datetime column holds values that are not dates (ISO 8601, or any text pandas parses);
- infinity in a numeric column, whatever the schema says: no model here can use it;
- a missing value (null, NaN; "" in numeric and datetime columns) where the schema says
  `nullable: false` (training saw no gap there);
- times with different UTC offsets, or with and without one, in one datetime column (the
  pipeline's pandas parser refuses to combine them);
- columns of different lengths, or no rows. More than `max_rows` rows: 413, at once.
Warnings (the request is still scored): categories outside the schema's `categories`,
numbers outside its `min` .. `max`, columns the schema does not know (they are ignored).

Small batches are checked value by value in plain Python (numpy's per-call cost is larger
than the work for one row), large ones with numpy over whole columns.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from looml.errors import Problem, RequestError, did_you_mean
from looml.learn.features import ambiguous_date, category_text
from looml.serve.model import Batch, ServedModel
from looml.serve.wire import plain_list

__all__ = ["validate_batch"]

_SMALL = 64  # rows up to which a column is scanned in Python rather than numpy
_SHOWN = 5  # rows or values named in one message; the rest are counted
_INF = math.inf


@dataclass(frozen=True)
class _Column:
    """What one feature column may hold, from the model's features and schema."""

    name: str
    kind: str  # numeric | categorical | text | datetime
    required: bool
    nullable: bool
    low: float | None
    high: float | None
    domain: frozenset[str] | None
    booleans: bool = True  # a numeric feature that was boolean in training takes true / false
    earliest: datetime | None = None  # datetime columns, naive UTC
    latest: datetime | None = None


@dataclass
class _Findings:
    """What a scan of one column found: rows, and (row, value) pairs where the value tells."""

    bad: list[tuple[int, Any]]
    missing: list[int]
    infinite: list[tuple[int, Any]]
    outside: list[tuple[int, Any]]


def validate_batch(batch: Batch, model: ServedModel, max_rows: int) -> list[str]:
    """Check `batch` against `model`'s features and schema; return warnings, raise on problems.

    Raises `RequestError` with status 413 when the batch has more than `max_rows` rows, and
    with status 422 listing every problem (see the module docstring) otherwise.
    """
    lengths = {name: len(values) for name, values in batch.items()}
    rows = max(lengths.values(), default=0)
    if rows > max_rows:
        raise RequestError(Problem(loc="rows", message=f"{rows} rows, more than the server's limit of "
                                   f"{max_rows}", fix=f"send at most {max_rows} rows per request, or raise "
                                   "serve.max_rows in looml.yaml"), status=413)
    columns, known = _plan(model)
    problems: list[Problem] = []
    warnings: list[str] = []
    uneven = len(set(lengths.values())) > 1
    if uneven:
        problems.append(Problem(loc="columns", message="the columns have different numbers of rows: "
                                + ", ".join(f"{k} {n}" for k, n in lengths.items()),
                                fix="send every column with one value per row"))
    elif rows == 0:
        problems.append(Problem(loc="rows", message="the request has no rows",
                                fix="send at least one row with the model's feature columns"))
    extras = [name for name in batch if name not in known]
    for col in columns:
        values = batch.get(col.name)
        if values is None:
            if col.required:
                problems.append(_absent(col, extras))
            else:
                warnings.append(f"columns.{col.name}: absent; every row counts as missing")
        elif not uneven:
            read = _CHECKS[col.kind](col, values, problems, warnings)
            if read is not None:
                batch[col.name] = read  # the column as numbers once: the scorer and the log reuse them
    if extras:
        shown = extras[:_SHOWN_EXTRAS]
        more = f" and {len(extras) - len(shown)} more" if len(extras) > len(shown) else ""
        warnings.append(f"column{_s(extras)} {', '.join(map(repr, shown))}{more}: not in the model's "
                        "schema; ignored" + "".join(f" ({e!r}: {hint})" for e in shown
                                                    if (hint := did_you_mean(e, [c.name for c in columns]))))
    if problems:
        raise RequestError(problems, status=422)
    return warnings


# A request's unknown columns named in a warning, and searched for a misspelt feature: a typo is
# among a few; 100,000 unknown keys cost seconds of difflib per missing feature.
_SHOWN_EXTRAS = 20
_HINTED_EXTRAS = 1_000


def _absent(col: _Column, extras: list[str]) -> Problem:
    close = [e for e in extras[:_HINTED_EXTRAS] if did_you_mean(e, [col.name])]
    fix = (f"the request has {close[0]!r}: rename it to {col.name!r}" if close
           else f"add the column {col.name!r} (null where a value is unknown)")
    return Problem(loc=f"columns.{col.name}", message=f"missing: the model needs this {col.kind} feature",
                   fix=fix)


# ---------------------------------------------------------------------------------------------
# numeric


def _check_numeric(col: _Column, values: Sequence[Any] | np.ndarray, problems: list[Problem],
                   warnings: list[str]) -> np.ndarray | None:
    """Check one numeric column; a large list of plain numbers and nulls comes back as float64
    (nulls as NaN), the array the checks read."""
    read = None
    if isinstance(values, np.ndarray) or len(values) <= _SMALL:
        booleans = _has_booleans(values)
    else:
        types = set(map(type, values))  # one pass in C, not a Python loop per value
        booleans = bool in types or np.bool_ in types
        if types <= {int, float, type(None)}:
            with contextlib.suppress(OverflowError):  # an integer past float64's range: the scan names it
                read = np.array(values, dtype=np.float64)
    if not col.booleans and booleans:
        flagged = [(row, v) for row, v in enumerate(plain_list(values)) if isinstance(v, bool | np.bool_)]
        problems.append(_problem(col, flagged, "a boolean, not a number (the column held numbers in "
                                 "training)", "send the number itself, or null where it is unknown"))
    found = (_scan_numeric(values, col.low, col.high) if read is None
             else _scan_numeric_array(read, col.low, col.high, values))
    if found.bad:
        problems.append(_problem(col, found.bad, "not a number",
                                 'send numbers (or numeric strings such as "3.5"), null where missing'))
    if found.infinite:
        problems.append(_problem(col, found.infinite, "infinite, which no model can use",
                                 "send a finite number, or null where the value is unknown"))
    _check_missing(col, found.missing, problems)
    if found.outside:
        low = "-inf" if col.low is None else _number(col.low)
        high = "inf" if col.high is None else _number(col.high)
        warnings.append(_warning(col, found.outside, f"outside the schema's range {low} to {high}"))
    return read


def _has_booleans(values: Sequence[Any] | np.ndarray) -> bool:
    if isinstance(values, np.ndarray):
        return values.dtype.kind == "b" or (values.dtype == object and _has_booleans(values.tolist()))
    kinds = set(map(type, values))  # one pass in C, not a Python loop per value
    return bool in kinds or np.bool_ in kinds


def _scan_numeric(values: Sequence[Any] | np.ndarray, low: float | None, high: float | None) -> _Findings:
    if isinstance(values, np.ndarray):
        kind = values.dtype.kind
        if kind in "iubf" and len(values) > _SMALL:
            return _scan_numeric_array(values, low, high)
        if kind in "mM":
            return _Findings(bad=list(enumerate(values.tolist())), missing=[], infinite=[], outside=[])
        values = values.tolist()
    if len(values) > _SMALL:
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            pass  # some value is not a number: the scan below names it
        else:
            return _scan_numeric_array(array, low, high, values)
    found = _Findings(bad=[], missing=[], infinite=[], outside=[])
    for row, value in enumerate(values):
        kind = type(value)
        if kind is float or kind is int or kind is bool:
            x = value
        elif value is None:
            found.missing.append(row)
            continue
        elif kind is str:
            text = value.strip()
            if not text:
                found.missing.append(row)
                continue
            try:
                x = float(text)
            except ValueError:
                found.bad.append((row, value))
                continue
        elif isinstance(value, int | float | np.number | np.bool_):
            x = float(value)
        else:
            found.bad.append((row, value))
            continue
        if x != x:
            found.missing.append(row)
        elif x == _INF or x == -_INF:
            found.infinite.append((row, value))
        elif (low is not None and x < low) or (high is not None and x > high):
            found.outside.append((row, value))
    return found


def _scan_numeric_array(array: np.ndarray, low: float | None, high: float | None,
                        original: Sequence[Any] | None = None) -> _Findings:
    found = _Findings(bad=[], missing=[], infinite=[], outside=[])
    shown = original if original is not None else array

    def pairs(mask: np.ndarray) -> list[tuple[int, Any]]:
        return [(int(r), _plain(shown[r])) for r in np.flatnonzero(mask)]

    if array.dtype.kind == "f" and not np.isfinite(array).all():
        found.missing = np.flatnonzero(np.isnan(array)).tolist()
        found.infinite = pairs(np.isinf(array))
    if low is not None or high is not None:
        with np.errstate(invalid="ignore"):
            outside = np.zeros(len(array), dtype=bool)
            if low is not None:
                outside |= array < low
            if high is not None:
                outside |= array > high
            outside &= np.isfinite(array) if array.dtype.kind == "f" else True
        if outside.any():
            found.outside = pairs(outside)
    return found


# ---------------------------------------------------------------------------------------------
# categorical


def _check_categorical(col: _Column, values: Sequence[Any] | np.ndarray, problems: list[Problem],
                       warnings: list[str]) -> None:
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if len(values) > _SMALL and _clean_categories(col, values):
        return
    bad: list[tuple[int, Any]] = []
    missing: list[int] = []
    unknown: list[tuple[int, Any]] = []
    domain = col.domain
    for row, value in enumerate(values):
        kind = type(value)
        if kind is str:
            if domain is not None and value not in domain:
                unknown.append((row, value))
        elif value is None or (kind is float and value != value):
            missing.append(row)
        elif kind is list or kind is dict:
            bad.append((row, value))
        elif domain is not None and category_text(value) not in domain:
            unknown.append((row, value))
    if bad:
        problems.append(_problem(col, bad, "a list or object, not one value",
                                 "send one text per row" if col.kind == "text" else
                                 "send one category (a string) per row"))
    _check_missing(col, missing, problems)
    if unknown:
        values_seen = list(dict.fromkeys(v for _, v in unknown))
        warnings.append(f"columns.{col.name}: {len(unknown)} row{_s(unknown)} with categories the "
                        f"schema does not list: {_values(values_seen)} "
                        f"(row{_s(unknown)} {_rows([r for r, _ in unknown])}); "
                        "the model scores them as an unknown category")


def _clean_categories(col: _Column, values: Sequence[Any]) -> bool:
    """True when the distinct values alone show there is nothing to report (the large-batch path)."""
    try:
        distinct = set(values)
    except TypeError:  # an unhashable value (a list or an object): the scan names it
        return False
    gaps = [v for v in distinct if v is None or (type(v) is float and v != v)]
    if gaps and not col.nullable:
        return False
    return col.domain is None or all(type(v) is str and v in col.domain for v in distinct
                                     if not (v is None or (type(v) is float and v != v)))




# ---------------------------------------------------------------------------------------------
# datetime


def _check_datetime(col: _Column, values: Sequence[Any] | np.ndarray, problems: list[Problem],
                    warnings: list[str]) -> None:
    bounded = col.earliest is not None or col.latest is not None
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        _check_missing(col, np.flatnonzero(np.isnat(values)).tolist(), problems)
        if bounded:
            stamps = values.astype("datetime64[us]")
            outside = np.zeros(len(stamps), dtype=bool)
            if col.earliest is not None:
                outside |= stamps < np.datetime64(col.earliest, "us")
            if col.latest is not None:
                outside |= stamps > np.datetime64(col.latest, "us")
            _warn_outside(col, [(int(r), str(stamps[r])) for r in np.flatnonzero(outside)], warnings)
        return
    if isinstance(values, np.ndarray):
        values = values.tolist()
    missing: list[int] = []
    bad: list[tuple[int, Any]] = []
    unparsed: list[tuple[int, str]] = []
    ambiguous: list[tuple[int, str]] = []
    outside: list[tuple[int, Any]] = []
    known: dict[str, datetime | None] = {}  # text -> its moment (naive UTC) if it is ISO 8601
    for row, value in enumerate(values):
        kind = type(value)
        moment: datetime | None = None
        if kind is str:
            if value in known:
                moment = known[value]
            else:
                moment = known[value] = _iso_moment(value)
            if moment is None:
                if ambiguous_date(value):
                    ambiguous.append((row, value))
                elif value.strip():
                    unparsed.append((row, value))
                else:
                    missing.append(row)
        elif value is None or (kind is float and value != value):
            missing.append(row)
        elif isinstance(value, datetime | date):
            moment = _naive_utc(value)
        elif not isinstance(value, np.datetime64):
            bad.append((row, value))
        if bounded and moment is not None and ((col.earliest is not None and moment < col.earliest)
                                               or (col.latest is not None and moment > col.latest)):
            outside.append((row, value))
    if unparsed:
        bad += _unparseable(unparsed)
    if bad:
        problems.append(_problem(col, sorted(bad, key=lambda p: p[0]), "not a date",
                                 'send dates as ISO 8601 text, such as "2024-05-01" or '
                                 '"2024-05-01T12:30:00", null where missing'))
    if ambiguous:
        readings = ambiguous_date(ambiguous[0][1]) or ("", "")
        problems.append(_problem(col, ambiguous, "a date whose day and month can be swapped (the first: "
                                 f"{readings[0]} month first, {readings[1]} day first)",
                                 'send dates as ISO 8601 text (year-month-day, such as "2024-05-01"), '
                                 "which has one reading"))
    _check_missing(col, missing, problems)
    _warn_outside(col, outside, warnings)


def _warn_outside(col: _Column, outside: list[tuple[int, Any]], warnings: list[str]) -> None:
    if outside:
        low = "any date" if col.earliest is None else _day(col.earliest)
        high = "any later date" if col.latest is None else _day(col.latest)
        warnings.append(_warning(col, outside, f"outside the schema's range {low} to {high}"))


def _day(moment: datetime) -> str:
    return moment.isoformat(sep=" ").removesuffix(" 00:00:00")


def _naive_utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _iso_moment(text: str) -> datetime | None:
    """The moment ISO 8601 text names, as naive UTC, or None when it is not ISO 8601."""
    try:
        return _naive_utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def _unparseable(found: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The values pandas cannot read as dates either (the pipeline parses with pandas, in UTC)."""
    import pandas as pd

    parsed = pd.to_datetime(pd.Series([v for _, v in found], dtype=object), errors="coerce",
                            format="mixed", utc=True)
    return [pair for pair, stamp in zip(found, parsed.isna().tolist(), strict=True) if stamp]


# ---------------------------------------------------------------------------------------------
# shared


def _check_missing(col: _Column, missing: list[int], problems: list[Problem]) -> None:
    if missing and not col.nullable:
        problems.append(Problem(loc=f"columns.{col.name} row{_s(missing)} {_rows(missing)}",
                                message=f"{len(missing)} missing value{_s(missing)}, and the schema says "
                                        "`nullable: false` (training saw no gap in this column)",
                                fix="send a value in every row"))


def _problem(col: _Column, found: list[tuple[int, Any]], what: str, fix: str) -> Problem:
    return Problem(loc=f"columns.{col.name} row{_s(found)} {_rows([r for r, _ in found])}",
                   message=f"{what}: {_values([v for _, v in found])} ({len(found)} row{_s(found)})",
                   fix=fix)


def _warning(col: _Column, found: list[tuple[int, Any]], what: str) -> str:
    return (f"columns.{col.name}: {len(found)} row{_s(found)} {what}: {_values([v for _, v in found])} "
            f"(row{_s(found)} {_rows([r for r, _ in found])})")


def _rows(rows: list[int]) -> str:
    more = f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else ""
    return ", ".join(map(str, rows[:_SHOWN])) + more


def _values(values: list[Any]) -> str:
    more = f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else ""
    return ", ".join(repr(v) for v in values[:_SHOWN]) + more


def _s(items: Sequence[Any]) -> str:
    return "s" if len(items) != 1 else ""


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


_CHECKS = {"numeric": _check_numeric, "categorical": _check_categorical, "text": _check_categorical,
           "datetime": _check_datetime}


# The plan of a model (its columns' checks) is built once per loaded model, keyed by identity:
# ServedModel is not hashable, and a hot swap loads a new object.
_PLANS: dict[int, tuple[weakref.ref[ServedModel], tuple[_Column, ...], frozenset[str]]] = {}


def _plan(model: ServedModel) -> tuple[tuple[_Column, ...], frozenset[str]]:
    key = id(model)
    entry = _PLANS.get(key)
    if entry is not None and entry[0]() is model:
        return entry[1], entry[2]
    schema = model.schema.columns if model.schema is not None else {}
    columns = []
    for name, kind in model.features.items():
        col = schema.get(name)
        columns.append(_Column(
            name=name, kind=kind if kind in _CHECKS else "categorical",
            required=col.required if col is not None else True,
            nullable=col.nullable if col is not None else True,
            low=col.min if col is not None and kind == "numeric" else None,
            high=col.max if col is not None and kind == "numeric" else None,
            domain=frozenset(col.categories) if col is not None and col.categories is not None
            and kind == "categorical" else None,
            booleans=col is None or col.type == "boolean",
            earliest=col.earliest if col is not None and kind == "datetime" else None,
            latest=col.latest if col is not None and kind == "datetime" else None))
    plan = tuple(columns), frozenset(model.features) | frozenset(schema)
    _PLANS[key] = (weakref.ref(model, lambda _, key=key: _PLANS.pop(key, None)), *plan)
    return plan
