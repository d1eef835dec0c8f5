"""What every command shares: the Typer app, the consoles, exit codes and the error printer."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.markup import escape

from looml.errors import DataError, GateError, LoomlError, RegistryError, RequestError, ServeError, SpecError

__all__ = ["EXIT", "app", "console", "fail", "stdout"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="looml: declarative, cached, reproducible ML pipelines for tabular data.")
console = Console(stderr=True)
# a RequestError outside the server is bad input a command read (feedback rows): invalid data
EXIT = {SpecError: 2, DataError: 3, RequestError: 3, GateError: 4, RegistryError: 5, ServeError: 8}


def _version(value: bool) -> None:
    if value:
        from looml import __version__

        typer.echo(f"looml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Print looml's version and exit.")) -> None:
    """looml: declarative, cached, reproducible ML pipelines for tabular data."""


def fail(exc: LoomlError, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(exc.to_dict(), indent=2) + "\n")
    else:
        console.print(f"[bold red]error[/]: {escape(exc.render())}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT.get(type(exc), 1))


def stdout() -> Console:
    # Piped output (logs, CI) is not cut to 80 columns: tables keep every metric readable.
    return Console() if sys.stdout.isatty() else Console(width=160)
