"""Batch scoring: stream a file, a glob or any spec source through a registered model.

    predict(spec, data, out) -> PredictResult        (what `looml predict` does)

Rows are read `chunk_rows` at a time, so memory follows the chunk, not the input: local
Parquet files are sliced (`pl.scan_parquet(...).slice`), local CSV and NDJSON files streamed
(`collect_batches`). Everything else is fetched whole, then scored chunk by chunk: SQL, HTTP and
Python sources, remote files, Excel, and CSV files that need a non-UTF-8 encoding or
`skip_bad_lines` (their reader needs the whole file).

Each chunk is checked as the server checks a request (`looml.serve.validation.validate_batch`)
and scored by the same scorer (`looml.serve.model.load_model`). A row that fails is never
scored and never silently dropped: it goes to `reject_file` with its reasons, or, without one,
the run stops naming the rows. Output is written to a hidden file beside `out` as it goes and
renamed onto `out` at the end, so a failed run leaves no half-written output.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import polars as pl

from looml.errors import DataError, Problem, RequestError, SpecError, did_you_mean
from looml.spec import FileSource, Spec, load_spec

__all__ = ["PredictResult", "predict"]

_OUTPUTS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
# The null markers of the training reader (looml.data.sources.files), so a CSV scores as it trained.
_CSV_NULLS = ["", "NA", "N/A", "NaN", "null"]
_ROW_BY_ROW = 64  # a failing group of at most this many rows is checked one row at a time
_SHOWN = 5  # rows named in one message
_WARNINGS = 10  # distinct warnings kept in the result
_ROWS_NAMED = re.compile(r"\brows?\s+(\d+(?:,\s*\d+)*)")
_COLUMN = re.compile(r"^columns\.(.+?) rows? \d")  # validation's loc: "columns.age rows 3, 7 and 2 more"
_ROWS_PART = re.compile(r"\s*\(?\brows?\s+\d+(?:,\s*\d+)*(?:\s+and\s+\d+\s+more)?\)?")
_ROW_COUNT = re.compile(r"\s*\(\d+ rows?\)$")  # "not a number: 'abc' (1 row)": said of one row, redundant


@dataclass
class PredictResult:
    """What a batch scoring run read, scored, rejected and wrote."""

    source: str
    out: str
    rows: int
    scored: int
    rejected: int
    reject_file: str | None
    model_name: str
    model_version: str
    scorer: str
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        """Rows read per second of the whole run (model loading included)."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}


def predict(spec: Spec | str | Path, data: str | None, out: str | Path, *, version: str | None = None,
            chunk_rows: int = 100_000, reject_file: str | Path | None = None,
            keep_columns: Sequence[str] = (),
            on_progress: Callable[[int, int | None], None] | None = None, executor: str = "local",
            address: str = "auto") -> PredictResult:
    """Score every row of `data` with the champion (or `version`) and write the predictions to `out`.

    `data` takes the forms of `looml validate --data` (a file, glob or URL, or an inline YAML
    source mapping; relative paths start at the working directory); None scores the spec's own
    `data.source`. `out` is Parquet or CSV by extension, with the row key (the spec's
    `data.id_columns` found in the input, else `row`, the 0-based input row), `prediction` and,
    for classifiers, `proba_<class>` per class; `keep_columns` are input columns copied beside
    the key, as read (a CSV's feature columns as text). Rows that fail validation go to
    `reject_file` (Parquet or CSV: the key and the kept columns, `reason`, and the row's other
    feature values as text); without one, the first chunk with such rows stops the run with a
    `DataError` naming them. `on_progress(rows done, rows in all or None)` is called after each
    chunk. A kept column the input lacks, or named like an output column, is a `SpecError`
    before any row is scored. `executor="ray"` scores the chunks in Ray tasks on the cluster at
    `address` (see `looml.batchray`), with the same output.
    """
    from looml.data.sources import describe
    from looml.datasets import parse_source
    from looml.serve.model import load_model
    from looml.store.connect import local_tracking_uri

    started = time.perf_counter()
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    if executor not in ("local", "ray"):
        raise SpecError(Problem(loc="--executor", value=executor, message="unknown executor",
                                fix=did_you_mean(executor, ["local", "ray"]) or "use local or ray"))
    out = Path(out)
    reject = Path(reject_file) if reject_file is not None else None
    _check_paths(out, reject, chunk_rows)
    if data is None:
        source, base_dir, where = spec.data.source, spec.project_dir, "data.source"
    else:
        source, base_dir, where = parse_source(data), Path.cwd(), "--data"
    tracking_uri = local_tracking_uri(spec.tracking.uri, spec.project_dir)
    model = load_model(tracking_uri, spec.registry.model_name, version)
    keep = list(dict.fromkeys(keep_columns))
    wanted = list(dict.fromkeys([*model.features, *spec.data.id_columns, *keep]))
    chunks, total, names = _read(source, base_dir, wanted, model.features, chunk_rows, where)
    keys = [c for c in spec.data.id_columns if c in names]
    keep = [c for c in keep if c not in keys]
    _check_kept(keep, names, keys, model.classes)
    sinks = [_Sink(out)] + ([_Sink(reject)] if reject is not None else [])
    scoring = _Scoring(model, spec.data.id_columns, where, has_rejects=reject is not None, keep=keep)
    results: Iterator[tuple[pl.DataFrame, pl.DataFrame]] = (scoring.chunk(chunk) for chunk in chunks)
    if executor == "ray":
        from looml.batchray import score_on_ray
        from looml.executors.ray import connect

        settings = {"id_columns": spec.data.id_columns, "where": where, "has_rejects": reject is not None,
                    "keep": keep}
        results = score_on_ray(chunks, connect(address, ("--executor", "--address")),
                               (tracking_uri, model.name, model.version), settings, scoring.merge)
    try:
        for scored, rejected in results:
            sinks[0].write(scored)
            if reject is not None:
                sinks[1].write(rejected)
            if on_progress is not None:
                on_progress(scoring.rows, total)
        if scoring.rows == 0:
            raise DataError(Problem(loc=where, value=describe(source), message="the input has no rows",
                                    fix="point it at data with rows"))
        for sink in sinks:
            sink.commit()
    except BaseException:
        for sink in sinks:
            sink.discard()
        raise
    return PredictResult(source=describe(source), out=str(out), rows=scoring.rows,
                         scored=scoring.rows - scoring.rejected, rejected=scoring.rejected,
                         reject_file=str(reject) if reject is not None else None, model_name=model.name,
                         model_version=model.version, scorer=model.scorer.name,
                         seconds=time.perf_counter() - started, warnings=scoring.warnings())


