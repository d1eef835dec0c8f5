"""The loop end to end, with a real server, real files and tiny data.

Month 1 trains the champion. Month 2's traffic has two shifted columns (`spend` and `region`)
and a changed relation to the label (it now follows `visits`, not `tenure`). The test serves
month 2, posts its labels, and checks that monitoring flags exactly the shifted columns and the
drop, that `looml loop` retrains on the new window and promotes a better challenger while a
client keeps sending requests (none fails, the server moves to the new version), that a
challenger that is not better is kept out with the reason recorded, and that rollback restores
the old champion.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
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
from looml.monitor.loop import cycle, history, rollback, watch
from looml.spec import load_spec
from looml.store.predictions import read_predictions
from looml.store.tracking import champion_version, local_tracking_uri

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


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loop")
    month(1500, seed=1, shifted=False).write_csv(folder / "month1.csv")
    spec = folder / "looml.yaml"
    spec.write_text(SPEC)
    assert looml.run(spec).model_version == "1"
    return spec


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
    deadline = time.time() + 30
    while read_predictions(spec.parent / ".looml" / "logs").height < rows:
        assert time.time() < deadline, "the prediction log was not written"
        time.sleep(0.1)


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


@pytest.fixture(scope="module")
def shifted_traffic(project: Path) -> Iterator[LiveServer]:
    with LiveServer(project) as server:
        serve_month(server, month(1200, seed=2, shifted=True))
        wait_logged(project, 1200)
        yield server


def test_monitor_flags_exactly_the_shifted_columns_and_the_drop(project: Path,
                                                                shifted_traffic: LiveServer) -> None:
    result = CliRunner().invoke(app, ["monitor", str(project), "--last", "1d", "--json"])
    assert result.exit_code == 6, result.output
    found = json.loads(result.stdout)
    assert sorted(found["report"]["drifted"]) == ["region", "spend"]
    assert found["performance"]["verdict"] == "drop" and found["performance"]["labelled"] == 1200
    assert {a["kind"] for a in found["alerts"]} == {"drift", "performance_drop"}


def test_the_loop_promotes_a_better_challenger_without_a_failed_request(
        project: Path, shifted_traffic: LiveServer) -> None:
    row = month(1, seed=9, shifted=True).drop("churned").to_dicts()[0]
    with SteadyClient(shifted_traffic.address, row) as client:
        time.sleep(0.3)
        result = cycle(project)
        deadline = time.time() + 30
        while shifted_traffic.client.get("/v2/models/shop").json()["versions"] != ["2"]:
            assert time.time() < deadline, "the server did not follow the new champion"
            time.sleep(0.1)
        time.sleep(0.3)
    assert sorted(result.drift["drifted"]) == ["region", "spend"]
    assert result.performance["verdict"] == "drop"
    assert {"drift", "performance_drop"} <= set(result.triggers)
    decision = result.decision
    assert decision["action"] == "promote" and decision["champion_after"] == "2", decision["reason"]
    comparison = decision["evidence"]["comparison"]
    assert comparison["significant"] and comparison["challenger"] > comparison["champion"] + 0.2
    assert {a["kind"] for a in result.alerts} >= {"drift", "performance_drop"}
    assert client.failures == []
    assert client.versions[0] == "1" and client.versions[-1] == "2"
    uri = local_tracking_uri(load_spec(project).tracking.uri, project.parent)
    assert champion_version(uri, "shop") == "2"


def test_a_challenger_that_is_not_better_is_kept_out_with_the_reason(project: Path,
                                                                    shifted_traffic: LiveServer) -> None:
    spec = load_spec(project)
    # A retrain asked for by hand, on a window of traffic the champion already models well.
    tougher = spec.model_copy(update={"loop": spec.loop.model_copy(update={
        "promotion": spec.loop.promotion.model_copy(update={"margin": 0.05})})})
    result = cycle(tougher, retrain=True)
    decision = result.decision
    assert decision["action"] == "keep" and decision["champion_after"] == "2"
    assert "not better" in decision["reason"] or "reproduced the champion" in decision["reason"]
    assert history(project)[-1].action == "keep"


def test_rollback_restores_the_old_champion_and_history_shows_every_decision(
        project: Path, shifted_traffic: LiveServer) -> None:
    decision = rollback(project)
    assert (decision.champion_before, decision.champion_after) == ("2", "1")
    deadline = time.time() + 30
    while shifted_traffic.client.get("/v2/models/shop").json()["versions"] != ["1"]:
        assert time.time() < deadline, "the server did not follow the rollback"
        time.sleep(0.1)
    shown = CliRunner().invoke(app, ["models", "history", str(project), "--json"])
    assert shown.exit_code == 0, shown.output
    assert [d.action for d in history(project)] == ["promote", "keep", "rollback"]


def test_the_cli_verbs_of_the_loop(project: Path, shifted_traffic: LiveServer, tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", str(project), "--json"])
    assert listed.exit_code == 0, listed.output
    aliases = {v["version"]: v["aliases"] for v in json.loads(listed.stdout)}
    assert aliases["1"] == ["champion"] and "roc_auc" in json.loads(listed.stdout)[-1]["metrics"]

    assert runner.invoke(app, ["models", "promote", "2", "--spec", str(project)]).exit_code == 0
    assert runner.invoke(app, ["models", "rollback", str(project)]).exit_code == 0
    shown = runner.invoke(app, ["models", "history", str(project), "--json"])
    assert [d["action"] for d in json.loads(shown.stdout)][-2:] == ["promote", "rollback"]
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
    assert cycled.exit_code == 6, cycled.output  # the traffic still drifts from champion v1
    assert json.loads(cycled.stdout)["decision"]["action"] in ("promote", "keep")


def test_watch_runs_cycles_at_the_interval_and_survives_a_failed_one(project: Path,
                                                                    shifted_traffic: LiveServer) -> None:
    spec = load_spec(project)
    quiet = spec.model_copy(update={"loop": spec.loop.model_copy(update={
        "interval": 60.0, "triggers": spec.loop.triggers.model_copy(update={
            "drift": False, "performance_drop": False})})})
    seen: list[Any] = []
    slept: list[float] = []
    watch(quiet, cycles=2, on_cycle=seen.append, sleep=slept.append)
    assert len(seen) == 2 and all(r.decision is None for r in seen)
    assert len(slept) == 1 and 0 < slept[0] <= 60.0

    broken = quiet.model_copy(update={"registry": quiet.registry.model_copy(update={"model_name": "nope"})})
    watch(broken, cycles=2, on_cycle=seen.append, sleep=slept.append)  # logged, not raised
    assert len(seen) == 2
