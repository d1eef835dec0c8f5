"""One writer per project (`store.lock`): a second `looml run` stops naming the holder and changes
nothing, a loop cycle waits its turn, a killed holder leaves no stale lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

import looml
from looml.errors import BusyError
from looml.store.lock import project_lock

HOLD = """
import sys, time
from pathlib import Path
from looml.store.lock import project_lock
with project_lock(Path(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def holder(home: Path, seconds: float, what: str = "looml run") -> subprocess.Popen[str]:
    """Another process holding the project's lock for `seconds` (it says when it has it)."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(home), what, str(seconds)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_second_run_stops_at_once_naming_the_holder_and_changes_nothing(
        make_project: Callable[..., Path], classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame())
    home = spec.parent / ".looml"
    child = holder(home, 60)
    try:
        began = time.monotonic()
        with pytest.raises(BusyError, match=rf"looml run \(pid {child.pid} on .*, since .*\) is changing "
                                             r"this project; looml run changed nothing") as caught:
            looml.run(spec)
        assert time.monotonic() - began < 5
        assert f"kill {child.pid}" in caught.value.problems[0].fix
        assert sorted(p.name for p in home.iterdir()) == ["lock"]  # no cache, store or registry
    finally:
        child.kill()
        child.wait()


def test_the_cli_exits_7_with_the_holder_and_the_fix(make_project: Callable[..., Path],
                                                   classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame())
    child = holder(spec.parent / ".looml", 60, what="looml loop")
    try:
        out = subprocess.run([str(Path(sys.executable).parent / "looml"), "run", str(spec), "--json"],
                             capture_output=True, text=True, timeout=120)
    finally:
        child.kill()
        child.wait()
    assert out.returncode == 7, out.stderr
    problem = json.loads(out.stdout)["problems"][0]
    assert json.loads(out.stdout)["error"] == "busy" and f"pid {child.pid}" in problem["msg"]
    assert problem["msg"].startswith("looml loop (pid") and "Traceback" not in out.stderr


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    child = holder(tmp_path, 60)
    with pytest.raises(BusyError), project_lock(tmp_path, "looml run"):
        pass
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    with project_lock(tmp_path, "looml run"):  # the kernel released it with the process
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
    assert (tmp_path / "lock").read_text() == ""  # released: nobody named


def test_a_waiting_writer_gets_the_lock_when_the_holder_finishes(tmp_path: Path) -> None:
    child = holder(tmp_path, 1.0)
    began = time.monotonic()
    with project_lock(tmp_path, "looml loop", wait=30):
        waited = time.monotonic() - began
    child.wait()
    assert 0.3 < waited < 20

    child = holder(tmp_path, 60)
    try:
        with pytest.raises(BusyError, match=r"looml loop waited for 0.5 s and changed nothing"), \
                project_lock(tmp_path, "looml loop", wait=0.5):
            pass
    finally:
        child.kill()
        child.wait()


def test_the_lock_is_reentrant_in_one_process_and_released_by_the_outermost(tmp_path: Path) -> None:
    with project_lock(tmp_path, "looml loop"):
        with project_lock(tmp_path, "looml run"):  # a cycle's retrain runs under the cycle's lock
            assert json.loads((tmp_path / "lock").read_text())["command"] == "looml loop"
        assert json.loads((tmp_path / "lock").read_text())["command"] == "looml loop"
    child = holder(tmp_path, 0)  # another process gets it at once
    child.wait()
    assert child.returncode == 0


def test_two_real_runs_at_once_one_runs_the_other_stops_then_a_third_reuses_the_first(
        make_project: Callable[..., Path], classification_frame: Callable[..., pl.DataFrame]) -> None:
    spec = make_project(classification_frame(rows=400))
    cli = str(Path(sys.executable).parent / "looml")
    lock = spec.parent / ".looml" / "lock"
    first = subprocess.Popen([cli, "run", str(spec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run([cli, "run", str(spec)], capture_output=True, text=True, timeout=120)
    _, first_err = first.communicate(timeout=300)

    assert first.returncode == 0, first_err
    assert second.returncode == 7 and f"pid {first.pid}" in second.stderr
    assert "changed nothing" in second.stderr
    third = subprocess.run([cli, "run", str(spec), "--json"], capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    result = json.loads(third.stdout)
    assert result["model_version"] == "1"  # the first run's version, not a second one
    assert {s["name"]: s["status"] for s in result["stages"]}["train"] == "cached"
