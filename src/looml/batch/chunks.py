"""Scoring a batch chunk by chunk: validate as the server does, set bad rows aside with their
reasons, score the rest, and keep the running counts and warnings.

    ChunkScorer(model, id_columns, where, has_rejects, keep).chunk(frame) -> (scored, rejected)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from looml.errors import DataError, Problem, RequestError

__all__ = ["ChunkScorer"]

_ROW_BY_ROW = 64  # a failing group of at most this many rows is checked one row at a time
_SHOWN = 5  # rows named in one message
_WARNINGS = 10  # distinct warnings kept in the result
_ROWS_NAMED = re.compile(r"\brows?\s+(\d+(?:,\s*\d+)*)")
_COLUMN = re.compile(r"^columns\.(.+?) rows? \d")  # validation's loc: "columns.age rows 3, 7 and 2 more"
_ROWS_PART = re.compile(r"\s*\(?\brows?\s+\d+(?:,\s*\d+)*(?:\s+and\s+\d+\s+more)?\)?")
_ROW_COUNT = re.compile(r"\s*\(\d+ rows?\)$")  # "not a number: 'abc' (1 row)": said of one row, redundant



class ChunkScorer:
    """Chunk after chunk: validate, set bad rows aside, score the rest; keeps the running counts."""

    def __init__(self, model: Any, id_columns: list[str], where: str, has_rejects: bool,
                 keep: list[str]) -> None:
        self.model = model
        self.id_columns = id_columns
        self.keep = keep
        self.where = where
        self.has_rejects = has_rejects
        self.rows = 0
        self.rejected = 0
        self.keys: list[str] | None = None
        self._warnings: dict[str, None] = {}
        self._more_warnings = 0
        label = pl.Series(model.classes).dtype if model.classes is not None else pl.Float64
        self._label_dtype = pl.String if label == pl.Object else label

    def chunk(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The scored rows of one chunk, and its rejected rows (key, reason, feature values as text)."""
        if self.keys is None:
            self.keys = [c for c in self.id_columns if c in frame.columns]
        n, start = frame.height, self.rows
        batch = _batch(frame, self.model.features)
        bad = self._failing(batch, n, start)
        if bad and not self.has_rejects:
            raise _rejected_error(bad, start, self.where)
        good = np.setdiff1d(np.arange(n), np.fromiter(bad, dtype=np.int64, count=len(bad)))
        if bad and good.size:
            self._warn(start, n, self._validate(_take(batch, good)))
        keys = self._key(frame, start)
        if self.keep:
            keys = keys.hstack(frame.select(self.keep))
        scored = self._scored(keys, batch if not bad else _take(batch, good), good, n)
        rows = np.fromiter(sorted(bad), dtype=np.int64, count=len(bad))
        features = [c for c in self.model.features if c in frame.columns and c not in self.keep]
        rejected = pl.concat([keys[rows], pl.DataFrame({"reason": [_reason(bad[r]) for r in rows.tolist()]},
                                                       schema={"reason": pl.String}),
                              frame[rows].select(pl.col(features).cast(pl.String))], how="horizontal")
        self.rows += n
        self.rejected += len(bad)
        return scored, rejected

    def merge(self, part: ChunkScorer) -> None:
        """Take in the counts and warnings of the next chunk, scored elsewhere (a Ray task) by a
        `ChunkScorer` that started at this one's row count."""
        self.rows, self.keys = part.rows, part.keys
        self.rejected += part.rejected
        for text in part._warnings:
            if len(self._warnings) < _WARNINGS:
                self._warnings[text] = None
            elif text not in self._warnings:
                self._more_warnings += 1
        self._more_warnings += part._more_warnings

    def warnings(self) -> list[str]:
        """The first distinct warnings, each with the rows of the chunk it came from."""
        more = [f"... and {self._more_warnings} more warnings"] if self._more_warnings else []
        return list(self._warnings) + more

    def _validate(self, batch: dict[str, np.ndarray]) -> list[str]:
        from looml.serve.validation import validate_batch

        return validate_batch(batch, self.model, max(len(v) for v in batch.values()) if batch else 1)

    def _failing(self, batch: dict[str, np.ndarray], n: int, start: int) -> dict[int, list[Problem]]:
        try:
            self._warn(start, n, self._validate(batch))
            return {}
        except RequestError as exc:
            general = [p for p in exc.problems if not _ROWS_NAMED.search(p.loc)]
            if general:
                # A problem that names no row (a missing column) holds for every row: it stops the run.
                raise DataError([Problem(loc=f"{self.where} {p.loc}", message=p.message, value=p.value,
                                         fix=p.fix) for p in general]) from exc
            # Every failing column is named at once, so the search for the bad rows checks only
            # those columns, against the same model narrowed to them.
            named = {m.group(1) for p in exc.problems if (m := _COLUMN.match(p.loc))}
            model = self.model
            if named and named <= batch.keys():
                model = replace(model, features={c: k for c, k in model.features.items() if c in named})
                batch = {c: batch[c] for c in model.features}
            return _failing_rows(batch, n, exc.problems, lambda rows: self._row_problems(rows, model))

    def _row_problems(self, batch: dict[str, np.ndarray], model: Any) -> list[Problem]:
        from looml.serve.validation import validate_batch

        try:
            validate_batch(batch, model, len(next(iter(batch.values()))))
        except RequestError as exc:
            return exc.problems
        return []

    def _warn(self, start: int, n: int, warnings: list[str]) -> None:
        for warning in warnings:
            text = f"rows {start}-{start + n - 1}: {_ROWS_PART.sub('', warning)}"
            if len(self._warnings) < _WARNINGS:
                self._warnings[text] = None
            elif text not in self._warnings:
                self._more_warnings += 1

    def _key(self, frame: pl.DataFrame, start: int) -> pl.DataFrame:
        missing = [c for c in self.keys or [] if c not in frame.columns]
        if missing:
            raise DataError(Problem(loc=self.where, value=", ".join(missing),
                                    message=f"the id column(s) are absent from the rows from {start} on, "
                                            "but present before",
                                    fix="give every input file the same id columns (data.id_columns)"))
        missing = [c for c in self.keep if c not in frame.columns]
        if missing:
            raise DataError(Problem(loc=self.where, value=", ".join(missing),
                                    message=f"the kept column(s) are absent from the rows from {start} on, "
                                            "but present before",
                                    fix="give every input file the columns of --keep-columns, or leave "
                                        "those out"))
        if self.keys:
            return frame.select(self.keys)
        return pl.DataFrame({"row": np.arange(start, start + frame.height, dtype=np.int64)})

    def _scored(self, keys: pl.DataFrame, batch: dict[str, np.ndarray], good: np.ndarray,
                n: int) -> pl.DataFrame:
        keys = keys if good.size == n else keys[good]
        classes = self.model.classes
        if good.size == 0:
            labels: Any = []
            proba = np.zeros((0, len(classes or [])))
        else:
            prediction = self.model.predict(batch)
            labels, proba = prediction.labels, prediction.proba
        columns = [pl.Series("prediction", labels, dtype=self._label_dtype, strict=False)]
        if classes is not None and proba is not None:
            columns += [pl.Series(f"proba_{c}", proba[:, i], dtype=pl.Float64) for i, c in enumerate(classes)]
        return keys.with_columns(columns)


