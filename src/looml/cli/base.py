"""What every command shares: the Typer app, the consoles, exit codes and the error printer."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from looml.errors import (
    BusyError,
    DataError,
    GateError,
    LoomlError,
    RegistryError,
    RequestError,
    ServeError,
    SpecError,
    StorageError,
)

__all__ = ["EXIT", "SPEC_OPTION", "app", "chosen_spec", "console", "exit_promptly_on_interrupt", "fail",
           "stdout"]

_GRACE_SECONDS = 2.0

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="looml: declarative, cached, reproducible ML pipelines for tabular data.")
console = Console(stderr=True)
# a RequestError outside the server is bad input a command read (feedback rows): invalid data
EXIT = {SpecError: 2, DataError: 3, RequestError: 3, GateError: 4, RegistryError: 5, BusyError: 7,
        ServeError: 8, StorageError: 9}


def _version(value: bool) -> None:
    if value:
        from looml.version import __version__

        typer.echo(f"looml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Print looml's version and exit."),
          verbose: bool = typer.Option(False, "--verbose", "-v", envvar="LOOML_VERBOSE",
                                       help="Also show the libraries' own warnings (scikit-learn, "
                                            "MLflow, ...), which looml hides by default.")) -> None:
    """looml: declarative, cached, reproducible ML pipelines for tabular data."""
    if not verbose:
        quiet_libraries()


def quiet_libraries() -> None:
    """looml's own output only: the libraries' Python warnings are hidden, here and in the worker
    processes (which read PYTHONWARNINGS when they start). looml reports its own findings in its
    output and reports, never as Python warnings."""
    import warnings

    warnings.simplefilter("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"


# Every verb takes the spec as --spec / -s; where it is the verb's only argument it may also be
# given bare (`looml run my.yaml`), as before.
SPEC_OPTION = typer.Option(None, "--spec", "-s", help="Path to looml.yaml (the same as the argument).")
_DEFAULT_SPEC = Path("looml.yaml")


def chosen_spec(argument: Path, option: Path | None) -> Path:
    """The spec named by the argument or by --spec; both, naming two files, is a usage error."""
    if option is None:
        return argument
    if argument != _DEFAULT_SPEC and argument != option:
        raise typer.BadParameter(f"two specs given: {argument} (argument) and {option} (--spec); give one",
                                 param_hint="--spec")
    return option


def fail(exc: LoomlError, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(exc.to_dict(), indent=2) + "\n")
    else:
        console.print(f"[bold red]error[/]: {escape(exc.render())}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT.get(type(exc), 1))


def stdout() -> Console:
    # Piped output (logs, CI) is not cut to 80 columns: tables keep every metric readable.
    return Console() if sys.stdout.isatty() else Console(width=160)


@contextlib.contextmanager
def exit_promptly_on_interrupt(grace: float = _GRACE_SECONDS) -> Iterator[None]:
    """Ctrl-C stops the command within `grace` seconds even inside a long native call.

    Python runs a SIGINT handler only when the main thread returns to bytecode, which a model fit
    in C may not do for many seconds. The C-level handler writes the signal to a wakeup fd at
    once, though: a watcher thread reads it, gives the usual KeyboardInterrupt `grace` seconds to
    unwind, and then exits with 130. The cache stays consistent (every stage commits atomically);
    a model being registered (`store.tracking.REGISTERING`) is finished first.
    """
    from looml.store.tracking import REGISTERING

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set it
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                got = reader.recv(16)
            except OSError:
                return
            if signal.SIGINT in got and not done.wait(grace):
                while REGISTERING.is_set():
                    time.sleep(0.05)
                console.print("[bold red]interrupted[/]: stopped (the finished stages are cached)")
                os._exit(130)

    thread = threading.Thread(target=watch, name="looml-interrupt", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        signal.set_wakeup_fd(previous)
        writer.close()
        reader.close()
