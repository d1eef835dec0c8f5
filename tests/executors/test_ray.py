"""The Ray executor on a real cluster: a head and a second node, each its own `ray start` with one
CPU on loopback (tests/raycluster.py), shared by the tests of this module (the test that kills a
node adds a third one to kill, so that the others keep two whatever the order).

The executor keeps the contract of the local pool (jobs against data sent once, questions
mid-way, a failing job fails alone, a cancelled job stops, a dead worker is a failed job); a
search across both nodes gives the local pool's results; a node killed mid-search fails only
the trials it was running. At the end no process of the cluster is left.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
import ray  # in the dev extra: CI has it

from looml.errors import DataError
from looml.executors import JobFailure
from looml.executors.ray import RayExecutor, connect
from looml.learn.tune import Tuned, tune
from looml.spec import Spec
from raycluster import Cluster, leftover_processes, running_cluster

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"))
CANDIDATES = ["linear", "decision_tree"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(nodes=2, cpus=1) as started, pytest.MonkeyPatch.context() as env:
        for key, value in started.env.items():  # this process is the driver: the token too
            env.setenv(key, value)
        reload_auth()
        # the job functions below are this module's: Ray ships them by value, not by import
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            connect(started.address)  # the process's connection, which the searches reuse
            started.wait(2)
            warm_up(2)
            yield started
        finally:
            ray.shutdown()
    reload_auth()  # without the token again
    assert leftover_processes(started.groups, started.temp_dir) == []
    assert not started.temp_dir.exists()


def reload_auth() -> None:
    """Have Ray read its authentication settings again: it read them at `import ray`, before the
    cluster's token was made (Ray's own tests do the same)."""
    try:
        from ray._private.authentication_test_utils import reset_auth_token_state
    except ImportError:  # a Ray without token authentication ignores the token
        return
    reset_auth_token_state()


def warm_up(nodes: int) -> None:
    """A worker on each node imports what trials import: the tests then time trials, not imports
    (a time budget counts a cold worker's start, 3-5 s on a busy two-core machine)."""

    def load() -> None:
        import looml.learn.trial
        import looml.learn.zoo  # noqa: F401

        time.sleep(1.0)  # held, so that each node's one CPU takes one

    ray.get([ray.remote(load).options(num_cpus=1).remote() for _ in range(nodes)])


def scaled(job: Any, data: Any, ask: Callable[[Any], Any]) -> Any:
    """A job: multiply by the data; 'ask' jobs ask the caller first; 'boom' raises."""
    if job == "boom":
        raise ValueError("boom")
    if job == "ask":
        return ask("factor?") * data
    if job == "sleep":
        time.sleep(60)
    if job == "die":
        os._exit(3)
    return job * data


def drain(executor: RayExecutor, count: int) -> dict[int, Any]:
    out: dict[int, Any] = {}
    deadline = time.monotonic() + 60
    while len(out) < count and time.monotonic() < deadline:
        out.update(executor.results(timeout=30))
    return out


def spam(rows: int = 300) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    """A few hundred rows of a real table (e-mails, spam or not), its numeric columns."""
    frame = pl.read_parquet(CORPUS / "email_spam.parquet").sample(rows, seed=0)
    numeric = [c for c, t in frame.schema.items() if t.is_numeric() and c != "spam"]
    return frame.select(numeric).to_pandas(), frame["spam"].to_numpy(), dict.fromkeys(numeric, "numeric")


def search(executor: Any, on_trial: Callable[[Any], None] | None = None, **tuning: Any) -> Tuned:
    X, y, features = spam(240)
    spec = Spec.model_validate({
        "seed": 5, "data": {"source": "d.csv", "target": "spam"}, "registry": {"model_name": "m"},
        "split": {"folds": 4}, "models": {"candidates": CANDIDATES},
        "tuning": {"method": "bayesian", "executor": executor, **tuning}})
    return tune(X, y, features, spec, "classification", "roc_auc", on_trial=on_trial)


def scores(result: Tuned) -> list[tuple]:
    """Everything the search decided and measured of the models, but costs: timings, and the
    pickled size, which once in three runs differed by 15 bytes of 3,958 (pickle's memo of the
    shared objects in a trial's pipeline, not anything learned)."""
    return [(r.trial, r.name, r.params, r.choices, r.state, r.mean, r.std) for r in result.rows]


def alive_nodes() -> list[str]:
    return [n["NodeID"] for n in ray.nodes() if n["Alive"]]


def wait_for_two_idle_nodes(seconds: float = 120.0) -> None:
    """Until the cluster is the fixture's again: two alive nodes with their CPU free. A node
    another test killed is listed alive, its CPU free, until Ray's health check gives it up (tens
    of seconds), and a job another test cancelled may still hold a CPU: either way the next
    search's tasks all fit on one node."""
    deadline = time.monotonic() + seconds
    while len(alive_nodes()) != 2 or ray.available_resources().get("CPU", 0) < 2:
        assert time.monotonic() < deadline, f"not 2 idle nodes: {alive_nodes()} {ray.available_resources()}"
        time.sleep(0.2)


def test_a_search_across_the_nodes_gives_the_local_pools_results(cluster: Cluster) -> None:
    settings = {"trials": 12, "n_jobs": 2}
    wait_for_two_idle_nodes()  # one task per CPU, so both nodes run trials
    on_ray = search({"kind": "ray", "address": cluster.address}, **settings)
    local = search("local", **settings)
    assert scores(on_ray) == scores(local)
    assert any(r.state == "pruned" for r in on_ray.rows)  # the pruner's questions were answered
    [note] = [n for n in on_ray.notes if "Ray tasks" in n]
    ran = re.search(r"12 trials ran as Ray tasks on (\d) of the (\d) nodes at (\S+) \((.*)\)", note)
    assert ran and int(ran[1]) >= 2 and ran[3] == cluster.address, note  # one task per CPU: both lanes
    assert {m for m in re.findall(r"on node (\w+)", ran[4])} <= {node[:8] for node in alive_nodes()}


def test_the_executor_runs_jobs_against_the_data_sent_once_and_answers_questions(cluster: Cluster) -> None:
    asked: list[tuple[int, Any]] = []
    executor = RayExecutor(scaled, 10, lambda key, q: asked.append((key, q)) or 4, workers=2, threads=1,
                           cluster=connect(cluster.address))
    try:
        executor.submit(0, 3)
        executor.submit(1, "ask")
        assert executor.idle() == 0
        assert drain(executor, 2) == {0: 30, 1: 40}
        assert asked == [(1, "factor?")]
        executor.submit(2, "boom")
        executor.submit(3, 5)
        assert drain(executor, 2) == {2: JobFailure("ValueError: boom"), 3: 50}
        assert set(executor.placed.values()) <= set(alive_nodes())
    finally:
        executor.close()


def test_a_cancelled_job_stops_and_a_dead_worker_is_a_failed_job(cluster: Cluster) -> None:
    executor = RayExecutor(scaled, 10, lambda key, q: None, workers=2, threads=1,
                           cluster=connect(cluster.address))
    try:
        executor.submit(0, "sleep")
        executor.submit(1, "die")
        [(key, failure)] = drain(executor, 1).items()
        assert key == 1
        assert failure == JobFailure("the Ray worker process running it died (WorkerCrashedError)")
        assert executor.results(timeout=0.5) == [] and executor.idle() == 1
        executor.cancel(0)
        assert executor.idle() == 2
        executor.submit(2, 2)
        executor.submit(3, 3)
        assert drain(executor, 2) == {2: 20, 3: 30}
    finally:
        executor.close()


def test_a_trial_past_the_time_budget_is_cancelled_and_counted_over_budget(cluster: Cluster) -> None:
    slow = {"name": "random_forest", "params": {"n_estimators": 3000}}
    began = time.monotonic()
    result = _budget_search(cluster, slow)
    assert time.monotonic() - began < 10 * 1.05 + 2
    late = [r for r in result.rows if r.state == "over budget"]
    assert late and all(r.name == "random_forest" and r.error.startswith("stopped at the time budget")
                        for r in late)
    assert result.best.state == "complete"


def _budget_search(cluster: Cluster, slow: dict[str, Any]) -> Tuned:
    X, y, features = spam()
    spec = Spec.model_validate({
        "seed": 5, "data": {"source": "d.csv", "target": "spam"}, "registry": {"model_name": "m"},
        "models": {"candidates": ["linear", slow]},
        "tuning": {"method": "bayesian", "n_jobs": 2, "time_budget": 10, "ensemble": "none",
                   "executor": {"kind": "ray", "address": cluster.address}}})
    return tune(X, y, features, spec, "classification", "roc_auc")


def test_a_node_killed_mid_search_fails_only_its_trials(cluster: Cluster) -> None:
    extra = cluster.add_node()  # a third node, so that the other tests keep two
    cluster.wait(3)
    warm_up(3)
    seen: list[int] = []
    killed_after: list[int] = []

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (len(seen) >= 3 and cluster.busy(extra)):
            time.sleep(0.02)
        killed_after.append(max(seen, default=-1))
        cluster.kill(extra)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    try:
        result = search({"kind": "ray", "address": cluster.address}, lambda row: seen.append(row.trial),
                        trials=14, n_jobs=3, pruning=False, ensemble="none")
    finally:
        killer.join()
    lost = [r for r in result.rows if r.state == "failed"]
    assert lost and all("died" in r.error for r in lost), [r.error for r in lost]
    later = [r for r in result.rows if r.trial > killed_after[0] + 3]  # asked after the kill
    assert later and all(r.state == "complete" for r in later)
    assert result.best.state == "complete" and len(result.rows) == 14
    wait_for_two_idle_nodes()  # the killed node given up, so the next test meets the fixture's cluster


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    """A project whose linear model is registered, and 1,500 other rows of its table as CSV text
    with three bad values (an unparseable number)."""
    import looml

    frame = pl.read_parquet(CORPUS / "email_spam.parquet")
    numeric = [c for c, t in frame.schema.items() if t.is_numeric() and c != "spam"][:8]
    frame = frame.select([*numeric, "spam"]).sample(1_800, seed=2)
    root = tmp_path_factory.mktemp("batch")
    frame.head(300).write_csv(root / "train.csv")
    spec = root / "looml.yaml"
    spec.write_text("seed: 3\ndata:\n  source: train.csv\n  target: spam\nmodels:\n  candidates: [linear]\n"
                    "split:\n  folds: 2\nregistry:\n  model_name: spam\n", encoding="utf-8")
    looml.run(spec)
    rows = frame.tail(1_500).drop("spam").with_columns(pl.col(numeric[0]).cast(pl.String))
    rows = rows.with_columns(pl.when(pl.int_range(pl.len()).is_in([7, 700, 1_400])).then(pl.lit("n/a?"))
                             .otherwise(pl.col(numeric[0])).alias(numeric[0]))
    return spec, rows


def test_batch_scoring_in_ray_tasks_writes_what_the_local_path_writes(
        cluster: Cluster, registered: tuple[Path, pl.DataFrame], tmp_path: Path) -> None:
    from looml.batch import predict

    spec, rows = registered
    rows.write_csv(tmp_path / "rows.csv")
    runs = {}
    for executor in ("local", "ray"):
        runs[executor] = predict(spec, str(tmp_path / "rows.csv"), tmp_path / f"{executor}.parquet",
                                 chunk_rows=250, reject_file=tmp_path / f"{executor}-rejects.csv",
                                 executor=executor, address=cluster.address)
    local, on_ray = runs["local"], runs["ray"]
    assert (on_ray.rows, on_ray.scored, on_ray.rejected) == (local.rows, local.scored, local.rejected) == (
        1_500, 1_497, 3)
    assert on_ray.warnings == local.warnings
    assert pl.read_parquet(tmp_path / "ray.parquet").equals(pl.read_parquet(tmp_path / "local.parquet"))
    assert (tmp_path / "ray-rejects.csv").read_text() == (tmp_path / "local-rejects.csv").read_text()
    with pytest.raises(DataError, match=r"--data: row 7 fails the model's input checks; nothing was "
                                        r"written\n.*\n  - columns\.\w+ row 7: not a number: 'n/a\?'"):
        predict(spec, str(tmp_path / "rows.csv"), tmp_path / "none.parquet", chunk_rows=250,
                executor="ray", address=cluster.address)
    assert not (tmp_path / "none.parquet").exists()
