"""A throw-away team backend for tests and benchmarks: PostgreSQL, a moto S3 server and an
`mlflow server` on them, all on loopback.

    with running_team_server() as team:   # PostgreSQL (tests/postgres.py), moto S3, mlflow server
        team.url                          # http://127.0.0.1:PORT, the tracking URI to put in a spec
        team.client_env()                 # the environment a looml process needs (no S3 keys)
    # the server stopped (its process group), moto stopped, PostgreSQL stopped and deleted

The server is started exactly as docs/team.md tells a team to start theirs:

    mlflow server --backend-store-uri postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB \\
        --artifacts-destination s3://BUCKET/ --host 127.0.0.1 --port PORT

with `MLFLOW_S3_ENDPOINT_URL` and `AWS_*` pointing it at moto. MLflow 3 serves the artifacts
(`--serve-artifacts` is the default), so clients upload and download through the server and hold
no S3 keys. One uvicorn worker keeps the start short (about 5-8 s here, most of it MLflow's
migrations of the empty database).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from postgres import running_postgres, unavailable_reason

__all__ = ["BUCKET", "TeamServer", "running_team_server", "team_unavailable_reason"]

BUCKET = "looml-artifacts"
_S3_KEY = {"AWS_ACCESS_KEY_ID": "team-test", "AWS_SECRET_ACCESS_KEY": "team-test-secret",
           "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class TeamServer:
    """A running MLflow server: its URL, its process, the S3 endpoint behind it and its log."""

    url: str
    process: subprocess.Popen[bytes]
    s3_endpoint: str
    log: Path
    database_url: str = field(repr=False)

    def client_env(self, **extra: str) -> dict[str, str]:
        """The environment of a looml process using this server: the caller's, without any S3
        or MLflow credentials (the server holds those), plus `extra`."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "MLFLOW_TRACKING_", "MLFLOW_S3_"))}
        env.update(extra)
        return env


def team_unavailable_reason() -> str | None:
    """Why the backend cannot be started here, or None when it can."""
    reason = unavailable_reason()
    if reason is not None:
        return reason
    try:
        import boto3  # noqa: F401
        from moto.server import ThreadedMotoServer  # noqa: F401
    except ImportError as exc:
        return f"moto[server] is missing ({exc}): pip install -e '.[dev]'"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"mlflow server did not answer /health in {timeout:g} s:\n{log.read_text()[-4000:]}")


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM the process group `process` leads, SIGKILL it if it lingers; then check that no
    process of the group is left."""
    with _suppress_lookup():
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with _suppress_lookup():
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)
    deadline = time.monotonic() + timeout
    while _group_alive(process.pid):  # the workers uvicorn started
        if time.monotonic() > deadline:
            with _suppress_lookup():
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.5)
            break
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _suppress_lookup() -> contextlib.suppress:
    return contextlib.suppress(ProcessLookupError)


@contextmanager
def running_team_server(*, start_timeout: float = 90) -> Iterator[TeamServer]:
    """PostgreSQL, moto S3 and `mlflow server` on them, on loopback; everything stopped after,
    and `RuntimeError` if a server process is left."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log, one line a request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, s3_port = moto.get_host_and_port()
        s3_endpoint = f"http://{host}:{s3_port}"
        boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id=_S3_KEY["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=_S3_KEY["AWS_SECRET_ACCESS_KEY"],
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)
        with running_postgres() as pg:
            database_url = (f"postgresql+psycopg://{pg.user}:{quote(pg.password, safe='')}"
                            f"@{pg.host}:{pg.port}/{pg.database}")
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            root = Path(tempfile.mkdtemp(prefix="looml-mlflow-server-"))
            log = root / "server.log"
            env = {**os.environ, **_S3_KEY, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
                   "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
            command = [str(Path(sys.executable).with_name("mlflow")), "server",
                       "--backend-store-uri", database_url, "--artifacts-destination", f"s3://{BUCKET}/",
                       "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
            with log.open("wb") as out:
                process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                           cwd=root, start_new_session=True)
            try:
                _wait_healthy(url, process, log, start_timeout)
                yield TeamServer(url=url, process=process, s3_endpoint=s3_endpoint, log=log,
                                 database_url=database_url)
            finally:
                stop_process_group(process)
                if _group_alive(process.pid):
                    raise RuntimeError(f"mlflow server processes (group {process.pid}) are left")
    finally:
        moto.stop()
