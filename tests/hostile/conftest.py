"""One project folder for the hostile tests that train: its MLflow store is made once per session
(11-40 s on the shared machine, most of a first `looml run`), then each test writes its own data
and spec into it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder; tests call `corruptions.clear` before writing their data and spec."""
    return tmp_path_factory.mktemp("hostile_project")

