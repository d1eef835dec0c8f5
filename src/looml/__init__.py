"""looml: an end-to-end, declarative, cached and reproducible ML pipeline for tabular data.

    >>> import looml
    >>> result = looml.run("looml.yaml")
    >>> result.metrics, result.model_uri
"""

from __future__ import annotations

from datetime import datetime as _datetime
from pathlib import Path as _Path
from typing import TYPE_CHECKING as _TYPE_CHECKING

# The package first: the function below then takes the name `looml.monitor` (import the
# package's modules by their full names: `from looml.monitor.drift import detect`).
from looml import monitor as _monitor_package  # noqa: F401
from looml.errors import DataError, GateError, LoomlError, RegistryError, SpecError
from looml.pipeline import DataCheck, RunResult, check, run
from looml.spec import Spec, load_spec
from looml.version import __version__

if _TYPE_CHECKING:
    from looml.monitor.api import MonitorResult

__all__ = [
    "DataCheck",
    "DataError",
    "GateError",
    "LoomlError",
    "RegistryError",
    "RunResult",
    "Spec",
    "SpecError",
    "__version__",
    "check",
    "load_spec",
    "monitor",
    "run",
]


def monitor(spec: Spec | str | _Path, *, data: str | None = None, last: str | None = None,
            rows: int | None = None, since: _datetime | None = None, until: _datetime | None = None,
            version: str | None = None, out_dir: _Path | None = None) -> MonitorResult:
    """Drift of new rows against the champion's training data; writes a JSON and an HTML report.

    `data` is a file, glob, URL or inline source mapping; otherwise a window of the prediction
    log: `last` ("24h", "7d"; the default is the last 24 hours), the newest `rows`, or
    `since` / `until` (datetimes, UTC). Returns a `looml.monitor.api.MonitorResult`
    (`.report` is the `DriftReport`, `.exit_code` what `looml monitor` exits with).
    """
    from looml.monitor.api import monitor as check_drift

    return check_drift(spec, data=data, last=last, rows=rows, since=since, until=until, version=version,
                       out_dir=out_dir)