def _check_paths(out: Path, reject: Path | None, chunk_rows: int) -> None:
    problems = [_format_problem(path, loc) for path, loc in ((out, "--out"), (reject, "--reject-file"))
                if path is not None and path.suffix.lower() not in _OUTPUTS]
    if reject is not None and reject.resolve() == out.resolve():
        problems.append(Problem(loc="--reject-file", value=str(reject), message="the same file as --out",
                                fix="write the rejected rows to a file of their own"))
    if chunk_rows < 1:
        problems.append(Problem(loc="--chunk-rows", value=chunk_rows, message="must be at least 1",
                                fix="pass a number of rows such as 100000"))
    if problems:
        raise SpecError(problems)


def _check_kept(keep: list[str], names: list[str], keys: list[str], classes: list[Any] | None) -> None:
    """Raise `SpecError` naming every kept column the input lacks or the output already has."""
    taken = {"prediction", *(keys or ["row"]), *(f"proba_{c}" for c in classes or [])}
    problems = []
    for name in keep:
        if name in taken:
            problems.append(Problem(loc="--keep-columns", value=name, message="is a column the output "
                                    "already has", fix="rename it in the input, or leave it out"))
        elif name not in names:
            hint = did_you_mean(name, names)
            shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            problems.append(Problem(loc="--keep-columns", value=name, message="is not a column of the input",
                                    fix=f"{hint + ' ' if hint else ''}the input has: {shown}"))
    if problems:
        raise SpecError(problems)


def _format_problem(path: Path, loc: str) -> Problem:
    return Problem(loc=loc, value=str(path), message="cannot tell the output format from the extension",
                   fix="name the file *.parquet or *.csv")


# --- reading ------------------------------------------------------------------------------------

def _read(source: Any, base_dir: Path, wanted: list[str], features: dict[str, str], chunk_rows: int,
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


# --- scoring ------------------------------------------------------------------------------------

class _Scoring:
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

    def merge(self, part: _Scoring) -> None:
        """Take in the counts and warnings of the next chunk, scored elsewhere (a Ray task) by a
        `_Scoring` that started at this one's row count."""
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


# --- writing ------------------------------------------------------------------------------------

class _Sink:
    """Frames appended to a hidden file beside `path`; `commit` renames it onto `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = _OUTPUTS[path.suffix.lower()]
        self.partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        self._writer: Any = None
        self._schema: Any = None
        self._handle: Any = None

    def write(self, frame: pl.DataFrame) -> None:
        """Append the rows of `frame` (the first frame fixes the columns and their types)."""
        if self.format == "csv":
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.partial, "wb")  # noqa: SIM115 - closed by commit / discard
                frame.write_csv(self._handle)
            else:
                frame.write_csv(self._handle, include_header=False)
            return
        import pyarrow.parquet as pq

        table = frame.to_arrow()
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.partial, table.schema)
        elif table.schema != self._schema:  # e.g. an id column that is all null in a later chunk
            table = table.cast(self._schema)
        self._writer.write_table(table)

    def commit(self) -> None:
        """Close the file and move it onto `path`."""
        self._close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        """Close and delete the partial file."""
        self._close()
        self.partial.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None
