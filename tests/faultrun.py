"""kill -9 chains for tests/test_faults.py and bench/faults.py (issue 16).

A *zygote* process imports looml (and MLflow) once; each `looml` command of a chain is a child
forked from it that arms one fault point (`looml.faults`) and runs the real CLI, so a killed
run costs its own work, not seconds of imports. A chain runs one small project again and again:
each run is armed at the next point of a seeded plan, is killed there (SIGKILL, from inside),
and the next run resumes from the cache and is killed further on; the last run is not armed
and must succeed. After every kill the project's invariants are checked (`check_invariants`).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import psutil

from looml.store.audit import AuditLog, settle

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus"))
SPEC = ("seed: {seed}\ndata:\n  source: data.parquet\n  target: Private\nsplit:\n  folds: 2\n"
        "models:\n  candidates: [linear]\ntuning:\n  trials: 2\n  time_budget: 600\n"
        "registry:\n  model_name: faulty\n")
# Points reached once per run, in pipeline order; the artifact writes are reached many times.
STAGES = ("ingest", "profile", "validate", "check", "split", "train", "evaluate", "refit", "reference",
          "explain", "report", "register")
INNER = {"train": ["tune.submitted"], "report": ["report.rendered"],
         "register": ["register.after_version", "register.after_alias"]}
# In every plan: mid-snapshot write, mid-search, mid-report, version made / alias moved, no manifest.
DANGEROUS = ("stage.ingest.before>artifacts.put_file.written", "tune.submitted", "report.rendered",
             "register.after_version", "register.after_alias")


def _zygote() -> None:  # pragma: no cover - runs in the zygote process
    # Warm, what `looml run` and its tracking warm-up import and build once per process: the
    # children register without paying for it again.
    import mlflow.sklearn
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import skops.io  # noqa: F401
    from mlflow.utils import requirements_utils

    import looml.store.pyfunc  # noqa: F401

    requirements_utils._init_packages_to_modules_map()

    from looml import faults
    from looml.cli import app

    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setsid()  # its workers share its session: an orphan is found by it
                os.chdir(job["cwd"])
                os.environ.update(job["env"])
                faults.configure()
                fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                app(args=job["argv"], prog_name="looml")
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"pid": pid, "rc": os.waitstatus_to_exitcode(status)}), flush=True)


class Zygote:
    """The warm parent of the chain's commands."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "zygote"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def run(self, cwd: Path, argv: list[str], fault: str | None, log: Path) -> tuple[int, int]:
        """(pid, exit code: -9 when killed) of one `looml` command."""
        env = {"LOOML_FAULT": fault} if fault else {}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cwd": str(cwd), "argv": argv, "env": env, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        pid = json.loads(self.proc.stdout.readline())["pid"]
        return pid, json.loads(self.proc.stdout.readline())["rc"]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def write_project(folder: Path, seed: int, rows: int = 300) -> Path:
    """A small project on a corpus table (US colleges, private or not)."""
    folder.mkdir(parents=True, exist_ok=True)
    pl.read_parquet(CORPUS / "college_private.parquet").sample(rows, seed=seed).write_parquet(
        folder / "data.parquet")
    (folder / "looml.yaml").write_text(SPEC.format(seed=seed), encoding="utf-8")
    return folder


def plan(seed: int, kills: int) -> list[str]:
    """`kills` fault points in pipeline order, drawn with `seed`: stage boundaries, the points
    inside stages, and artifact writes at random moments (`after>name@n`: its n-th hit once
    `after` is reached)."""
    rng = random.Random(seed)
    pool: list[str] = []
    for stage in STAGES:
        pool += [f"stage.{stage}.before", *INNER.get(stage, []), f"stage.{stage}.computed"]
        if stage == "ingest":  # mid-snapshot write
            pool.append("stage.ingest.before>artifacts.put_file.written")
        if rng.random() < 0.5:  # a write inside the stage or of its manifest, at a random moment
            pool.append(f"stage.{stage}.before>artifacts.before_rename@{rng.randint(1, 2)}")
        pool.append(f"stage.{stage}.done")
    if kills >= len(pool):
        return pool
    must = [i for i, p in enumerate(pool) if p in DANGEROUS]
    rest = [i for i in range(len(pool)) if i not in must]
    chosen = sorted(must + rng.sample(rest, max(0, kills - len(must))))
    return [pool[i] for i in chosen]


