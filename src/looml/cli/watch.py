"""Watching the champion: `loop` and `monitor`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from looml.cli.base import SPEC_OPTION, app, chosen_spec, fail, stdout
from looml.errors import LoomlError, Problem, SpecError


@app.command()
def loop(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    spec_option: Path | None = SPEC_OPTION,
    watch: bool = typer.Option(False, "--watch", help="Keep running, one cycle every loop.interval."),
    retrain: bool = typer.Option(False, "--retrain", help="Retrain and compare even if no trigger fired."),
    as_json: bool = typer.Option(False, "--json", help="Print each cycle as JSON on stdout."),
) -> None:
    """Watch the champion: drift, live performance, alerts; retrain and promote only a better model.

    One cycle, then exit (cron-friendly): 0 nothing alarming, 6 drift, a performance drop or invalid
    served rows were found (and acted on), 7 a retrain was due and failed.
    """
    spec = chosen_spec(spec, spec_option)
    from looml.monitor.loop import cycle
    from looml.monitor.loop import watch as watch_loop

    if watch:
        try:
            watch_loop(spec, on_cycle=lambda r: _print_cycle(r, as_json))
        except LoomlError as exc:
            fail(exc, as_json)
        return
    try:
        result = cycle(spec, retrain=retrain)
    except LoomlError as exc:
        fail(exc, as_json)
    _print_cycle(result, as_json)
    raise typer.Exit(7 if result.retrain_failed else 6 if result.alarmed else 0)


def _print_cycle(result: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), default=str) + "\n")
        return
    out = stdout()
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


@app.command()
def monitor(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    spec_option: Path | None = SPEC_OPTION,
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
    spec = chosen_spec(spec, spec_option)
    from looml.monitor.api import monitor as check_drift

    try:
        result = check_drift(spec, data=data, last=last, rows=rows, since=_moment("--since", since),
                             until=_moment("--until", until), version=version, out_dir=out)
    except LoomlError as exc:
        fail(exc, as_json)
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
    out, report = stdout(), result.report
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
