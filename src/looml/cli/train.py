"""Training a project: `run`, `validate`, `init`, `data`, `schema`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from looml.cli.base import (
    EXIT,
    SPEC_OPTION,
    app,
    chosen_spec,
    console,
    exit_promptly_on_interrupt,
    fail,
    stdout,
)
from looml.errors import DataError, LoomlError


@app.command()
def run(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    spec_option: Path | None = SPEC_OPTION,
    force: bool = typer.Option(False, "--force", help="Ignore the cache and re-run every stage."),
    snapshot: str | None = typer.Option(None, "--snapshot", help="Re-run on a stored data snapshot "
                                        "(a digest or its first characters; see `looml data`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Run the pipeline: ingest, validate, split, train, evaluate, report, register."""
    spec = chosen_spec(spec, spec_option)
    from looml.pipeline import run as run_pipeline

    progress = _StageProgress(enabled=not as_json)
    try:
        with exit_promptly_on_interrupt(), progress:
            result = run_pipeline(spec, force=force, snapshot=snapshot, on_start=progress.start,
                                  on_finish=progress.finish)
    except LoomlError as exc:
        fail(exc, as_json)
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]: stopped (the finished stages are cached)")
        raise typer.Exit(130) from None
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        return
    _print_summary(result, spec)


@app.command()
def validate(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    spec_option: Path | None = SPEC_OPTION,
    data: str | None = typer.Option(None, "--data", help="Check this batch (a file, glob or URL, or "
                                    "an inline source mapping such as '{kind: sql, url: ..., query: "
                                    "...}') against the champion's schema instead."),
    version: str | None = typer.Option(None, "--version", help="With --data: the model version whose "
                                       "schema to use (default: the champion)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Check the spec and the data as `looml run` does before training (ingest, profile, validate,
    split and its skew check), without training anything."""
    spec = chosen_spec(spec, spec_option)
    from looml.pipeline import check

    if data is not None:
        _validate_batch(spec, data, version, as_json)
        return
    try:
        result = check(spec)
    except LoomlError as exc:
        fail(exc, as_json)
    report, prof = result.report, result.profile
    if as_json:
        out = {"task": report.task, "data_digest": result.data_digest, **report.to_dict(),
               "profile": prof.to_dict()}
        sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        return
    out_console = stdout()
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
        fail(exc, as_json)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        out = stdout()
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
        raise typer.Exit(EXIT[DataError])


@app.command()
def data(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    spec_option: Path | None = SPEC_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the snapshots as JSON on stdout."),
) -> None:
    """List the data snapshots (data versions) and the runs and model versions that used each."""
    spec = chosen_spec(spec, spec_option)
    from dataclasses import asdict

    from looml.datasets import snapshots

    try:
        entries = snapshots(spec)
    except LoomlError as exc:
        fail(exc, as_json)
    if as_json:
        sys.stdout.write(json.dumps([asdict(e) for e in entries], indent=2) + "\n")
        return
    out = stdout()
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
        fail(exc, as_json=False)
    console.print(f"wrote [bold]{path}[/]; next: [bold]looml run {path}[/]")
    by = (yaml.safe_load(path.read_text(encoding="utf-8")).get("split") or {}).get("by")
    if by:  # a decision the user should know of before the first run
        console.print(f"split by time on {by['time']!r}: the holdout is the latest period and CV folds "
                      "chain forward; remove split.by in the spec for a random split")


@app.command()
def schema() -> None:
    """Print the JSON Schema of looml.yaml (for editor completion)."""
    from looml.spec import spec_json_schema

    sys.stdout.write(json.dumps(spec_json_schema(), indent=2) + "\n")


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


def _comparison_line(compared: dict[str, Any]) -> str:
    """This run's model against the champion: the paired difference and its interval, or why not."""
    if compared["status"] != "compared":
        return f"not compared: {compared['reason']}"
    low, high = compared["interval"]
    return (f"{compared['metric']} {compared['challenger_value']:.4f} against "
            f"{compared['champion_value']:.4f}: improvement {compared['improvement']:+.4f} "
            f"({compared['confidence']:.0%} interval {low:+.4f} to {high:+.4f}) on {compared['basis']}")


def _interval(bounds: list[float | None] | None) -> str:
    if not bounds or bounds[0] is None or bounds[1] is None:
        return "—"
    return f"{bounds[0]:.4f} to {bounds[1]:.4f}"


def _print_summary(result: Any, spec: Path) -> None:
    out = stdout()
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
    bounds = getattr(result, "intervals", None) or {}
    if bounds:
        test.add_column("", style="dim")
    for m in result.metrics:
        test.add_column(m, justify="right")
    lead = ["value"] if bounds else []
    test.add_row(*lead, *[f"{v:.4f}" for v in result.metrics.values()])
    if bounds:  # the seeded bootstrap interval of each metric (evaluation.confidence)
        test.add_row(f"{result.confidence:.0%} interval",
                     *[_interval(bounds.get(m)) for m in result.metrics])
    out.print(test)
    compared = result.comparison
    if compared:
        out.print(f"against v{compared['champion']}  {_comparison_line(compared)}", soft_wrap=True,
                  highlight=False)
    alias = " (alias: champion)" if result.champion else ""
    out.print(f"model   [bold]{result.model_name}[/] version {result.model_version}{alias}  "
              f"{result.model_uri}")
    if compared.get("promoted"):
        out.print(f"        promoted: {compared['promotion']}", soft_wrap=True, highlight=False)
    elif not result.champion:
        from looml.store.versions import champion_version

        held = champion_version(result.tracking_uri, result.model_name)
        why = compared.get("promotion") or (f"v{held} stays champion" if held else "no champion yet")
        out.print(f"        {why}; make this version champion with: looml models promote "
                  f"{result.model_version} --spec {spec}", soft_wrap=True, highlight=False)
    out.print(f"report  {result.report_path}", soft_wrap=True)
    if result.tracking_uri.startswith(("http://", "https://")):  # a team's server: its UI is there
        out.print(f"mlflow  {result.tracking_uri}", soft_wrap=True)
    else:
        out.print(f"mlflow  mlflow ui --backend-store-uri {result.tracking_uri}", soft_wrap=True)
