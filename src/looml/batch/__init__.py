"""Batch scoring: stream a file, a glob or any spec source through a registered model.

    predict(spec, data, out) -> PredictResult        (what `looml predict` does)

Rows are read `chunk_rows` at a time, so memory follows the chunk, not the input: local
Parquet files are sliced (`pl.scan_parquet(...).slice`), local CSV and NDJSON files streamed
(`collect_batches`). Everything else is fetched whole, then scored chunk by chunk: SQL, HTTP and
Python sources, remote files, Excel, and CSV files that need a non-UTF-8 encoding or
`skip_bad_lines` (their reader needs the whole file).

Each chunk is checked as the server checks a request (`looml.serve.validation.validate_batch`)
and scored by the same scorer (`looml.serve.model.load_model`; `batch.chunks`). A row that fails is never
scored and never silently dropped: it goes to `reject_file` with its reasons, or, without one,
the run stops naming the rows. Output is written to a hidden file beside `out` as it goes and
renamed onto `out` at the end, so a failed run leaves no half-written output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from looml.batch.chunks import ChunkScorer
from looml.batch.read import read_chunks
from looml.batch.sink import OUTPUTS, Sink
from looml.errors import DataError, Problem, SpecError, did_you_mean
from looml.spec import Spec, load_spec

__all__ = ["PredictResult", "predict"]


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
    `address` (see `looml.batch.ray`), with the same output.
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
    chunks, total, names = read_chunks(source, base_dir, wanted, model.features, chunk_rows, where)
    keys = [c for c in spec.data.id_columns if c in names]
    keep = [c for c in keep if c not in keys]
    _check_kept(keep, names, keys, model.classes)
    sinks = [Sink(out)] + ([Sink(reject)] if reject is not None else [])
    scoring = ChunkScorer(model, spec.data.id_columns, where, has_rejects=reject is not None, keep=keep)
    results: Iterator[tuple[pl.DataFrame, pl.DataFrame]] = (scoring.chunk(chunk) for chunk in chunks)
    if executor == "ray":
        from looml.batch.ray import score_on_ray
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
                if path is not None and path.suffix.lower() not in OUTPUTS]
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


