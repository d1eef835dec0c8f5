"""A throw-away PostgreSQL server for tests and benchmarks, from PostgreSQL's own binaries.

    with running_postgres() as pg:      # initdb into a temp dir, start on a free 127.0.0.1 port
        pg.url                          # postgresql://looml:PASSWORD@127.0.0.1:PORT/looml
        pg.execute("CREATE TABLE ...")  # as the test role, which owns the test database
    # stopped and deleted

Host connections need a password (scram-sha-256), so wrong-password tests are real; the
superuser connects over the unix socket in the temp dir with `trust`. PostgreSQL refuses to
run as root, so as root the server runs as the `postgres` system user, owning the temp dir.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from external_tools import find_postgres_bin, missing_postgres

__all__ = ["Postgres", "find_bin_dir", "running_postgres", "unavailable_reason"]

USER = "looml"
DATABASE = "looml"
PASSWORD = "s3cret/Pa55@word-xyz"  # "/" and "@" check that URLs quote it


@dataclass(frozen=True)
class Postgres:
    """A running server: where it listens, the test role and database, and how to reach it."""

    host: str
    port: int
    socket_dir: Path
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the test database, password included (percent-quoted)."""
        secret = quote(self.password, safe="")
        return f"postgresql://{self.user}:{secret}@{self.host}:{self.port}/{self.database}"

    def url_without_password(self, scheme: str = "postgresql") -> str:
        """The URL with the user but no password (for `password_env` tests)."""
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}"

    def connect(self, *, superuser: bool = False, database: str | None = None) -> Any:
        """A psycopg connection (autocommit) as the test role over TCP, or as the superuser over
        the unix socket."""
        import psycopg

        if superuser:
            return psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres",
                                   dbname=database or "postgres", autocommit=True)
        return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               dbname=database or self.database, autocommit=True)

    def execute(self, *statements: str, superuser: bool = False) -> None:
        """Run SQL statements in the test database as the test role (or the superuser)."""
        with self.connect(superuser=superuser, database=self.database) as conn:
            for statement in statements:
                conn.execute(statement)


def find_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl (see tests/external_tools.py), or None."""
    return find_postgres_bin()


def unavailable_reason() -> str | None:
    """Why a server cannot be started here, or None when it can."""
    if find_bin_dir() is None:
        return missing_postgres()
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` system user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command: Sequence[str]) -> None:
    # As root, PostgreSQL's tools must run as the `postgres` user.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    done = subprocess.run([*prefix, *command], capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@contextmanager
def running_postgres(*, password: str = PASSWORD, user: str = USER,
                     database: str = DATABASE) -> Iterator[Postgres]:
    """Start a fresh server with role `user` (password auth) owning `database`; stop and delete it after."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="looml-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    started = False
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--locale=C",
              "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions"])
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50 "
                   "-c shared_buffers=128MB -c max_wal_size=4GB")
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"),
              "-w", "-t", "60", "start"])
        started = True
        server = Postgres(host="127.0.0.1", port=port, socket_dir=root, user=user, password=password,
                          database=database)
        escaped = password.replace("'", "''")
        with server.connect(superuser=True) as conn:
            conn.execute(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{escaped}'")
            conn.execute(f"CREATE DATABASE \"{database}\" OWNER \"{user}\"")
        yield server
    finally:
        if started:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)
