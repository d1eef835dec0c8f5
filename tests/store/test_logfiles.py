"""Compaction of the log folders: fewer files, every row read once, also while it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl
import pytest

from looml.serve.model import Prediction
from looml.spec import PredictionLogSpec
from looml.store import logfiles
from looml.store.feedback import FeedbackStore, parse_feedback, read_feedback
from looml.store.logfiles import COMPACTED, compact, compact_logs, parts
from looml.store.predictions import PredictionLog, RowsToLog, read_predictions

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FEATURES = {"age": "numeric", "city": "categorical"}


def rows(request_id: str, n: int = 20, when: datetime = NOON, features: dict[str, str] | None = None
         ) -> RowsToLog:
    features = features or FEATURES
    batch: dict[str, Any] = {"age": [float(i) for i in range(n)], "city": ["a"] * n, "plan": ["x"] * n}
    return RowsToLog(request_id, when, "churn", "1", "/predict", features,
                     {k: v for k, v in batch.items() if k in features},
                     Prediction(labels=np.array(["yes"] * n, dtype=object),
                                proba=np.tile([0.25, 0.75], (n, 1))), ["no", "yes"])


def served(root: Path, requests: int, *, prefix: str = "req", **kwargs: Any) -> None:
    """One log file per request, as a server under steady traffic writes one per second."""
    log = PredictionLog(root, PredictionLogSpec(flush_rows=10_000, flush_seconds=3600.0))
    for i in range(requests):
        log.append(rows(f"{prefix}-{i}", **kwargs))
        log.flush()
    log.close()


def day(root: Path) -> Path:
    return root / "predictions" / f"date={NOON.date().isoformat()}"


def test_a_days_small_files_become_one_and_every_row_is_read_once(tmp_path: Path) -> None:
    served(tmp_path, 40)
    before = read_predictions(tmp_path)
    assert before.height == 800 and len(parts(day(tmp_path))) == 40

    assert compact_logs(tmp_path) == 40

    assert [f.name.endswith(COMPACTED) for f in parts(day(tmp_path))] == [True]
    assert read_predictions(tmp_path).equals(before)
    assert len(list(day(tmp_path).glob("part-*.parquet"))) == 41  # the small files stay a while
    assert compact_logs(tmp_path) == 0  # nothing small is left to merge


def test_the_files_held_again_are_deleted_by_a_later_compaction_once_the_grace_has_passed(
        tmp_path: Path) -> None:
    served(tmp_path, 6)
    folder = day(tmp_path)
    now = time.time()
    assert compact(folder, clock=lambda: now) == 6
    served(tmp_path, 3, prefix="more")
    before = read_predictions(tmp_path)

    assert compact(folder, clock=lambda: now + 60) == 4  # the compacted file and the 3 new ones
    assert len(list(folder.glob("part-*.parquet"))) == 6 + 3 + 2  # nothing old enough to delete
    assert compact(folder, clock=lambda: now + logfiles.GRACE_SECONDS + 120) == 0

    left = list(folder.glob("part-*.parquet"))
    assert len(left) == 1 and left[0].name.endswith(COMPACTED)
    assert read_predictions(tmp_path).equals(before)


def test_files_of_different_schemas_are_merged_apart_and_big_files_are_left(tmp_path: Path) -> None:
    served(tmp_path, 3)
    served(tmp_path, 3, prefix="v2", features={"age": "numeric", "plan": "categorical"})
    served(tmp_path, 3, prefix="v1-again")
    folder = day(tmp_path)
    before = read_predictions(tmp_path)
    big = max(f.stat().st_size for f in parts(folder))

    assert compact(folder, small_bytes=big + 1) == 9
    assert len(parts(folder)) == 3  # v1, v2 and v1 again: runs of one schema, in time order
    assert read_predictions(tmp_path).equals(before)
    served(tmp_path, 2, prefix="late")
    assert compact(folder, small_bytes=1) == 0  # every file is "big"


def test_feedback_files_are_compacted_too(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    for i in range(5):
        store.append(parse_feedback(f'{{"row_id": "r:{i}", "label": "yes"}}'.encode()))
    store.append(parse_feedback(b'{"row_id": "r:0", "label": "no"}'))  # a correction, received last
    before = read_feedback(tmp_path)

    assert compact_logs(tmp_path) == 6

    after = read_feedback(tmp_path)
    assert after.equals(before) and after["label"].to_list()[-1] == "no"


def test_a_compaction_that_fails_midway_leaves_the_rows_as_they_were(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served(tmp_path, 5)
    before = read_predictions(tmp_path)

    def broken(frame: pl.DataFrame, handle: BinaryIO, **kwargs: Any) -> None:
        handle.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", broken)
    assert compact_logs(tmp_path) == 0  # logged, not raised: monitoring goes on
    monkeypatch.undo()

    assert sorted(p.name for p in day(tmp_path).iterdir() if not p.name.startswith("part-")) == [
        ".compact.lock"]  # no temporary file left behind
    assert read_predictions(tmp_path).equals(before)


def test_a_compaction_killed_after_its_rename_is_finished_by_the_next(tmp_path: Path) -> None:
    served(tmp_path, 5)
    before = read_predictions(tmp_path)
    script = ("import os, sys\n"
              "from looml.store import logfiles\n"
              "real = logfiles.write_atomic\n"
              "def rename_then_die(*args, **kwargs):\n"
              "    real(*args, **kwargs)\n"
              "    os._exit(9)\n"
              "logfiles.write_atomic = rename_then_die\n"
              "logfiles.compact_logs(sys.argv[1])\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False, timeout=120)

    assert done.returncode == 9
    assert read_predictions(tmp_path).equals(before)  # both the small files and the compacted one
    assert compact(day(tmp_path), grace=0) == 0
    assert len(list(day(tmp_path).glob("part-*.parquet"))) == 1
    assert read_predictions(tmp_path).equals(before)


def test_one_process_compacts_a_folder_at_a_time(tmp_path: Path) -> None:
    served(tmp_path, 4)
    import fcntl

    with open(day(tmp_path) / ".compact.lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert compact(day(tmp_path)) == 0  # another process is at it: skipped, not doubled
    assert compact(day(tmp_path)) == 4


def test_readers_see_every_row_exactly_once_while_compaction_and_writes_run(tmp_path: Path) -> None:
    """A writer adds a file per request, a compactor merges (and, with a short grace, deletes)
    in a loop; every read holds each row written before it began, once, and nothing else."""
    grace = 2.0  # far above a read's time from listing to opening, on a busy machine too
    log = PredictionLog(tmp_path, PredictionLogSpec(flush_rows=10_000, flush_seconds=3600.0))
    written: list[int] = [0]  # requests on disk
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            i = 0
            while not stop.is_set():
                log.append(rows(f"w-{i}", n=5))
                log.flush()
                i += 1
                written[0] = i
                time.sleep(0.002)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def compact_forever() -> None:
        try:
            while not stop.is_set():
                for folder in [f for _, f in logfiles.day_folders(tmp_path / "predictions")]:
                    compact(folder, grace=grace, target_bytes=64 * 1024)
                time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=compact_forever)]
    for t in threads:
        t.start()
    reads = 0
    deadline = time.monotonic() + 8
    try:
        while time.monotonic() < deadline and not errors:
            done = written[0]
            frame = read_predictions(tmp_path)
            ids = frame["row_id"]
            assert ids.n_unique() == frame.height, "a row was read twice"
            requests = set(frame["request_id"])
            assert {f"w-{i}" for i in range(done)} <= requests, "a row written before the read was lost"
            assert frame.group_by("request_id").len()["len"].to_list() == [5] * len(requests)
            reads += 1
    finally:
        stop.set()
        for t in threads:
            t.join()
        log.close()
    assert not errors, errors
    folder = day(tmp_path) if day(tmp_path).exists() else next(iter(logfiles.day_folders(
        tmp_path / "predictions")))[1]
    live = parts(Path(folder))
    assert reads > 10 and written[0] > 100
    assert len(live) < written[0] / 4, "compaction kept up with the writer"
    assert any(f.name.endswith(COMPACTED) for f in live)
    assert len(list(Path(folder).glob("part-*.parquet"))) < written[0], "held files were deleted"
    assert read_predictions(tmp_path).height == 5 * written[0]


def test_monitor_reads_compact_the_log(tmp_path: Path) -> None:
    from looml.monitor import api
    from looml.monitor.reference import Reference

    served(tmp_path, 12, when=datetime.now(UTC) - timedelta(minutes=5))
    folder = next(iter(logfiles.day_folders(tmp_path / "predictions")))[1]
    assert len(parts(folder)) == 12

    frame, _ = api._from_log(tmp_path, Reference(rows=1, columns={}), "1h", None, None, None)

    assert frame.height == 12 * 20 and len(parts(folder)) == 1
    assert os.path.exists(folder / ".compact.lock")
