"""Scoring with a registered model: `predict`, `serve`, `feedback`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.markup import escape

from looml.cli.base import SPEC_OPTION, app, chosen_spec, console, fail, stdout
from looml.errors import LoomlError, Problem, SpecError


@app.command()
def predict(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    spec_option: Path | None = SPEC_OPTION,
    data: str | None = typer.Option(None, "--data", help="The rows to score: a file, glob or URL, or an "
                                    "inline source mapping such as '{kind: sql, url: ..., query: ...}' "
                                    "(default: the spec's data.source)."),
    out: Path = typer.Option(..., "--out", help="Where to write the predictions: *.parquet or *.csv."),
    version: str | None = typer.Option(None, "--version", help="Score with this model version "
                                       "(default: the champion)."),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", help="Rows read and scored at a time; "
                                   "memory follows this, not the input's size."),
    reject_file: Path | None = typer.Option(None, "--reject-file", help="Write rows that fail the input "
                                            "checks here (*.parquet or *.csv) with the reason, and score "
                                            "the rest; without it such rows stop the run."),
    keep_columns: str | None = typer.Option(None, "--keep-columns", help="Input columns to copy into the "
                                            "output beside the row key, comma-separated: "
                                            "--keep-columns region,segment."),
    executor: str = typer.Option("local", "--executor", help="local: score here; ray: score the chunks "
                                 "in parallel Ray tasks (needs the ray extra of looml)."),
    address: str = typer.Option("auto", "--address", help="With --executor ray: the cluster, auto, "
                                "host:6379 or ray://host:10001."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Score a file, glob or source with the champion, in chunks, and write the predictions."""
    spec = chosen_spec(spec, spec_option)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from looml.batch import predict as predict_batch

    bar = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
                   TimeElapsedColumn(), console=console, transient=True, disable=as_json)
    task = bar.add_task("scoring", total=None)

    def progress(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    try:
        with bar:
            result = predict_batch(spec, data, out, version=version, chunk_rows=chunk_rows,
                                   reject_file=reject_file, keep_columns=_names(keep_columns),
                                   on_progress=progress, executor=executor, address=address)
    except LoomlError as exc:
        fail(exc, as_json)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    output = stdout()
    for warning in result.warnings:
        output.print(f"[yellow]warning[/]: {escape(warning)}", highlight=False)
    output.print(f"scored {result.scored} of {result.rows} rows with {escape(result.model_name)} version "
                 f"{escape(result.model_version)} ({escape(result.scorer)}) in {result.seconds:.1f}s "
                 f"({result.rows_per_second:,.0f} rows/s)", highlight=False)
    output.print(f"wrote   {escape(result.out)}", soft_wrap=True, highlight=False)
    if result.rejected:
        output.print(f"[yellow]rejected[/] {result.rejected} rows that fail the input checks, with the "
                     f"reason: {escape(result.reject_file or '')}", soft_wrap=True, highlight=False)


def _names(text: str | None) -> list[str]:
    """'a, b' -> ['a', 'b']; raises SpecError for an empty name ('a,,b')."""
    if text is None:
        return []
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise SpecError(Problem(loc="--keep-columns", value=text, message="has an empty column name",
                                fix="separate the names by single commas: --keep-columns region,segment"))
    return names


@app.command()
def serve(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    spec_option: Path | None = SPEC_OPTION,
    host: str | None = typer.Option(None, "--host", help="Bind address (default: serve.host, 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default: serve.port, 8080)."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (default: serve.workers)."),
    version: str | None = typer.Option(None, "--version", help="Serve this version (default: the "
                                       "champion, followed when the alias moves)."),
) -> None:
    """Serve the registered model over REST: Open Inference Protocol v2, MLflow scoring, /predict."""
    spec = chosen_spec(spec, spec_option)
    from looml.serve.server import check_port, check_servable
    from looml.serve.server import serve as run_server

    try:
        check_servable(spec, version)
        check_port(spec, host, port)
    except LoomlError as exc:
        fail(exc, as_json=False)
    run_server(spec, host=host, port=port, workers=workers, version=version)


@app.command()
def feedback(
    data: Path = typer.Argument(..., help="CSV, Parquet or NDJSON with row_id (or request_id and row), "
                                "label, and optionally timestamp."),
    spec: Path = typer.Option(Path("looml.yaml"), "--spec", "-s", help="Path to looml.yaml."),
) -> None:
    """Store ground-truth labels for served predictions (as POST /feedback does)."""
    import orjson

    from looml.data.sources.files import read_files
    from looml.spec import FileSource, load_spec
    from looml.store.feedback import FeedbackStore, check_feedback, parse_feedback

    try:
        loaded = load_spec(spec)
        frame, _ = read_files(FileSource(path=str(data.resolve())), Path.cwd())
        records = parse_feedback(orjson.dumps(frame.to_dicts(), option=orjson.OPT_NAIVE_UTC))
        logs = loaded.project_dir / ".looml" / "logs"
        stored = FeedbackStore(logs).append(check_feedback(records, logs))
    except LoomlError as exc:
        fail(exc, as_json=False)
    console.print(f"stored {stored} label(s)")
