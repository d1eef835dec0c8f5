"""The README's commands, run as written: every bash and Python block, in the order a new user
follows them, on the bundled demo project (issue 13: "every command in the README must run as
written, tested").

What the README leaves to the reader is supplied and nothing else is changed: the files it
names (`my_table.csv` with an `outcome` column, `new_batch.csv`, `new_rows.parquet`,
`labels.csv` for rows the server logged) are made from the demo's table, the example snapshot
digest becomes the real one, the long-running commands (`looml serve`, `looml loop --watch`,
`mlflow ui`) run in the background on free ports until they answer, and `make demo` is its
recipe (`looml run` in examples/churn). Each command must exit 0, except where the README gives
another exit code for the case (`looml monitor` / `looml loop`: 6 on drift; `looml models
rollback` with no promotion to undo: a registry error naming the fix).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl

from looml.store.predictions import read_predictions

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FENCE = re.compile(r"```(bash|python)\n(.*?)```", re.DOTALL)
SKIPPED = ("make test", "source .venv/bin/activate")  # the test suite itself; PATH has the venv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def blocks() -> list[tuple[str, str]]:
    return FENCE.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def commands(block: str) -> list[str]:
    """The block's shell commands, a command that continues an open quote joined to its lines."""
    found: list[str] = []
    pending = ""
    for line in block.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if pending.strip() and not pending.lstrip().startswith("#"):
            found.append(pending)
        pending = ""
    assert not pending, f"unterminated command in the README: {pending!r}"
    return found


