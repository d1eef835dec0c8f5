"""`looml models`: list, show, promote, rollback and the history of registered versions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from looml.cli.base import SPEC_OPTION, app, chosen_spec, console, fail, stdout
from looml.errors import LoomlError

models_app = typer.Typer(no_args_is_help=True, help="Registered model versions: list, show, promote, "
                         "rollback, history.")
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    spec_option: Path | None = SPEC_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print as JSON on stdout."),
) -> None:
    """Every version, newest first, with its aliases and holdout metrics."""
    spec = chosen_spec(spec, spec_option)
    from looml.spec import load_spec
    from looml.store.connect import local_tracking_uri
    from looml.store.registry import versions

    try:
        loaded = load_spec(spec)
        uri = local_tracking_uri(loaded.tracking.uri, loaded.project_dir)
        found = versions(uri, loaded.registry.model_name)
    except LoomlError as exc:
        fail(exc, as_json)
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
    stdout().print(table)


@models_app.command("show")
def models_show(
    version: str = typer.Argument(..., help="The version."),
    spec: Path = typer.Option(Path("looml.yaml"), "--spec", "-s", help="Path to looml.yaml."),
) -> None:
    """One version's aliases, metrics and lineage, as JSON."""
    from looml.spec import load_spec
    from looml.store.connect import local_tracking_uri
    from looml.store.registry import version_info

    try:
        loaded = load_spec(spec)
        info = version_info(local_tracking_uri(loaded.tracking.uri, loaded.project_dir),
                            loaded.registry.model_name, version)
    except LoomlError as exc:
        fail(exc, as_json=True)
    sys.stdout.write(json.dumps(info.to_dict(), indent=2) + "\n")


@models_app.command("promote")
def models_promote(
    version: str = typer.Argument(..., help="The version to make champion."),
    spec: Path = typer.Option(Path("looml.yaml"), "--spec", "-s", help="Path to looml.yaml."),
    reason: str = typer.Option("promoted by hand", "--reason", help="Why, for the history."),
) -> None:
    """Make a version the champion now (recorded in the history; a server follows)."""
    from looml.monitor.moves import promote

    try:
        decision = promote(spec, version, reason=reason)
    except LoomlError as exc:
        fail(exc, as_json=False)
    console.print(f"champion: v{decision.champion_before} -> [bold]v{decision.champion_after}[/]")


@models_app.command("rollback")
def models_rollback(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    spec_option: Path | None = SPEC_OPTION,
) -> None:
    """Restore the champion that the latest promotion replaced."""
    spec = chosen_spec(spec, spec_option)
    from looml.monitor.moves import rollback

    try:
        decision = rollback(spec)
    except LoomlError as exc:
        fail(exc, as_json=False)
    console.print(f"champion: v{decision.champion_before} -> [bold]v{decision.champion_after}[/] "
                  f"({escape(decision.reason)})")


@models_app.command("history")
def models_history(
    spec: Path = typer.Argument(Path("looml.yaml"), help="Path to looml.yaml."),
    spec_option: Path | None = SPEC_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print as JSON on stdout."),
) -> None:
    """Every promote / keep / rollback decision, oldest first, with its reason and evidence."""
    spec = chosen_spec(spec, spec_option)
    from looml.monitor.moves import history

    try:
        decisions = history(spec)
    except LoomlError as exc:
        fail(exc, as_json)
    if as_json:
        sys.stdout.write(json.dumps([d.to_dict() for d in decisions], indent=2, default=str) + "\n")
        return
    table = Table(title="Champion decisions, oldest first")
    for name in ("at", "action", "champion", "challenger", "triggers", "by", "reason"):
        table.add_column(name)
    for d in decisions:
        champion = (f"v{d.champion_before} -> v{d.champion_after}" if d.champion_before != d.champion_after
                    else f"v{d.champion_after}")
        action = d.action if d.state == "done" else f"{d.action} ({d.state}: the alias did not move)"
        table.add_row(d.at.replace("T", " "), action, champion, f"v{d.challenger}" if d.challenger else "-",
                      ", ".join(d.triggers) or "-", d.by, escape(d.reason))
    stdout().print(table)
