"""Team mode against a real backend: PostgreSQL, moto S3 and `mlflow server` on loopback
(tests/teamserver.py), two project folders sharing one registered model.

One server and one pair of concurrent runs serve the module (about 35-45 s of the module's
time here is the server's start and the two runs)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from external_tools import unavailable
from filescan import texts_under
from teamserver import TeamServer, running_team_server, team_unavailable_reason

LOOML = Path(sys.executable).with_name("looml")
CORPUS = Path("/work/shared/corpus/biomass_heating_value.parquet")
MODEL = "biomass"
PASSWORD = "team-Pa55word-never-logged"  # sent by MLflow's client as basic auth, never stored


def spec_text(url: str, seed: int) -> str:
    return (f"seed: {seed}\ndata: {{source: data.parquet, target: HHV}}\n"
            "models: {candidates: [linear]}\ntuning: {trials: 2}\n"
            f"registry: {{model_name: {MODEL}}}\ntracking: {{uri: '{url}'}}\n"
            "serve: {reload_seconds: 0.2, log: {flush_seconds: 0.2}}\n")


def corpus_table() -> Path:
    if not CORPUS.is_file():
        pytest.skip(f"the corpus table {CORPUS} is missing")
    return CORPUS


@pytest.fixture(scope="module")
def team() -> Iterator[TeamServer]:
    reason = team_unavailable_reason()
    if reason is not None:
        unavailable(reason)
    with running_team_server() as server:
        yield server
    assert server.process.poll() is not None, "the mlflow server is still running"


@dataclass
class Pair:
    """Two project folders that ran `looml run` at the same time against the server."""

    folders: list[Path]
    outputs: list[subprocess.CompletedProcess[str]]
    champion: str | None  # right after the runs, before any test moved it
    versions: list[str]


def looml(folder: Path, team: TeamServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = team.client_env(MLFLOW_TRACKING_USERNAME="alice", MLFLOW_TRACKING_PASSWORD=PASSWORD)
    return subprocess.run([str(LOOML), *args], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def pair(team: TeamServer, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    table = pl.read_parquet(corpus_table())
    folders = []
    for i in range(2):
        folder = tmp_path_factory.mktemp(f"member{i}")
        table.write_parquet(folder / "data.parquet")
        (folder / "looml.yaml").write_text(spec_text(team.url, seed=3 + i), encoding="utf-8")
        folders.append(folder)
    env = team.client_env(MLFLOW_TRACKING_USERNAME="alice", MLFLOW_TRACKING_PASSWORD=PASSWORD)
    started = [subprocess.Popen([str(LOOML), "run", "looml.yaml", "--json"], cwd=f, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for f in folders]
    outputs = []
    for process in started:
        out, err = process.communicate(timeout=300)
        outputs.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    from mlflow import MlflowClient

    client = MlflowClient(team.url)
    versions = sorted(v.version for v in client.search_model_versions(f"name = '{MODEL}'"))
    try:
        champion = client.get_model_version_by_alias(MODEL, "champion").version
    except Exception:  # no alias: the assertion reports it
        champion = None
    return Pair(folders, outputs, champion, versions)


def test_two_runs_at_once_make_two_complete_versions_and_one_champion(pair: Pair, team: TeamServer) -> None:
    from mlflow import MlflowClient

    from looml.store.versions import load_pipeline

    for o in pair.outputs:
        print(o.returncode, o.stdout, o.stderr[-3000:])  # shown when the assertion fails
    assert [o.returncode for o in pair.outputs] == [0, 0]
    results = [json.loads(o.stdout) for o in pair.outputs]
    assert sorted(r["model_version"] for r in results) == pair.versions == ["1", "2"]
    assert sorted(r["champion"] for r in results) == [False, True]
    winner = next(r["model_version"] for r in results if r["champion"])
    assert pair.champion == winner
    client = MlflowClient(team.url)
    assert client.search_registered_models(f"name = '{MODEL}.looml-lock'") == []  # the lease was given back
    for version in pair.versions:  # each version whole: its model loads, its run finished
        pipeline, run_id = load_pipeline(team.url, MODEL, version)
        assert hasattr(pipeline, "predict") and client.get_run(run_id).info.status == "FINISHED"


def test_credentials_from_the_environment_appear_nowhere(pair: Pair, team: TeamServer) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(team.url)
    for output, folder in zip(pair.outputs, pair.folders, strict=True):
        assert PASSWORD not in output.stdout + output.stderr
        run = client.get_run(json.loads(output.stdout)["run_id"])
        assert PASSWORD not in json.dumps([run.data.params, run.data.tags])
        # every file the runs wrote: the reports, the cache, the snapshots, the audit trail
        assert [where for where, data in texts_under(folder) if PASSWORD.encode() in data] == []
        assert not (folder / ".looml" / "mlflow.db").exists()  # nothing made locally


def test_history_is_shared_by_both_folders_and_rollback_uses_it(pair: Pair, team: TeamServer) -> None:
    from looml.monitor.moves import history

    first, second = pair.folders
    other = "2" if pair.champion == "1" else "1"
    promoted = looml(first, team, "models", "promote", other, "--spec", "looml.yaml")
    assert promoted.returncode == 0, promoted.stderr
    rolled = looml(second, team, "models", "rollback", "--spec", "looml.yaml")  # from the other folder
    assert rolled.returncode == 0, rolled.stderr

    seen = [[d.to_dict() for d in history(f / "looml.yaml")] for f in pair.folders]  # in-process: faster
    assert seen[0] == seen[1]
    assert [(d["action"], d["champion_after"]) for d in seen[0][-2:]] == [("promote", other),
                                                                            ("rollback", pair.champion)]
    assert not any((f / ".looml" / "audit.jsonl").exists() for f in pair.folders)
    listed = json.loads(looml(second, team, "models", "list", "--spec", "looml.yaml", "--json").stdout)
    assert {v["version"]: v["aliases"] for v in listed}[pair.champion] == ["champion"]


def test_a_promotion_on_a_champion_moved_meanwhile_is_refused(pair: Pair, team: TeamServer) -> None:
    from looml.errors import RegistryError
    from looml.store.audit import Decision, audit_log
    from looml.store.registry import record_move
    from looml.store.versions import champion_version

    now = champion_version(team.url, MODEL)
    stale = "2" if now == "1" else "1"
    decision = Decision(action="promote", model_name=MODEL, champion_before=stale, champion_after=stale)
    with pytest.raises(RegistryError, match="the champion moved while this decision was taken"):
        record_move(team.url, audit_log(team.url, pair.folders[0] / ".looml"), decision)
    assert champion_version(team.url, MODEL) == now


def test_serve_predict_monitor_and_loop_follow_the_remote_registry(pair: Pair, team: TeamServer) -> None:
    from liveserver import LiveServer
    from looml.monitor.moves import promote
    from looml.store.versions import champion_version

    folder = pair.folders[0]
    spec = folder / "looml.yaml"
    row = pl.read_parquet(folder / "data.parquet").drop("HHV").head(1).to_dicts()[0]
    start = champion_version(team.url, MODEL)
    other = "2" if start == "1" else "1"
    with LiveServer(spec) as running:
        answer = running.client.post("/predict", json={"records": [row]})
        assert answer.status_code == 200 and answer.json()["model_version"] == start
        promote(spec, other, by="test")  # the alias moves on the server: the served model follows
        deadline = time.time() + 30
        while running.client.get(f"/v2/models/{MODEL}").json()["versions"] != [other]:
            assert time.time() < deadline, "the server did not follow the remote champion"
            time.sleep(0.1)
        assert running.client.post("/predict", json={"records": [row]}).json()["model_version"] == other

    scored = looml(folder, team, "predict", "looml.yaml", "--data", "data.parquet", "--out", "scored.parquet",
                   "--json")
    assert scored.returncode == 0, scored.stderr
    rows = pl.read_parquet(folder / "data.parquet").height
    assert pl.read_parquet(folder / "scored.parquet").height == rows
    monitored = looml(folder, team, "monitor", "looml.yaml", "--data", "data.parquet", "--json")
    assert monitored.returncode == 0, monitored.stderr
    assert json.loads(monitored.stdout)["model_version"] == other
    cycled = looml(folder, team, "loop", "looml.yaml", "--json")
    assert cycled.returncode == 0, cycled.stderr
    assert json.loads(cycled.stdout.splitlines()[-1])["champion"] == other


def test_a_password_in_the_tracking_uri_is_refused_without_echoing_it(tmp_path: Path) -> None:
    from looml.errors import SpecError
    from looml.spec import load_spec

    text = spec_text("http://alice:hunter2@127.0.0.1:5000", 3)
    (tmp_path / "looml.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match="MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD") as caught:
        load_spec(tmp_path / "looml.yaml")
    assert "hunter2" not in caught.value.render()
