"""One convention for the spec on every verb: --spec / -s everywhere, and the bare argument where
the spec is the verb's only one (issue 13 item 17)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import typer

from looml.cli import app

LOOML = Path(sys.executable).with_name("looml")


def commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(name, command) of every verb under `group` (Typer's click objects)."""
    if getattr(group, "commands", None):
        for name, command in group.commands.items():
            yield from commands(command, f"{prefix} {name}".strip())
    else:
        yield prefix, group


def test_every_verb_that_reads_a_spec_takes_spec_and_s() -> None:
    verbs = dict(commands(typer.main.get_command(app)))
    reading = {name: c for name, c in verbs.items()
               if any("spec" in (p.name or "") for p in c.params)}
    assert {"run", "validate", "serve", "predict", "feedback", "monitor", "loop", "models promote",
            "models list", "models rollback"} <= set(reading)
    lacking = [name for name, c in reading.items()
               if not any({"--spec", "-s"} <= set(p.opts) for p in c.params)]
    assert lacking == []


def test_the_argument_and_the_option_name_the_same_spec(
        make_project: Callable[..., Path], classification_frame: Callable[..., pl.DataFrame],
        tmp_path: Path) -> None:
    spec = make_project(classification_frame())
    as_argument = subprocess.run([str(LOOML), "validate", str(spec), "--json"], capture_output=True,
                                 text=True, timeout=300, check=False)
    as_option = subprocess.run([str(LOOML), "validate", "-s", str(spec), "--json"], capture_output=True,
                               text=True, timeout=300, check=False)
    assert as_argument.returncode == as_option.returncode == 0, as_option.stderr
    assert json.loads(as_argument.stdout)["features"] == json.loads(as_option.stdout)["features"]

    both = subprocess.run([str(LOOML), "validate", str(tmp_path / "other.yaml"), "--spec", str(spec)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert both.returncode == 2
    assert "two specs given" in both.stderr and "other.yaml" in both.stderr


def test_library_warnings_are_hidden_unless_verbose_also_in_worker_processes() -> None:
    """looml's own output only (issue 13 item 16): a Python warning raised in the command or in a
    process it starts is not printed, unless `looml --verbose` (or LOOML_VERBOSE=1)."""
    code = (
        "import subprocess, sys, warnings\n"
        "from looml.cli import app\n"
        "@app.command('warn-demo')\n"
        "def warn_demo() -> None:\n"
        "    warnings.warn('a library warning in the command', UserWarning)\n"
        "    worker = \"import warnings; warnings.warn('in a worker')\"\n"
        "    subprocess.run([sys.executable, '-c', worker], check=True)\n"
        "app(sys.argv[1:], standalone_mode=False)\n"
    )
    # A user's environment, not this process's: a CLI test run in-process here has set PYTHONWARNINGS.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "LOOML_VERBOSE")}
    quiet = subprocess.run([sys.executable, "-c", code, "warn-demo"], capture_output=True, text=True,
                           timeout=120, check=False, env=env)
    loud = subprocess.run([sys.executable, "-c", code, "--verbose", "warn-demo"], capture_output=True,
                          text=True, timeout=120, check=False, env=env)
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert "Warning" not in quiet.stderr
    assert "a library warning in the command" in loud.stderr and "in a worker" in loud.stderr
