"""The `looml` command line: parse, call one library function, print.

Exit codes: 0 success, 1 unexpected error, 2 invalid spec or usage, 3 invalid data,
4 evaluation gate failed, 5 registry / tracking error; `looml loop`: 6 drift, a performance
drop or invalid served rows found, 7 a retrain was due and failed; `looml monitor`: 6 drift
(`monitor.drift.exit_code`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from looml.errors import DataError, GateError, LoomlError, Problem, RegistryError, ServeError, SpecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="looml: declarative, cached, reproducible ML pipelines for tabular data.")
console = Console(stderr=True)
_EXIT = {SpecError: 2, DataError: 3, GateError: 4, RegistryError: 5, ServeError: 8}


def _version(value: bool) -> None:
    if value:
        from looml import __version__

        typer.echo(f"looml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Print looml's version and exit.")) -> None:
    """looml: declarative, cached, reproducible ML pipelines for tabular data."""


def _fail(exc: LoomlError, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(exc.to_dict(), indent=2) + "\n")
    else:
        console.print(f"[bold red]error[/]: {escape(exc.render())}", highlight=False, soft_wrap=True)
    raise typer.Exit(_EXIT.get(type(exc), 1))


@app.command()
def run(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    force: bool = typer.Option(False, "--force", help="Ignore the cache and re-run every stage."),
    snapshot: str | None = typer.Option(None, "--snapshot", help="Re-run on a stored data snapshot "
                                        "(a digest or its first characters; see `looml data`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Run the pipeline: ingest, validate, split, train, evaluate, report, register."""
    from looml.pipeline import run as run_pipeline

    progress = _StageProgress(enabled=not as_json)
    try:
        with progress:
            result = run_pipeline(spec, force=force, snapshot=snapshot, on_start=progress.start,
                                  on_finish=progress.finish)
    except LoomlError as exc:
        _fail(exc, as_json)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        return
    _print_summary(result, spec)


