"""The `looml` command line: parse, call one library function, print.

Exit codes: 0 success, 1 unexpected error, 2 invalid spec or usage, 3 invalid data,
4 evaluation gate failed, 5 registry / tracking error; `looml loop`: 6 drift, a performance
drop or invalid served rows found, 7 a retrain was due and failed; `looml monitor`: 6 drift
(`monitor.drift.exit_code`).
"""

from __future__ import annotations

from looml.cli import models, score, train, watch  # noqa: F401  (each registers its commands)
from looml.cli.base import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point for `python -m looml`."""
    app()
