"""The prediction log, the feedback store and their readers, on real files in tmp_path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl
import pytest

from looml.errors import RequestError
from looml.serve.model import Prediction
from looml.spec import PredictionLogSpec
from looml.store.feedback import (
    FeedbackStore,
    check_feedback,
    join_feedback,
    parse_feedback,
    read_feedback,
)
from looml.store.predictions import (
    PredictionLog,
    RowsToLog,
    feature_column,
    label_text,
    read_predictions,
    row_id,
)

FEATURES = {"age": "numeric", "city": "categorical", "seen": "datetime"}
NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand; it counts the times the log's writer thread read it."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.writer_reads: list[float] = []  # the time each read by the writer thread returned

    def __call__(self) -> float:
        now = self.now
        if threading.current_thread().name == "looml-prediction-log":
            self.writer_reads.append(now)
        return now

    def wait_for_writer(self, log: PredictionLog) -> None:
        """Return once the writer has read the current time twice more (it looked at the buffer
        and decided; the second read means the first look has ended), or has written rows."""
        now, seen = self.now, self.writer_reads.count(self.now)
        wait_for(lambda: self.writer_reads.count(now) >= seen + 2 or log.written > 0)


def rows(request_id: str, n: int = 3, when: datetime = NOON, *, version: str = "1",
         features: dict[str, str] | None = None) -> RowsToLog:
    """A classifier's answer to one request of `n` rows."""
    features = features or FEATURES
    batch: dict[str, Any] = {
        "age": [float(i) for i in range(n)], "city": ["a", "b", "c"][:1] * n,
        "seen": ["2026-01-02"] * n, "income": np.arange(n, dtype=np.float64)}
    proba = np.tile([0.25, 0.75], (n, 1))
    return RowsToLog(request_id, when, "churn", version, "/predict", features,
                     {k: v for k, v in batch.items() if k in features},
                     Prediction(labels=np.array(["yes"] * n, dtype=object), proba=proba), ["no", "yes"])


def spec(**kwargs: Any) -> PredictionLogSpec:
    return PredictionLogSpec(**{"flush_rows": 10_000, "flush_seconds": 3600.0, **kwargs})


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Poll until `condition()` holds; fail when it has not after `seconds` (a hang, not a pace)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds:g} s"
        time.sleep(0.01)


def part_files(root: Path) -> list[Path]:
    return sorted(root.rglob("part-*.parquet"))


def test_every_appended_row_is_logged_after_close(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, spec())
    for i in range(40):
        log.append(rows(f"req-{i}"))
    log.close()
    log.close()  # idempotent
    frame = read_predictions(tmp_path)
    assert (log.written, log.dropped, log.buffered) == (120, 0, 0)
    assert frame.height == 120
    assert set(frame["request_id"]) == {f"req-{i}" for i in range(40)}
    assert frame["row_id"].n_unique() == 120
    first = frame.filter(pl.col("request_id") == "req-7").sort("row")
    assert first["row"].to_list() == [0, 1, 2]
    assert first["row_id"].to_list() == [row_id("req-7", r) for r in range(3)] == ["req-7:0", "req-7:1",
                                                                                   "req-7:2"]
    assert frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert frame.schema["seen"] == pl.Datetime("us")
    assert frame["timestamp"][0] == NOON
    assert frame["proba_yes"][0] == 0.75 and frame["prediction"][0] == "yes"
    log.append(rows("late"))  # after close: counted, never written
    assert log.dropped == 3