@dataclass
class ChainResult:
    """What one chain did."""

    seed: int
    kills: list[str] = field(default_factory=list)  # the points where a run was killed
    passed: list[str] = field(default_factory=list)  # armed points a run finished without reaching
    seconds: float = 0.0
    timings: list[float] = field(default_factory=list)  # each command's seconds


def run_chain(zygote: Zygote, folder: Path, seed: int, kills: int) -> ChainResult:
    """Kill `looml run` at each point of `plan(seed, kills)`, then run it to the end; raise
    AssertionError (naming the seed and the point) on the first broken invariant."""
    started = time.perf_counter()
    result = ChainResult(seed)
    write_project(folder, seed)
    for i, point in enumerate([*plan(seed, kills), None]):
        where = f"seed {seed}, point {point} (#{i})"
        log = folder / f"run-{i}.log"
        began = time.perf_counter()
        pid, rc = zygote.run(folder, ["run", "looml.yaml"], point, log)
        result.timings.append(round(time.perf_counter() - began, 1))
        output = log.read_text(errors="replace")
        if point is None or rc == 0:
            assert rc == 0, f"{where}: the re-run failed (exit {rc}):\n{output[-3000:]}"
            if point is not None:
                result.passed.append(point)
        else:
            assert rc == -signal.SIGKILL, f"{where}: exit {rc}, not killed:\n{output[-3000:]}"
            result.kills.append(point)
        check_invariants(folder / ".looml", pid if rc != 0 else None, where, final=point is None)
    result.seconds = time.perf_counter() - started
    return result


def check_invariants(home: Path, killed: int | None, where: str, final: bool = False) -> None:
    """What must hold after a kill (`killed`: its pid) and after a finished run."""
    orphans = _orphans(killed) if killed else []
    assert not orphans, f"{where}: processes of the killed run still alive: {orphans}"
    # the killed run's own temporary files are the next run's to sweep (`sweep_temp`, `warm_up`)
    stale = [p for p in home.rglob("*.tmp") if killed is None or not re.search(rf"[.-]{killed}[.-]", p.name)]
    assert not stale, f"{where}: temporary files of an earlier run left behind: {stale}"
    artifacts = home / "artifacts"
    for path in artifacts.glob("??/[!.]*") if artifacts.is_dir() else ():  # real names, not temporaries
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == path.name, f"{where}: {path} is not whole (its bytes hash to {digest[:12]})"
    db = home / "mlflow.db"
    if not db.is_file():
        assert not final, f"{where}: nothing was registered"
        return
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT version, storage_location FROM model_versions WHERE name = 'faulty' "
                            "AND current_stage != 'Deleted_Internal'").fetchall()
        versions = {str(v): location for v, location in rows}
        alias = conn.execute("SELECT version FROM registered_model_aliases WHERE name = 'faulty' "
                             "AND alias = 'champion'").fetchone()
    # one chain is one run's work: never two versions of it
    assert len(versions) <= 1, f"{where}: {len(versions)} versions for one run's work: {sorted(versions)}"
    if final:
        assert len(versions) == 1 and alias is not None, f"{where}: versions {versions}, alias {alias}"
    if alias is not None:
        champion = str(alias[0])
        assert champion in versions, f"{where}: the champion alias points at missing version {champion}"
        model = Path(versions[champion].removeprefix("file://")) / "MLmodel"
        assert model.is_file(), f"{where}: the champion's model files are missing ({model})"
    now = str(alias[0]) if alias else None
    moves = [d for d in settle(AuditLog(home / "audit.jsonl").records(), now) if d.state == "done"]
    last = moves[-1].champion_after if moves else None
    assert not moves or last == now, f"{where}: the audit trail ends at {last}, the alias is at {now}"


def _orphans(session: int, wait: float = 15.0) -> list[str]:
    """Processes still in the killed command's session after `wait` seconds (a trial's worker
    finishes its fit, then finds its parent gone and exits)."""
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if os.getsid(proc.pid) == session and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])[:80]}")
            except (ProcessLookupError, psutil.Error, PermissionError):
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


if __name__ == "__main__" and sys.argv[1:] == ["zygote"]:
    _zygote()
