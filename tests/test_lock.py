"""The install lock agrees with pyproject.toml, and the check says when it does not."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lock() -> ModuleType:
    spec = importlib.util.spec_from_file_location("looml_lock", ROOT / "scripts" / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_lock_pins_every_requirement_in_its_range(lock: ModuleType) -> None:
    assert lock.problems() == []
    pinned = lock.pins((ROOT / "requirements.lock").read_text(encoding="utf-8"))
    assert {"mlflow", "scikit-learn", "pytest", "pip"} <= set(pinned)
    assert pinned["mlflow"] == "3.17.2"


def test_a_dependency_edit_without_a_new_lock_is_found(lock: ModuleType, tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    pyproject.write_text(text.replace('"psutil>=5.9",', '"psutil>=5.9",\n    "tabulate-never-locked>=1",'),
                         encoding="utf-8")

    found = lock.problems(pyproject, ROOT / "requirements.lock")

    assert found == ["pyproject.toml's dependencies changed since the lock was written",
                     "dependencies: tabulate-never-locked has no pin in requirements.lock"]


def test_a_pin_outside_the_range_is_found(lock: ModuleType, tmp_path: Path) -> None:
    stale = tmp_path / "requirements.lock"
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    stale.write_text(re.sub(r"(?m)^mlflow==.*$", "mlflow==3.16.0", text), encoding="utf-8")

    found = lock.problems(ROOT / "pyproject.toml", stale)

    assert found == ["dependencies: mlflow==3.16.0 in requirements.lock is outside ==3.17.2"]


def test_a_missing_lock_is_named(lock: ModuleType, tmp_path: Path) -> None:
    assert lock.problems(ROOT / "pyproject.toml", tmp_path / "requirements.lock") == [
        "requirements.lock is missing"]