def _batch(frame: pl.DataFrame, features: dict[str, str]) -> dict[str, np.ndarray]:
    """The model's columns of a chunk as numpy arrays, numbers and dates typed when the text allows.

    A text column the model reads as numbers (or dates) becomes a float (datetime) array when every
    value converts; otherwise it stays text, and validation names the values that are not numbers
    (or dates, or dates whose day and month can be swapped: Polars would read them by the first
    value's order, silently).
    """
    from looml.learn.features import ambiguous_date

    batch: dict[str, np.ndarray] = {}
    for name, kind in features.items():
        if name not in frame.columns:
            continue
        series = frame.get_column(name)
        if series.dtype == pl.String and kind in ("numeric", "datetime"):
            if kind == "datetime" and any(map(ambiguous_date, series.drop_nulls().unique().to_list())):
                batch[name] = series.to_numpy()
                continue
            try:
                converted = (series.cast(pl.Float64, strict=False) if kind == "numeric"
                             else series.str.to_datetime(strict=False))
            except pl.exceptions.PolarsError:  # no date format fits every value: validation names them
                converted = series
            if converted.null_count() == series.null_count():
                series = converted
        elif kind == "numeric" and series.dtype.is_decimal():  # numpy would hold Decimal objects
            series = series.cast(pl.Float64)
        batch[name] = series.to_numpy()
    return batch


