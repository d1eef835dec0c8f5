"""The loop end to end, with a real server, real files and tiny data.

Month 1 trains the champion. Month 2's traffic has two shifted columns (`spend` and `region`)
and a changed relation to the label (it now follows `visits`, not `tenure`). Each test trains
its own project and serves its own traffic, so each holds alone and in any order: monitoring
flags exactly the shifted columns and the drop; `looml loop` retrains on the new window and
promotes a better challenger while a client keeps sending requests (none fails, the server
moves to the new version); a retrain on the window the champion learnt reproduces it and is
kept; a challenger that is not better is kept out with the reason recorded; rollback restores
the old champion.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import looml
from liveserver import LiveServer
from looml.cli import app
from looml.monitor.loop import cycle, watch
from looml.monitor.moves import history, promote, rollback
from looml.spec import load_spec
from looml.store.connect import local_tracking_uri
from looml.store.predictions import read_predictions
from looml.store.versions import champion_version

SPEC = """seed: 5
data:
  source: month1.csv
  target: churned
split:
  folds: 3
models:
  candidates: [linear]
tuning:
  method: none
registry:
  model_name: shop
serve:
  reload_seconds: 0.2
  log: {flush_seconds: 0.2}
loop:
  retrain_data: labelled_traffic
  promotion: {min_rows: 100, resamples: 300}
monitor:
  performance: {min_labels: 100, resamples: 300}