@app.command()
def validate(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    data: str | None = typer.Option(None, "--data", help="Check this batch (a file, glob or URL, or "
                                    "an inline source mapping such as '{kind: sql, url: ..., query: "
                                    "...}') against the champion's schema instead."),
    version: str | None = typer.Option(None, "--version", help="With --data: the model version whose "
                                       "schema to use (default: the champion)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Check the spec and the data as `looml run` does before training (ingest, profile, validate,
    split and its skew check), without training anything."""
    from looml.pipeline import check

    if data is not None:
        _validate_batch(spec, data, version, as_json)
        return
    try:
        result = check(spec)
    except LoomlError as exc:
        _fail(exc, as_json)
    report, prof = result.report, result.profile
    if as_json:
        out = {"task": report.task, "data_digest": result.data_digest, **report.to_dict(),
               "profile": prof.to_dict()}
        sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        return
    out_console = _stdout()
    table = Table(title=f"{prof.rows} rows; task: {report.task} ({report.task_reason})")
    for name, justify in (("column", "left"), ("role", "left"), ("dtype", "left"),
                          ("missing", "right"), ("distinct", "right"), ("note", "left")):
        table.add_column(name, justify=justify)
    for col in prof.columns:
        role = ("target" if col.name == report.target
                else report.features.get(col.name, "dropped"))
        table.add_row(escape(col.name), role, col.dtype, f"{col.missing_rate(prof.rows):.1%}",
                      str(col.n_unique), escape(report.dropped.get(col.name, "")))
    out_console.print(table)
    for warning in report.warnings:
        out_console.print(f"[yellow]warning[/]: {escape(warning)}", highlight=False)
    out_console.print("[green]valid[/]: the spec and the data are ready for `looml run`")


def _validate_batch(spec: Path, data: str, version: str | None, as_json: bool) -> None:
    from looml.datasets import validate_batch

    try:
        result = validate_batch(spec, data, version)
    except LoomlError as exc:
        _fail(exc, as_json)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        out = _stdout()
        out.print(f"{result.rows} rows from {escape(result.source)}, checked against the schema of "
                  f"{escape(result.schema_origin)}", highlight=False)
        if result.anomalies:
            table = Table(title=f"{len(result.anomalies)} anomalies")
            for name in ("severity", "column", "check", "observed", "expected"):
                table.add_column(name)
            for a in result.anomalies:
                colour = "red" if a.severity == "error" else "yellow"
                table.add_row(f"[{colour}]{a.severity}[/]", escape(a.column or "(table)"), a.check,
                              escape(a.observed), escape(a.expected))
            out.print(table)
            for a in result.anomalies:
                out.print(f"[dim]fix for {escape(a.column or 'the table')} ({a.check}):[/] {escape(a.fix)}",
                          highlight=False)
        if not result.errors:
            out.print("[green]valid[/]: no anomaly of severity error")
    if result.errors:
        if not as_json:
            console.print(f"[bold red]error[/]: {len(result.errors)} anomalies of severity error")
        raise typer.Exit(_EXIT[DataError])


@app.command()
def predict(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
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
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Score a file, glob or source with the champion, in chunks, and write the predictions."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from looml.batchpredict import predict as predict_batch

    bar = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
                   TimeElapsedColumn(), console=console, transient=True, disable=as_json)
    task = bar.add_task("scoring", total=None)

    def progress(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    try:
        with bar:
            result = predict_batch(spec, data, out, version=version, chunk_rows=chunk_rows,
                                   reject_file=reject_file, on_progress=progress)
    except LoomlError as exc:
        _fail(exc, as_json)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    output = _stdout()
    for warning in result.warnings:
        output.print(f"[yellow]warning[/]: {escape(warning)}", highlight=False)
    output.print(f"scored {result.scored} of {result.rows} rows with {escape(result.model_name)} version "
                 f"{escape(result.model_version)} ({escape(result.scorer)}) in {result.seconds:.1f}s "
                 f"({result.rows_per_second:,.0f} rows/s)", highlight=False)
    output.print(f"wrote   {escape(result.out)}", soft_wrap=True, highlight=False)
    if result.rejected:
        output.print(f"[yellow]rejected[/] {result.rejected} rows that fail the input checks, with the "
                     f"reason: {escape(result.reject_file or '')}", soft_wrap=True, highlight=False)


@app.command()
def serve(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    host: str | None = typer.Option(None, "--host", help="Bind address (default: serve.host, 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default: serve.port, 8080)."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (default: serve.workers)."),
    version: str | None = typer.Option(None, "--version", help="Serve this version (default: the "
                                       "champion, followed when the alias moves)."),
) -> None:
    """Serve the registered model over REST: Open Inference Protocol v2, MLflow scoring, /predict."""
    from looml.serve.server import check_port, check_servable
    from looml.serve.server import serve as run_server

    try:
        check_servable(spec, version)
        check_port(spec, host, port)
    except LoomlError as exc:
        _fail(exc, as_json=False)
    run_server(spec, host=host, port=port, workers=workers, version=version)


@app.command()
def data(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    as_json: bool = typer.Option(False, "--json", help="Print the snapshots as JSON on stdout."),
) -> None:
    """List the data snapshots (data versions) and the runs and model versions that used each."""
    from dataclasses import asdict

    from looml.datasets import snapshots

    try:
        entries = snapshots(spec)
    except LoomlError as exc:
        _fail(exc, as_json)
    if as_json:
        sys.stdout.write(json.dumps([asdict(e) for e in entries], indent=2) + "\n")
        return
    out = _stdout()
    if not entries:
        out.print("no snapshots yet: `looml run` or `looml validate` ingests the data")
        return
    table = Table(title="Data snapshots, newest first (re-run one with `looml run --snapshot DIGEST`)")
    for name, justify in (("digest", "left"), ("source", "left"), ("rows", "right"),
                          ("columns", "right"), ("first seen", "left"), ("used by", "left")):
        table.add_column(name, justify=justify)
    for e in entries:
        used = ", ".join(f"{u['model']} v{u['version']} (run {u['run_id'][:8]})" for u in e.used_by) or "-"
        table.add_row(e.digest[:12], escape(e.source), str(e.rows), str(len(e.columns)),
                      e.first_seen[:19].replace("T", " "), escape(used))
    out.print(table)


@app.command()
def init(
    data: Path = typer.Option(..., "--data", help="A CSV, Parquet or NDJSON file."),
    target: str = typer.Option(..., "--target", help="The column to predict."),
    out: Path = typer.Option(Path("looml.yaml"), "--out", help="Where to write the spec."),
    name: str | None = typer.Option(None, "--name", help="Registered model name (default: file stem)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing spec."),
) -> None:
    """Write a commented starter looml.yaml with the task and column roles inferred."""
    from looml.scaffold import init_spec

    try:
        path = init_spec(data, target, out, model_name=name, overwrite=force)
    except LoomlError as exc:
        _fail(exc, as_json=False)
    console.print(f"wrote [bold]{path}[/]; next: [bold]looml run {path}[/]")


@app.command()
def schema() -> None:
    """Print the JSON Schema of looml.yaml (for editor completion)."""
    from looml.spec import spec_json_schema

    sys.stdout.write(json.dumps(spec_json_schema(), indent=2) + "\n")


@app.command()
def loop(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    watch: bool = typer.Option(False, "--watch", help="Keep running, one cycle every loop.interval."),
    retrain: bool = typer.Option(False, "--retrain", help="Retrain and compare even if no trigger fired."),
    as_json: bool = typer.Option(False, "--json", help="Print each cycle as JSON on stdout."),
) -> None:
    """Watch the champion: drift, live performance, alerts; retrain and promote only a better model.

    One cycle, then exit (cron-friendly): 0 nothing alarming, 6 drift, a performance drop or invalid
    served rows were found (and acted on), 7 a retrain was due and failed.
    """
    from looml.monitor.loop import cycle
    from looml.monitor.loop import watch as watch_loop

    if watch:
        try:
            watch_loop(spec, on_cycle=lambda r: _print_cycle(r, as_json))
        except LoomlError as exc:
            _fail(exc, as_json)
        return
    try:
        result = cycle(spec, retrain=retrain)
    except LoomlError as exc:
        _fail(exc, as_json)
    _print_cycle(result, as_json)
    raise typer.Exit(7 if result.retrain_failed else 6 if result.alarmed else 0)


def _print_cycle(result: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), default=str) + "\n")
        return
    out = _stdout()
    out.print(f"[bold]{escape(result.model_name)}[/] champion v{result.champion}: {result.rows} served rows "
              f"in the window, {result.labelled} labelled")
    if result.drift is not None:
        drifted = ", ".join(result.drift.get("drifted", [])) or "none"
        found = result.drift.get("dataset_drift") or result.drift.get("prediction_drift")
        out.print(f"  drift: {'[red]yes[/]' if found else 'no'} (drifted columns: {escape(drifted)}; "
                  f"model outputs: {'drifted' if result.drift.get('prediction_drift') else 'steady'})")
    if result.performance is not None:
        _print_performance(out, result.performance)
    for problem in result.validation_errors:
        out.print(f"  [red]invalid served rows[/]: {escape(problem)}")
    out.print(f"  triggers: {', '.join(result.triggers) or 'none'}")
    if result.decision is not None:
        d = result.decision
        out.print(f"  decision: [bold]{d['action']}[/] (champion v{d['champion_after']}): "
                  f"{escape(d['reason'])}")
    for alert in result.alerts:
        out.print(f"  alert {alert['kind']}: {escape(alert['message'])} ({alert['outcome']})")


def _print_performance(out: Console, perf: dict[str, Any]) -> None:
    value = "-" if perf["value"] is None else f"{perf['value']:.4g}"
    interval = "" if perf["interval"] is None else f" [{perf['interval'][0]:.4g}, {perf['interval'][1]:.4g}]"
    holdout = "-" if perf["reference"] is None else f"{perf['reference']:.4g}"
    verdict = f"[red]{perf['verdict']}[/]" if perf["dropped"] else perf["verdict"]
    estimate = perf.get("estimate") or {}
    guess = (f"; {estimate['rows']} unlabelled rows: estimated accuracy {estimate['accuracy']:.3g}"
             if estimate else "")
    out.print(f"  live {perf['metric']}: {value}{interval} on {perf['labelled']} labelled rows (holdout "
              f"{holdout}): {verdict}{guess}", highlight=False)


models_app = typer.Typer(no_args_is_help=True, help="Registered model versions: list, show, promote, "
                         "rollback, history.")
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON on stdout."),
) -> None:
    """Every version, newest first, with its aliases and holdout metrics."""
    from looml.spec import load_spec
    from looml.store.registry import versions
    from looml.store.tracking import local_tracking_uri

    try:
        loaded = load_spec(spec)
        uri = local_tracking_uri(loaded.tracking.uri, loaded.project_dir)
        found = versions(uri, loaded.registry.model_name)
    except LoomlError as exc:
        _fail(exc, as_json)
    if as_json:
        sys.stdout.write(json.dumps([v.to_dict() for v in found], indent=2) + "\n")
        return
    table = Table(title=f"{loaded.registry.model_name}: versions, newest first")
    for name in ("version", "aliases", "created", "model", "holdout metrics", "data"):
        table.add_column(name)
    for v in found:
        metrics = ", ".join(f"{k} {val:.4g}" for k, val in sorted(v.metrics.items()))
        table.add_row(v.version, ", ".join(v.aliases), v.created.replace("T", " "), v.best_model, metrics,
                      v.data_digest[:12])
    _stdout().print(table)


@models_app.command("show")
def models_show(
    version: str = typer.Argument(..., help="The version."),
    spec: Path = typer.Option(Path("looml.yaml"), "--spec", help="Path to looml.yaml."),
) -> None:
    """One version's aliases, metrics and lineage, as JSON."""
    from looml.spec import load_spec
    from looml.store.registry import version_info
    from looml.store.tracking import local_tracking_uri

    try:
        loaded = load_spec(spec)
        info = version_info(local_tracking_uri(loaded.tracking.uri, loaded.project_dir),
                            loaded.registry.model_name, version)
    except LoomlError as exc:
        _fail(exc, as_json=True)
    sys.stdout.write(json.dumps(info.to_dict(), indent=2) + "\n")


@models_app.command("promote")
def models_promote(
    version: str = typer.Argument(..., help="The version to make champion."),
    spec: Path = typer.Option(Path("looml.yaml"), "--spec", help="Path to looml.yaml."),
    reason: str = typer.Option("promoted by hand", "--reason", help="Why, for the history."),
) -> None:
    """Make a version the champion now (recorded in the history; a server follows)."""
    from looml.monitor.loop import promote

    try:
        decision = promote(spec, version, reason=reason)
    except LoomlError as exc:
        _fail(exc, as_json=False)
    console.print(f"champion: v{decision.champion_before} -> [bold]v{decision.champion_after}[/]")


@models_app.command("rollback")
def models_rollback(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
) -> None:
    """Restore the champion that the latest promotion replaced."""
    from looml.monitor.loop import rollback

    try:
        decision = rollback(spec)
    except LoomlError as exc:
        _fail(exc, as_json=False)
    console.print(f"champion: v{decision.champion_before} -> [bold]v{decision.champion_after}[/] "
                  f"({escape(decision.reason)})")


@models_app.command("history")
def models_history(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON on stdout."),
) -> None:
    """Every promote / keep / rollback decision, oldest first, with its reason and evidence."""
    from looml.monitor.loop import history

    try:
        decisions = history(spec)
    except LoomlError as exc:
        _fail(exc, as_json)
    if as_json:
        sys.stdout.write(json.dumps([d.to_dict() for d in decisions], indent=2, default=str) + "\n")
        return
    table = Table(title="Champion decisions, oldest first")
    for name in ("at", "action", "champion", "challenger", "triggers", "by", "reason"):
        table.add_column(name)
    for d in decisions:
        champion = (f"v{d.champion_before} -> v{d.champion_after}" if d.champion_before != d.champion_after
                    else f"v{d.champion_after}")
        table.add_row(d.at.replace("T", " "), d.action, champion, f"v{d.challenger}" if d.challenger else "-",
                      ", ".join(d.triggers) or "-", d.by, escape(d.reason))
    _stdout().print(table)


@app.command()
def feedback(
    data: Path = typer.Argument(..., help="CSV, Parquet or NDJSON with row_id (or request_id and row), "
                                "label, and optionally timestamp."),
    spec: Path = typer.Option(Path("looml.yaml"), "--spec", help="Path to looml.yaml."),
) -> None:
    """Store ground-truth labels for served predictions (as POST /feedback does)."""
    import orjson

    from looml.data.sources.files import read_files
    from looml.serve.predlog import FeedbackStore, parse_feedback
    from looml.spec import FileSource, load_spec

    try:
        loaded = load_spec(spec)
        frame, _ = read_files(FileSource(path=str(data.resolve())), Path.cwd())
        records = parse_feedback(orjson.dumps(frame.to_dicts(), option=orjson.OPT_NAIVE_UTC))
        stored = FeedbackStore(loaded.project_dir / ".looml" / "logs").append(records)
    except LoomlError as exc:
        _fail(exc, as_json=False)
    console.print(f"stored {stored} label(s)")


@app.command()
def monitor(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    data: str | None = typer.Option(None, "--data", help="Check these rows (a file, glob or URL, or an "
                                    "inline source mapping) instead of the prediction log."),
    last: str | None = typer.Option(None, "--last", help="The prediction log of the last 30m / 24h / 7d "
                                    "(the default: 24h)."),
    rows: int | None = typer.Option(None, "--rows", help="The newest N rows of the prediction log."),
    since: str | None = typer.Option(None, "--since", help="The log from this time on (ISO 8601; UTC "
                                     "unless it says otherwise)."),
    until: str | None = typer.Option(None, "--until", help="The log before this time (ISO 8601)."),
    version: str | None = typer.Option(None, "--version", help="Compare with this model version's "
                                       "reference (default: the champion)."),
    out: Path | None = typer.Option(None, "--out", help="Folder for the JSON and HTML reports "
                                    "(default: .looml/monitor)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Detect drift of new data against the champion's training data; exit 6 on drift."""
    from looml.monitor.api import monitor as check_drift

    try:
        result = check_drift(spec, data=data, last=last, rows=rows, since=_moment("--since", since),
                             until=_moment("--until", until), version=version, out_dir=out)
    except LoomlError as exc:
        _fail(exc, as_json)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    else:
        _print_drift(result)
    raise typer.Exit(result.exit_code)


def _moment(option: str, text: str | None) -> Any:
    from datetime import datetime

    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise SpecError(Problem(loc=option, value=text, message="not a date or time",
                                fix="write it as 2026-01-31 or 2026-01-31T08:00")) from exc


def _print_drift(result: Any) -> None:
    out, report = _stdout(), result.report
    table = Table(title=f"Drift of {escape(result.source)} against {escape(result.model_name)} version "
                        f"{escape(result.model_version)}")
    for name, justify in (("column", "left"), ("type", "left"), ("method", "left"), ("statistic", "right"),
                          ("p-value", "right"), ("threshold", "right"), ("missing ref → cur", "right"),
                          ("new", "right"), ("drift", "left")):
        table.add_column(name, justify=justify)
    for c in [*report.columns, *report.predictions]:
        table.add_row(escape(c.column), c.treated_as, c.method or "-", _num(c.statistic), _num(c.p_value),
                      _num(c.threshold), f"{c.reference_missing_rate:.1%} → {c.current_missing_rate:.1%}",
                      "-" if c.new_category_share is None else f"{c.new_category_share:.1%}",
                      f"[red]{', '.join(c.signals)}[/]" if c.drifted else "[green]no[/]")
    out.print(table)
    for note in report.notes:
        out.print(f"[dim]note:[/] {escape(note)}", highlight=False)
    verdict = "[red]dataset drift[/]" if report.dataset_drift else "[green]no dataset drift[/]"
    predicted = ("" if report.prediction_drift is None else
                 f"; prediction drift: {'[red]yes[/]' if report.prediction_drift else '[green]no[/]'}")
    out.print(f"{verdict}: {report.share:.0%} of the columns drifted (threshold {report.drift_share:.0%})"
              f"{predicted}", highlight=False)
    if result.performance is not None:
        _print_performance(out, result.performance.to_dict())
    out.print(f"json    {result.json_path}", soft_wrap=True, highlight=False)
    out.print(f"html    {result.html_path}", soft_wrap=True, highlight=False)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


class _StageProgress:
    """One spinner line per stage, replaced by its outcome when it finishes."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._status: Any = None

    def __enter__(self) -> _StageProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def start(self, name: str) -> None:
        if self.enabled:
            self._status = console.status(f"[bold]{name}[/] ...")
            self._status.start()

    def finish(self, record: Any) -> None:
        if not self.enabled:
            return
        if self._status is not None:
            self._status.stop()
            self._status = None
        mark = "[green]ran[/]" if record.status == "ran" else "[dim]cached[/]"
        console.print(f"  {record.name:<9} {mark} {record.seconds:6.2f}s  [dim]{record.reason}[/]")


def _stdout() -> Console:
    # Piped output (logs, CI) is not cut to 80 columns: tables keep every metric readable.
    return Console() if sys.stdout.isatty() else Console(width=160)


def _print_summary(result: Any, spec: Path) -> None:
    out = _stdout()
    for warning in result.warnings:
        out.print(f"[yellow]warning[/]: {warning}", highlight=False)
    primary = result.primary_metric
    others = [m for m in result.leaderboard[0]["mean"] if m != primary]
    board = Table(title=f"Leaderboard: CV mean on the training split (± std for {primary})")
    board.add_column("#", justify="right")
    board.add_column("model")
    board.add_column(primary, justify="right", style="bold", no_wrap=True)
    for m in others:
        board.add_column(m, justify="right")
    board.add_column("seconds", justify="right")
    for i, row in enumerate(result.leaderboard[:10], 1):  # every trial is in the report and MLflow
        if row["error"]:
            board.add_row(str(i), row["name"], f"[red]{row.get('state', 'failed')}: {row['error'][:80]}[/]",
                          *[""] * len(others), f"{row['fit_seconds']:.1f}")
            continue
        board.add_row(str(i), row["name"], f"{row['mean'][primary]:.4f} ± {row['std'][primary]:.4f}",
                      *[f"{row['mean'][m]:.4f}" for m in others], f"{row['fit_seconds']:.1f}")
    out.print(board)
    test = Table(title=f"Holdout metrics ({result.best_model})")
    for m in result.metrics:
        test.add_column(m, justify="right")
    test.add_row(*[f"{v:.4f}" for v in result.metrics.values()])
    out.print(test)
    alias = " (alias: champion)" if result.champion else ""
    out.print(f"model   [bold]{result.model_name}[/] version {result.model_version}{alias}  "
              f"{result.model_uri}")
    if not result.champion:
        from looml.store.tracking import champion_version

        held = champion_version(result.tracking_uri, result.model_name)
        out.print(f"        v{held} stays champion (a new version never takes the alias by itself); "
                  f"make this one champion with: looml models promote {result.model_version} --spec {spec}",
                  soft_wrap=True, highlight=False)
    out.print(f"report  {result.report_path}", soft_wrap=True)
    out.print(f"mlflow  mlflow ui --backend-store-uri {result.tracking_uri}", soft_wrap=True)


def main() -> None:
    """Entry point for `python -m looml`."""
    app()