def _take(batch: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in batch.items()}


def _failing_rows(batch: dict[str, np.ndarray], n: int, problems: list[Problem],
                  check: Callable[[dict[str, np.ndarray]], list[Problem]]) -> dict[int, list[Problem]]:
    """The rows of a batch that failed as a whole which fail on their own, each with its problems.

    Validation names at most a few rows per problem, so the named rows are checked one by one
    and the remaining rows together; a group that still fails is halved until its rows are few
    enough to check one by one. With k bad rows among n, that is about k + 2 log2(n) checks when
    the bad rows are few, and never more than a row-by-row pass over the rows of failing groups.
    """
    bad: dict[int, list[Problem]] = {}
    pending: list[tuple[np.ndarray, list[Problem] | None, bool]] = [(np.arange(n), problems, True)]
    while pending:
        rows, found, peel = pending.pop()
        if found is None:
            found = check(_take(batch, rows))
        if not found:
            continue
        if rows.size == 1:
            bad[int(rows[0])] = found
            continue
        if rows.size <= _ROW_BY_ROW:
            pending += [(rows[i:i + 1], None, False) for i in range(rows.size)]
            continue
        named = sorted({int(r) for p in found for m in _ROWS_NAMED.finditer(p.loc)
                        for r in m.group(1).split(",") if int(r) < rows.size}) if peel else []
        if named:
            pending += [(rows[i:i + 1], None, False) for i in named]
            pending.append((np.delete(rows, named), None, False))
        else:
            half = rows.size // 2
            pending += [(rows[:half], None, True), (rows[half:], None, True)]
    return bad


def _reason(problems: list[Problem]) -> str:
    """One row's problems as one line: 'columns.age: not a number: 'abc' (1 row); ...'."""
    return "; ".join(f"{_ROWS_PART.sub('', p.loc)}: {_ROW_COUNT.sub('', p.message)}" for p in problems)


def _rejected_error(bad: dict[int, list[Problem]], start: int, where: str) -> DataError:
    rows = sorted(bad)
    groups: dict[tuple[str, str], tuple[list[int], str]] = {}
    for row in rows:
        for p in bad[row]:
            key = (_ROWS_PART.sub("", p.loc), _ROW_COUNT.sub("", p.message))
            groups.setdefault(key, ([], p.fix))[0].append(row)
    fail = "fails" if len(rows) == 1 else "fail"
    problems = [Problem(loc=where, message=f"{_listed(rows, start)} {fail} the model's input checks; "
                                           "nothing was written",
                        fix="fix those rows, or pass --reject-file FILE (.parquet or .csv) to write them "
                            "there with the reason and score the rest")]
    problems += [Problem(loc=f"{loc} {_listed(at, start)}", message=message, fix=fix)
                 for (loc, message), (at, fix) in groups.items()]
    return DataError(problems)


def _listed(rows: list[int], start: int) -> str:
    """'row 3' or 'rows 3, 9, 12 and 4 more', counted in the whole input."""
    more = f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else ""
    return f"row{'s' if len(rows) > 1 else ''} " + ", ".join(str(start + r) for r in rows[:_SHOWN]) + more