"""


def month(rows: int, seed: int, shifted: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.normal(0, 1, rows)
    visits = rng.normal(0, 1, rows)
    spend = rng.normal(3.0 if shifted else 0.0, 1, rows)
    region = rng.choice(["north", "south", "east", "west"], rows,
                        p=[0.1, 0.1, 0.1, 0.7] if shifted else [0.4, 0.3, 0.2, 0.1])
    signal = (visits if shifted else tenure) * 2.5 + rng.normal(0, 0.5, rows)
    return pl.DataFrame({"tenure": tenure.round(3), "visits": visits.round(3), "spend": spend.round(3),
                         "region": region, "churned": np.where(signal > 0, "yes", "no")})


def train(folder: Path) -> Path:
    """A project whose champion, version 1, learnt month 1; returns its spec."""
    folder.mkdir(parents=True)
    month(1500, seed=1, shifted=False).write_csv(folder / "month1.csv")
    spec = folder / "looml.yaml"
    spec.write_text(SPEC)
    assert looml.run(spec).model_version == "1"
    return spec


def train_second_version(spec: Path) -> None:
    """Version 2, from another month-1 sample; version 1 stays champion."""
    month(1500, seed=3, shifted=False).write_csv(spec.parent / "month1.csv")
    result = looml.run(spec)
    assert (result.model_version, result.champion) == ("2", False)


@contextmanager
def serving(spec: Path, traffic: pl.DataFrame) -> Iterator[LiveServer]:
    """A server for the project that has scored `traffic` and stored its labels as feedback."""
    with LiveServer(spec) as server:
        serve_month(server, traffic)
        wait_logged(spec, traffic.height)
        yield server


def shifted() -> pl.DataFrame:
    return month(1200, seed=2, shifted=True)


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def served_versions(server: LiveServer) -> list[str]:
    return server.client.get("/v2/models/shop").json()["versions"]


def serve_month(server: LiveServer, frame: pl.DataFrame, batch: int = 50) -> list[str]:
    """Send the rows as /predict requests; post their labels as feedback; return the row ids."""
    ids: list[str] = []
    rows = frame.drop("churned").to_dicts()
    for start in range(0, len(rows), batch):
        answer = server.client.post("/predict", json={"records": rows[start:start + batch]})
        assert answer.status_code == 200, answer.text
        ids += [p["row_id"] for p in answer.json()["predictions"]]
    labels = frame["churned"].to_list()
    answer = server.client.post("/feedback", json=[{"row_id": i, "label": y} for i, y in zip(ids, labels,
                                                                                             strict=True)])
    assert answer.status_code == 200, answer.text
    return ids


def wait_logged(spec: Path, rows: int) -> None:
    logs = spec.parent / ".looml" / "logs"
    wait_until(lambda: read_predictions(logs).height >= rows, "the prediction log was not written")


class SteadyClient:
    """Sends one-row requests in a loop; records failures and the versions that answered."""

    def __init__(self, address: str, row: dict[str, Any]) -> None:
        self.address, self.row = address, row
        self.failures: list[str] = []
        self.versions: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        with httpx.Client(base_url=f"http://{self.address}", timeout=30) as c:
            while not self.stop.is_set():
                r = c.post("/predict", json={"records": [self.row]})
                if r.status_code != 200:
                    self.failures.append(r.text)
                else:
                    self.versions.append(r.json()["model_version"])
                time.sleep(0.005)

    def __enter__(self) -> SteadyClient:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_monitor_flags_exactly_the_shifted_columns_and_the_drop(tmp_path: Path) -> None:
    project = train(tmp_path / "shop")
    with serving(project, shifted()):
        result = CliRunner().invoke(app, ["monitor", str(project), "--last", "1d", "--json"])
    assert result.exit_code == 6, result.output
    found = json.loads(result.stdout)
    assert sorted(found["report"]["drifted"]) == ["region", "spend"]
    assert found["performance"]["verdict"] == "drop" and found["performance"]["labelled"] == 1200
    assert {a["kind"] for a in found["alerts"]} == {"drift", "performance_drop"}


def test_the_loop_promotes_a_better_challenger_without_a_failed_request(tmp_path: Path) -> None:
    project = train(tmp_path / "shop")
    row = month(1, seed=9, shifted=True).drop("churned").to_dicts()[0]
    with serving(project, shifted()) as server, SteadyClient(server.address, row) as client:
        wait_until(lambda: len(client.versions) > 0, "the client got no answer")
        result = cycle(project)
        wait_until(lambda: served_versions(server) == ["2"], "the server did not follow the new champion")
        answered = len(client.versions)
        wait_until(lambda: len(client.versions) > answered, "the client got no answer after the move")
    assert sorted(result.drift["drifted"]) == ["region", "spend"]
    assert result.performance["verdict"] == "drop"
    assert set(result.triggers) == {"drift", "performance_drop"}
    decision = result.decision
    assert decision["action"] == "promote" and decision["champion_after"] == "2", decision["reason"]
    assert decision["reason"].startswith("the challenger is better: roc_auc ")
    comparison = decision["evidence"]["comparison"]
    assert comparison["significant"] and comparison["challenger"] > comparison["champion"] + 0.2
    # spend moved past the range training saw: the served rows break the schema too
    assert {a["kind"] for a in result.alerts} == {"drift", "performance_drop", "validation_errors"}
    assert result.validation_errors == [next(e for e in result.validation_errors
                                             if e.startswith("column 'spend': out_of_range: "))]
    assert client.failures == []
    assert client.versions[0] == "1" and client.versions[-1] == "2"
    uri = local_tracking_uri(load_spec(project).tracking.uri, project.parent)
    assert champion_version(uri, "shop") == "2"
    assert [d.action for d in history(project)] == ["promote"]


def test_a_retrain_on_the_window_the_champion_learnt_reproduces_it_and_keeps_it(tmp_path: Path) -> None:
    project = train(tmp_path / "shop")
    with serving(project, shifted()):
        assert cycle(project).decision["action"] == "promote"  # version 2 learnt this window
        again = cycle(project, retrain=True).decision
    assert (again["action"], again["champion_before"], again["champion_after"]) == ("keep", "2", "2")
    assert again["reason"] == "retraining reproduced the champion itself (same data, same spec)"
    assert [d.action for d in history(project)] == ["promote", "keep"]


def test_a_challenger_that_is_not_better_is_kept_out_with_the_reason(tmp_path: Path) -> None:
    project = train(tmp_path / "shop")
    spec = load_spec(project)
    # A retrain asked for by hand, on traffic like the champion's month: it models it well.
    tougher = spec.model_copy(update={"loop": spec.loop.model_copy(update={
        "promotion": spec.loop.promotion.model_copy(update={"margin": 0.05})})})
    with serving(project, month(1200, seed=2, shifted=False)):
        result = cycle(tougher, retrain=True)
    decision = result.decision
    assert result.triggers == ["requested"]
    assert (decision["action"], decision["challenger"], decision["champion_after"]) == ("keep", "2", "1")
    assert decision["reason"].startswith("the challenger is not better by the margin with 95% confidence: "
                                         "roc_auc "), decision["reason"]
    assert decision["reason"].endswith("margin 0.05")
    uri = local_tracking_uri(spec.tracking.uri, project.parent)
    assert champion_version(uri, "shop") == "1"
    assert [d.action for d in history(project)] == ["keep"]


def test_rollback_restores_the_old_champion_and_history_shows_every_decision(tmp_path: Path) -> None:
    project = train(tmp_path / "shop")
    train_second_version(project)
    promote(project, "2")
    with LiveServer(project) as server:
        assert served_versions(server) == ["2"]
        decision = rollback(project)
        assert (decision.champion_before, decision.champion_after) == ("2", "1")
        wait_until(lambda: served_versions(server) == ["1"], "the server did not follow the rollback")
    shown = CliRunner().invoke(app, ["models", "history", str(project), "--json"])
    assert shown.exit_code == 0, shown.output
    assert [d["action"] for d in json.loads(shown.stdout)] == ["promote", "rollback"]
    assert [(d.champion_before, d.champion_after) for d in history(project)] == [("1", "2"), ("2", "1")]


def test_the_cli_verbs_of_the_loop(tmp_path: Path) -> None:
    project = train(tmp_path / "shop")
    train_second_version(project)
    runner = CliRunner()
    with serving(project, shifted()):
        listed = runner.invoke(app, ["models", "list", str(project), "--json"])
        assert listed.exit_code == 0, listed.output
        aliases = {v["version"]: v["aliases"] for v in json.loads(listed.stdout)}
        assert aliases == {"1": ["champion"], "2": []}
        assert "roc_auc" in json.loads(listed.stdout)[-1]["metrics"]

        assert runner.invoke(app, ["models", "promote", "2", "--spec", str(project)]).exit_code == 0
        assert runner.invoke(app, ["models", "rollback", str(project)]).exit_code == 0
        shown = runner.invoke(app, ["models", "history", str(project), "--json"])
        assert [d["action"] for d in json.loads(shown.stdout)] == ["promote", "rollback"]
        missing = runner.invoke(app, ["models", "show", "99", "--spec", str(project)])
        assert missing.exit_code == 5 and "no such model version" in missing.stdout

        logged = read_predictions(project.parent / ".looml" / "logs").head(3)
        labels = tmp_path / "labels.csv"
        pl.DataFrame({"row_id": logged["row_id"], "label": ["yes", "no", "yes"]}).write_csv(labels)
        stored = runner.invoke(app, ["feedback", str(labels), "--spec", str(project)])
        assert stored.exit_code == 0 and "stored 3" in stored.output
        bad = tmp_path / "bad.csv"
        pl.DataFrame({"row_id": [logged["row_id"][0], "nope:0"], "label": ["maybe", "yes"]}).write_csv(bad)
        refused = runner.invoke(app, ["feedback", str(bad), "--spec", str(project)])
        assert refused.exit_code == 3, refused.output
        assert "'nope:0'" in refused.output and "'maybe'" in refused.output and "stored" not in refused.output

        cycled = runner.invoke(app, ["loop", str(project), "--json"])
    assert cycled.exit_code == 6, cycled.output  # the traffic drifts from champion v1: alerts
    decision = json.loads(cycled.stdout)["decision"]
    assert (decision["action"], decision["champion_after"]) == ("promote", "3"), decision["reason"]


def test_watch_runs_cycles_at_the_interval_and_survives_a_failed_one(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = load_spec(train(tmp_path / "shop"))
    quiet = spec.model_copy(update={"loop": spec.loop.model_copy(update={
        "interval": 60.0, "triggers": spec.loop.triggers.model_copy(update={
            "drift": False, "performance_drop": False})})})
    seen: list[Any] = []
    slept: list[float] = []
    watch(quiet, cycles=2, on_cycle=seen.append, sleep=slept.append)
    assert len(seen) == 2 and all(r.decision is None and r.triggers == [] for r in seen)
    assert len(slept) == 1 and 0 < slept[0] <= 60.0

    broken = quiet.model_copy(update={"registry": quiet.registry.model_copy(update={"model_name": "nope"})})
    with caplog.at_level(logging.ERROR, logger="looml"):
        watch(broken, cycles=2, on_cycle=seen.append, sleep=slept.append)  # logged, not raised
    assert len(seen) == 2 and len(slept) == 2
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["loop cycle failed"] * 2
