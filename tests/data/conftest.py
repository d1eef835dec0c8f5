"""Fixtures for the data tests: a throw-away PostgreSQL server (see tests/postgres.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for tests/postgres.py
from external_tools import unavailable
from postgres import Postgres, running_postgres, unavailable_reason

sys.path.pop(0)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server for the whole session: role `looml` (password auth) owning database `looml`.

    Skips when PostgreSQL's binaries are missing (scripts/ensure-postgres.sh installs them); in
    CI (CI=true) fails instead (see tests/external_tools.py).
    """
    reason = unavailable_reason()
    if reason is not None:
        unavailable(reason)
    with running_postgres() as server:
        yield server