def test_a_scoring_call_that_served_several_requests_logs_each_under_its_own_id(tmp_path: Path) -> None:
    merged = rows("unused", n=5)
    log = PredictionLog(tmp_path, spec())
    log.append(RowsToLog(("a", "b", "c"), NOON, "churn", "1", ("/predict", "v2", "/predict"),
                         FEATURES, merged.batch, merged.prediction, ["no", "yes"], request_rows=(2, 1, 2)))
    log.close()
    frame = read_predictions(tmp_path).sort("request_id", "row")
    assert frame["row_id"].to_list() == ["a:0", "a:1", "b:0", "c:0", "c:1"]
    assert frame["endpoint"].to_list() == ["/predict", "/predict", "v2", "/predict", "/predict"]
    assert frame["age"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_values_are_typed_by_feature_kind(tmp_path: Path) -> None:
    features = {"age": "numeric", "city": "categorical", "seen": "datetime", "timestamp": "numeric"}
    batch = {"age": [1, "2.5", "abc", None, True], "city": ["x", 3, None, float("nan"), False],
             "seen": ["2026-01-02 03:04:05", "not a date", None, "2026-01-02T00:00:00+02:00", ""],
             "timestamp": np.array([1.0, np.nan, 3.0, 4.0, 5.0])}
    regression = Prediction(labels=np.array([1.5, 2.0, 3.0, 4.0, 5.0]))
    log = PredictionLog(tmp_path, spec())
    log.append(RowsToLog("r", NOON, "price", "2", "/invocations", features, batch, regression, None))
    log.close()
    frame = read_predictions(tmp_path).sort("row")
    assert frame["age"].to_list() == [1.0, 2.5, None, None, 1.0]
    assert frame["city"].to_list() == ["x", "3", None, None, "false"]
    assert frame["seen"].to_list() == [datetime(2026, 1, 2, 3, 4, 5), None, None,
                                       datetime(2026, 1, 1, 22, 0), None]
    assert feature_column("timestamp") == "input_timestamp"
    assert frame["input_timestamp"].to_list() == [1.0, None, 3.0, 4.0, 5.0]
    assert frame.schema["prediction"] == pl.Float64
    assert not [c for c in frame.columns if c.startswith("proba_")]
    assert frame["endpoint"][0] == "/invocations" and frame["model_version"][0] == "2"


def test_flush_by_rows(tmp_path: Path) -> None:
    clock = FakeClock()
    log = PredictionLog(tmp_path, spec(flush_rows=10), clock=clock)
    log.append(rows("a", 5))
    clock.wait_for_writer(log)  # the writer saw 5 buffered rows and did not flush
    assert log.written == 0 and not part_files(tmp_path)
    log.append(rows("b", 5))
    wait_for(lambda: log.written == 10)
    assert len(part_files(tmp_path)) == 1
    log.close()


def test_flush_by_age(tmp_path: Path) -> None:
    clock = FakeClock()
    log = PredictionLog(tmp_path, spec(flush_seconds=5.0), clock=clock)
    log.append(rows("a", 1))
    clock.now += 4.9
    clock.wait_for_writer(log)  # the writer saw a row 4.9 s old and did not flush
    assert log.written == 0 and not part_files(tmp_path)
    clock.now += 0.2
    wait_for(lambda: log.written == 1)
    log.close()
    assert len(part_files(tmp_path)) == 1


def test_one_flush_across_midnight_writes_two_days(tmp_path: Path) -> None:
    midnight = datetime(2026, 11, 23, tzinfo=UTC)
    log = PredictionLog(tmp_path, spec())
    log.append(rows("before", 2, midnight - timedelta(microseconds=1)))
    log.append(rows("after", 1, midnight))
    log.close()
    folders = sorted(p.name for p in (tmp_path / "predictions").iterdir())
    assert folders == ["date=2026-11-22", "date=2026-11-23"]
    day = pl.read_parquet(next((tmp_path / "predictions" / "date=2026-11-22").glob("part-*.parquet")))
    assert day["request_id"].to_list() == ["before", "before"]
    assert read_predictions(tmp_path, since=midnight)["request_id"].to_list() == ["after"]
    assert read_predictions(tmp_path, until=midnight)["request_id"].to_list() == ["before", "before"]


def test_append_never_blocks_and_drops_beyond_the_buffer(tmp_path: Path) -> None:
    # The writer is stuck until the test releases it: had an append waited for the writer, it
    # would return only after the writer's own 60 s timeout, with `finished` set. (The pace of
    # an append is measured in bench/, not here.)
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def stalled(frame: pl.DataFrame, handle: BinaryIO) -> None:
        started.set()
        release.wait(60)
        frame.write_parquet(handle)
        finished.set()

    log = PredictionLog(tmp_path, spec(flush_rows=5, max_buffer_rows=10), write=stalled)
    log.append(rows("first", 5))
    assert started.wait(30)  # the writer holds these 5 rows and is stuck
    log.append(rows("second", 5))  # 10 held: still within the bound
    for i in range(200):
        log.append(rows(f"over-{i}", 1))
    assert not finished.is_set(), "an append waited for the stuck writer"
    assert log.dropped == 200 and log.buffered == 10 and log.written == 0
    release.set()
    log.close()
    assert (log.written, log.dropped) == (10, 200)
    assert set(read_predictions(tmp_path)["request_id"]) == {"first", "second"}


def test_two_workers_writing_the_same_folders_never_collide(tmp_path: Path) -> None:
    clock = FakeClock()  # the same time in every file name: only pid, token and sequence differ
    logs = [PredictionLog(tmp_path, spec(flush_rows=1), clock=clock) for _ in range(2)]

    def serve(worker: int) -> None:
        for i in range(60):
            logs[worker].append(rows(f"w{worker}-{i}", 2))
            if i % 10 == 0:
                time.sleep(0.005)

    threads = [threading.Thread(target=serve, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for log in logs:
        log.close()
    frame = read_predictions(tmp_path)
    assert frame.height == 240 and frame["row_id"].n_unique() == 240
    assert sum(log.written for log in logs) == 240
    names = [p.name for p in part_files(tmp_path)]
    assert len(names) == len(set(names)) >= 2
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_write_failing_midway_leaves_no_file_under_a_real_name(tmp_path: Path) -> None:
    def broken(frame: pl.DataFrame, handle: BinaryIO) -> None:
        handle.write(b"PAR1 half a file")
        raise OSError("disk full")

    log = PredictionLog(tmp_path, spec(), write=broken)
    log.append(rows("lost", 3))
    log.close()
    assert (log.written, log.dropped, log.failed_writes) == (0, 3, 1)
    assert not part_files(tmp_path) and not list(tmp_path.rglob("*.tmp"))
    assert read_predictions(tmp_path).height == 0


KILLED_WRITER = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
import numpy as np
from looml.serve.model import Prediction
from looml.store.predictions import PredictionLog, RowsToLog
from looml.spec import PredictionLogSpec

def hang(frame, handle):
    handle.write(b"PAR1 half a file")
    handle.flush()
    print("writing", flush=True)
    time.sleep(60)

log = PredictionLog(Path(sys.argv[1]), PredictionLogSpec(flush_rows=1), write=hang)
log.append(RowsToLog("r", datetime.now(UTC), "m", "1", "/predict", {"x": "numeric"}, {"x": [1.0]},
                     Prediction(labels=np.array([2.0])), None))
time.sleep(60)
"""


def test_a_killed_writer_leaves_only_a_temp_file_that_readers_ignore(tmp_path: Path) -> None:
    # A real process killed mid-write, as when a server worker is OOM-killed.
    complete = PredictionLog(tmp_path, spec())
    complete.append(rows("kept", 2))
    complete.close()
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"writing\n"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    leftovers = list(tmp_path.rglob("*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".part-")
    assert len(part_files(tmp_path)) == 1
    assert read_predictions(tmp_path)["request_id"].to_list() == ["kept", "kept"]


def test_read_since_until_and_last_rows(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, spec())
    for day in range(3):
        for hour in (1, 13):
            log.append(rows(f"d{day}h{hour}", 2, datetime(2026, 11, 20 + day, hour, tzinfo=UTC)))
    log.close()
    assert len(list((tmp_path / "predictions").iterdir())) == 3
    everything = read_predictions(tmp_path)
    assert everything.height == 12 and everything["timestamp"].is_sorted()
    window = read_predictions(tmp_path, since=datetime(2026, 11, 20, 13), until=datetime(2026, 11, 22, 1))
    assert window["request_id"].unique(maintain_order=True).to_list() == ["d0h13", "d1h1", "d1h13"]
    newest = read_predictions(tmp_path, last_rows=3)
    assert newest["row_id"].to_list() == ["d2h1:1", "d2h13:0", "d2h13:1"]
    capped = read_predictions(tmp_path, until=datetime(2026, 11, 21, 2, tzinfo=UTC), last_rows=5)
    assert capped["request_id"].to_list() == ["d0h1", "d0h13", "d0h13", "d1h1", "d1h1"]
    assert read_predictions(tmp_path, since=datetime(2030, 1, 1)).height == 0
    assert read_predictions(tmp_path / "nothing-here", last_rows=5).height == 0


def test_versions_with_different_features_read_together(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, spec(flush_rows=1))
    log.append(rows("v1", 2, version="1", features={"age": "numeric", "city": "categorical"}))
    wait_for(lambda: log.written == 2)
    log.append(rows("v2", 1, version="2", features={"age": "numeric", "income": "numeric"}))
    log.append(rows("v1-again", 1, version="1", features={"age": "numeric", "city": "categorical"}))
    log.close()
    frame = read_predictions(tmp_path)
    assert frame.height == 4 and {"age", "city", "income"} <= set(frame.columns)
    v2 = frame.filter(pl.col("model_version") == "2")
    assert v2["city"].to_list() == [None] and v2["income"].to_list() == [0.0]


def test_disabled_log_writes_nothing(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, spec(enabled=False))
    log.append(rows("r"))
    log.close()
    assert (log.written, log.dropped) == (0, 0) and not tmp_path.joinpath("predictions").exists()


@pytest.mark.parametrize(("body", "status", "pattern"), [
    (b"{not json", 400, r"body: is not valid JSON"),
    (b'"yes"', 422, r"body: must be a feedback object or a list of them \(got 'str'\)"),
    (b"[]", 422, r"body: holds no feedback records"),
    (b'[{"row_id": "a:0", "label": 1}, 7]', 422, r"records\[1\]: must be an object \(got 7\)"),
    (b'[{"label": "yes"}]', 422, r"records\[0\]: has neither row_id nor request_id"),
    (b'[{"row_id": "a:0"}]', 422, r"records\[0\]\.label: is missing"),
    (b'[{"row_id": "a:0", "label": null}]', 422, r"records\[0\]\.label: is missing"),
    (b'[{"row_id": "a:0", "label": [1]}]', 422, r"records\[0\]\.label: must be a string, a number or a bool"),
    (b'[{"row_id": "a:0", "label": " "}]', 422, r"records\[0\]\.label: is empty"),
    (b'[{"row_id": "", "label": 1}]', 422, r"records\[0\]\.row_id: must be a non-empty string"),
    (b'[{"request_id": 5, "label": 1}]', 422, r"records\[0\]\.request_id: must be a non-empty string"),
    (b'[{"request_id": "a", "row": -1, "label": 1}]', 422, r"records\[0\]\.row: must be an integer >= 0"),
    (b'[{"request_id": "a", "row": true, "label": 1}]', 422, r"records\[0\]\.row: must be an integer"),
    (b'[{"row_id": "a:0", "lable": 1, "label": 1}]', 422,
     r"records\[0\]\.lable: is not a feedback field .*\n.*did you mean 'label'\?"),
    (b'[{"row_id": "a:0", "label": 1, "timestamp": "yesterday"}]', 422,
     r"records\[0\]\.timestamp: is not an ISO 8601 time or epoch seconds \(got 'yesterday'\)"),
    (b'[{"row_id": "a:1", "request_id": "b", "label": 1}]', 422,
     r"records\[0\]\.row_id: does not match request_id 'b' \(got 'a:1'\)"),
    (b'[{"row_id": "a:1", "row": 2, "label": 1}]', 422, r"records\[0\]\.row_id: does not match row 2"),
])
def test_feedback_errors_name_the_record(body: bytes, status: int, pattern: str) -> None:
    with pytest.raises(RequestError, match=pattern) as caught:
        parse_feedback(body)
    assert caught.value.status == status


def test_feedback_errors_are_reported_together() -> None:
    body = json.dumps([{"row_id": "a:0", "label": "yes"}, {"label": "no"}, {"row_id": "b:0"},
                       {"request_id": "c", "row": "x", "label": 1}]).encode()
    with pytest.raises(RequestError, match="3 problems") as caught:
        parse_feedback(body)
    assert [p.loc for p in caught.value.problems] == ["records[1]", "records[2].label", "records[3].row"]


def test_feedback_records_are_normalised() -> None:
    body = json.dumps([
        {"row_id": "r1:2", "label": "yes"},
        {"request_id": "r2", "label": True, "timestamp": "2026-11-22T10:00:00Z"},
        {"request_id": "r3", "row": 4, "label": 1.0, "timestamp": 0},
        {"row_id": "order-991", "label": 2.5},
        {"row_id": "r4:1", "request_id": "r4", "row": 1, "label": 0},
    ]).encode()
    records = parse_feedback(body)
    assert [(r["row_id"], r["request_id"], r["row"], r["label"]) for r in records] == [
        ("r1:2", "r1", 2, "yes"), ("r2:0", "r2", 0, "true"), ("r3:4", "r3", 4, "1"),
        ("order-991", None, None, "2.5"), ("r4:1", "r4", 1, "0")]
    assert records[1]["timestamp"] == datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert records[2]["timestamp"] == datetime(1970, 1, 1, tzinfo=UTC)
    assert records[0]["timestamp"] is None
    assert parse_feedback(b'{"row_id": "x:0", "label": "no"}')[0]["label"] == "no"
    assert [label_text(v) for v in (np.int64(3), np.float64(2.0), np.bool_(False), 0.5, None)] == [
        "3", "2", "false", "0.5", None]


def test_feedback_joins_the_latest_label_to_logged_rows(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, spec())
    for i in range(4):
        log.append(rows(f"req-{i}", 2))
    log.close()
    clock = FakeClock(NOON.timestamp())
    store = FeedbackStore(tmp_path, clock=clock)
    assert store.append(parse_feedback(json.dumps([
        {"request_id": "req-0", "label": "no"}, {"row_id": "req-1:1", "label": "yes"},
        {"row_id": "nobody:0", "label": "yes"}]).encode())) == 3
    clock.now += 60
    store.append(parse_feedback(b'[{"request_id": "req-0", "row": 0, "label": "yes"}]'))  # a correction
    clock.now += 86_400  # the next day: a second folder
    store.append(parse_feedback(b'{"row_id": "req-2:0", "label": "no", "timestamp": 1.5}'))
    assert len(list((tmp_path / "feedback").iterdir())) == 2
    feedback = read_feedback(tmp_path)
    assert feedback.height == 5 and feedback["label"].to_list()[:2] == ["no", "yes"]
    assert feedback["timestamp"][-1] == datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)
    joined = join_feedback(read_predictions(tmp_path), feedback)
    assert joined.height == 8
    labels = dict(zip(joined["row_id"], joined["label"], strict=True))
    assert labels == {"req-0:0": "yes", "req-0:1": None, "req-1:0": None, "req-1:1": "yes",
                      "req-2:0": "no", "req-2:1": None, "req-3:0": None, "req-3:1": None}
    assert joined.filter(pl.col("row_id") == "req-0:0")["label_timestamp"][0] == NOON + timedelta(seconds=60)


def test_a_row_id_sent_as_request_id_the_deprecated_name_names_that_row(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, spec())
    log.append(rows("req-5", 2))
    log.append(rows("req-6:1", 1))  # a request id that looks like a row id is still a request id
    log.close()
    records = check_feedback(parse_feedback(json.dumps([
        {"request_id": "req-5:1", "label": "yes"},  # /predict named each row's id request_id before
        {"request_id": "req-6:1", "label": "no"},
        {"row_id": "req-5:0", "label": "no"}]).encode()), tmp_path)
    assert [(r["row_id"], r["request_id"], r["row"]) for r in records] == [
        ("req-5:1", "req-5", 1), ("req-6:1:0", "req-6:1", 0), ("req-5:0", "req-5", 0)]
    assert all(set(r) == {"row_id", "request_id", "row", "label", "timestamp"} for r in records)
    with pytest.raises(RequestError, match=r"1 row id\(s\) not in the prediction log: 'req-5:7:0'"):
        check_feedback(parse_feedback(b'{"request_id": "req-5:7", "label": "no"}'), tmp_path)


def test_regression_labels_join_as_numbers(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, spec())
    log.append(RowsToLog("r", NOON, "price", "1", "/predict", {"x": "numeric"}, {"x": [1.0, 2.0]},
                         Prediction(labels=np.array([10.0, 20.0])), None))
    log.close()
    FeedbackStore(tmp_path).append(parse_feedback(b'[{"row_id": "r:0", "label": 12.5}, '
                                                  b'{"row_id": "r:1", "label": "n/a"}]'))
    joined = join_feedback(read_predictions(tmp_path), read_feedback(tmp_path)).sort("row")
    assert joined.schema["label"] == pl.Float64
    assert joined["label"].to_list() == [12.5, None]
    assert read_feedback(tmp_path / "empty").height == 0