class Walk:
    """A new user's shell: a working folder, the environment, and the servers left running."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cwd = root
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        self.background: list[subprocess.Popen[bytes]] = []
        self.ports: dict[str, int] = {}
        self.substitutions: dict[str, str] = {}

    def shell(self, command: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        for old, new in self.substitutions.items():
            command = command.replace(old, new)
        done = subprocess.run(command, shell=True, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=600, check=False, executable="/bin/bash")
        assert done.returncode in ok, (f"README command {command!r} exited {done.returncode}\n"
                                       f"stdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}")
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def start(self, command: str, ready: str, port: int) -> None:
        """Run a long-running command in the background until `ready` (a URL path) answers 200."""
        process = subprocess.Popen(command, shell=True, cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, start_new_session=True, executable="/bin/bash")
        self.background.append(process)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, f"{command!r} stopped: {process.stderr.read().decode()[-3000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{command!r} did not answer {ready} on port {port} within 120 s")

    def stop(self) -> None:
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()

    def run(self, command: str) -> None:
        """One README command, as a user runs it (the long-running ones in the background)."""
        words = shlex.split(command, comments=True)
        line = " ".join(shlex.quote(w) for w in words)
        if any(line.startswith(skip) for skip in SKIPPED):
            return
        if words[:2] == ["make", "demo"]:  # its recipe, with this checkout's looml
            recipe = re.search(r"^demo:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
            assert recipe is not None and "looml run looml.yaml" in recipe.group(1)
            self.cwd = self.root / "examples" / "churn"
            self.shell("looml run looml.yaml")
        elif words[0] == "cd":
            self.cwd = (self.root / words[1]).resolve()
            assert self.cwd.is_dir(), f"the README's cd {words[1]}: no such folder"
        elif words[:2] == ["looml", "serve"]:
            port = self.ports.setdefault("serve", free_port())
            self.substitutions["localhost:8080"] = f"localhost:{port}"
            self.start(f"{line} --port {port}", "/v2/health/ready", port)
        elif words[:2] == ["mlflow", "ui"]:
            port = free_port()
            self.start(f"{line} --port {port}", "/", port)
        elif words[:3] == ["looml", "loop", "--watch"]:
            self.watch(line)
        elif words[:2] == ["looml", "monitor"] or words[:2] == ["looml", "loop"]:
            self.shell(command, ok=(0, 6))  # 6: drift or a performance drop, as the README says
        elif words[:3] == ["looml", "models", "rollback"]:
            done = self.shell(command, ok=(0, 5))
            if done.returncode == 5:  # nothing promoted yet: the error says so and how to promote
                assert "no recorded promotion" in done.stderr and "looml models promote" in done.stderr
        else:
            done = self.shell(command)
            if words[0] == "curl":
                assert '"predictions"' in done.stdout, done.stdout

    def watch(self, line: str) -> None:
        """`looml loop --watch` runs cycles until stopped: one cycle, then Ctrl-C (exit 130)."""
        process = subprocess.Popen(line, shell=True, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                   executable="/bin/bash")
        deadline = time.monotonic() + 300
        seen = ""
        while time.monotonic() < deadline and "triggers:" not in seen:
            assert process.stdout is not None
            chunk = process.stdout.readline()
            if not chunk and process.poll() is not None:
                break
            seen += chunk
        assert "triggers:" in seen, f"no loop cycle was reported: {seen[-3000:]}"
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 130, seen[-3000:]


def python_block(walk: Walk, code: str) -> None:
    """A README Python block, in the walk's folder; names the README leaves open are given."""
    prelude = ("import pandas as pd\n"
               "raw_rows_dataframe = pd.read_csv('churn.csv').drop(columns=['churned']).head(50)\n")
    done = subprocess.run([sys.executable, "-c", prelude + code], cwd=walk.cwd, env=walk.env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"README Python block failed:\n{code}\n{done.stderr[-3000:]}"


def prepare_files(walk: Walk) -> None:
    """The files the README names but a user brings: made from the demo's own table."""
    demo = walk.root / "examples" / "churn"
    table = pl.read_csv(demo / "churn.csv")
    own = walk.root / "own"
    own.mkdir()
    table.rename({"churned": "outcome"}).write_csv(own / "my_table.csv")
    table.tail(200).drop("churned").write_csv(own / "new_batch.csv")
    table.tail(300).drop("churned").write_parquet(demo / "new_rows.parquet")


def send_traffic_and_label(walk: Walk) -> None:
    """What happens between serving and `looml feedback`: traffic, and the labels that come later."""
    demo = walk.root / "examples" / "churn"
    table = pl.read_csv(demo / "churn.csv").tail(400)
    rows = table.drop("churned").to_dicts()
    url = f"http://127.0.0.1:{walk.ports['serve']}/predict"
    ids: list[str] = []
    for start in range(0, len(rows), 100):
        answer = httpx.post(url, json={"records": rows[start:start + 100]}, timeout=60)
        assert answer.status_code == 200, answer.text
        ids += [p["row_id"] for p in answer.json()["predictions"]]
    pl.DataFrame({"row_id": ids, "label": table["churned"].to_list()}).write_csv(demo / "labels.csv")
    deadline = time.monotonic() + 60  # the server writes its log every serve.log.flush_seconds
    while not set(ids) <= set(read_predictions(demo / ".looml" / "logs")["row_id"].to_list()):
        assert time.monotonic() < deadline, "the served rows never reached the prediction log"
        time.sleep(0.2)


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "churn", tmp_path / "examples" / "churn",
                    ignore=shutil.ignore_patterns(".looml", "__pycache__"))
    walk = Walk(tmp_path)
    prepare_files(walk)
    ran_python = 0
    try:
        for language, block in blocks():
            if language == "python":
                python_block(walk, block)
                ran_python += 1
                continue
            if "looml init --data my_table.csv" in block:
                walk.cwd = tmp_path / "own"
            for command in commands(block):
                if command.startswith("looml feedback"):
                    send_traffic_and_label(walk)
                if "--snapshot" in command:
                    listed = walk.shell("looml data --json").stdout
                    digest = re.search(r'"digest": "([0-9a-f]{12})', listed)
                    assert digest is not None, listed
                    walk.substitutions["5858f5b2e4f2"] = digest.group(1)
                walk.run(command)
            if "looml validate --data new_batch.csv" in block:
                walk.cwd = tmp_path  # the next block cds into examples/churn, as the README says
    finally:
        walk.stop()
    assert ran_python == 2, "the README's Python blocks changed: check what this test supplies them"
