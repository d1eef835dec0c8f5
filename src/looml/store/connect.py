"""Reaching the tracking store: its URI made absolute, a probe of a tracking server (or of an
SQLite store's write lock), MLflow imported quietly, the warm-up that imports what registering
needs while a run trains, and `names_the_store`, which turns MLflow's "database is locked"
into an error that names the store."""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from looml.errors import LoomlError, Problem, RegistryError
from looml.store.refusals import storage_cause, storage_error
from looml.usercache import user_cache_dir

__all__ = ["check_reachable", "import_mlflow", "local_tracking_uri", "names_the_store", "sqlite_db",
           "warm_up"]

_SQLITE = "sqlite:///"
LOCK_WAIT_S = 5.0  # how long the probe waits for another process's write to an SQLite store (MLflow's too)
_F = TypeVar("_F", bound=Callable[..., Any])


def local_tracking_uri(uri: str, project_dir: Path) -> str:
    """Make a relative `sqlite:///` URI absolute, relative to the project folder."""
    if uri.startswith(_SQLITE) and not uri.startswith(_SQLITE + "/"):
        path = (project_dir / uri[len(_SQLITE):]).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return _SQLITE + str(path)
    return uri


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Raise `RegistryError` now if `uri` is a tracking server (http, https) that does not answer
    within `timeout` seconds: MLflow's own client meets it only at registration, after training,
    and retries for minutes. Any HTTP answer counts as reachable. An SQLite store that another
    process keeps locked for writing is refused the same way (`_check_writable`)."""
    db = sqlite_db(uri)
    if db is not None:
        _check_writable(uri, db)
        return
    if not uri.startswith(("http://", "https://")):
        return
    import httpx

    try:
        httpx.get(f"{uri.rstrip('/')}/health", timeout=timeout)
    except httpx.HTTPError as exc:
        raise RegistryError(Problem(
            loc="tracking.uri", value=uri,
            message=f"the tracking server does not answer ({type(exc).__name__}: {exc}) within {timeout:g} s",
            fix="start it (mlflow server --host ... --port ...), or point tracking.uri at one that runs; "
                "looml checks before any work, so nothing was trained")) from exc


def _check_writable(uri: str, db: Path) -> None:
    """Take and give back the SQLite store's write lock, waiting as long as MLflow would."""
    if not db.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=LOCK_WAIT_S, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise _locked(uri, "; nothing was changed") from None
        # anything else (a read-only folder, a damaged file) is for MLflow to word, later


def names_the_store(function: _F) -> _F:
    """Decorator for a function whose first argument is a tracking URI (or has `.tracking_uri`):
    MLflow's "database is locked" (another process held the SQLite store's write lock for longer
    than SQLite waits) becomes a `RegistryError` naming the store and the fix, not a traceback;
    a full disk under the store a `StorageError` (`store.refusals`)."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except LoomlError:
            raise
        except Exception as exc:
            first = args[0] if args else ""
            uri = first if isinstance(first, str) else getattr(first, "tracking_uri", "?")
            if "database is locked" in str(exc):
                raise _locked(uri) from None
            if storage_cause(exc) is not None:  # a full disk under the store
                raise storage_error(uri, exc) from None
            raise

    return guarded  # type: ignore[return-value]


def _locked(uri: str, outcome: str = "") -> RegistryError:
    return RegistryError(Problem(
        loc="tracking.uri", value=uri,
        message=f"the tracking store is locked by another process (SQLite: database is locked for more than "
                f"{LOCK_WAIT_S:g} s){outcome}",
        fix="let the other process that writes it finish (another looml command, a script, an open "
            "transaction in a database tool), then run this again; stores that several processes write "
            "all the time belong on a tracking server (docs/team.md)"))


def sqlite_db(uri: str) -> Path | None:
    """The database file of an embedded SQLite tracking URI, else None."""
    return Path(uri[len(_SQLITE):]) if uri.startswith(_SQLITE) else None


def import_mlflow() -> Any:
    """Import MLflow with its network calls, subprocess checks and chatter turned off."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # looml's output only
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # "View run at" (servers)
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # It logs a store error with its traceback, then raises it: looml reports the error itself.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted",
                            category=UserWarning)
    return mlflow


def warm_up(tracking_uri: str | None = None) -> Callable[[], None]:
    """Prepare registering in a background thread while the run's other stages work; returns the
    wait for it, to call before `register`.

    It imports MLflow and what registering imports on first use, and, for a SQLite store that
    does not exist yet, creates one under a temporary name (a copy of an empty store kept in
    looml's per-user cache; MLflow's migrations, 1-9 s, run once per machine and version). The
    wait moves that file into place only if no store has appeared meanwhile (a hard link: never
    over another run's store). A run that fails first removes it at exit, and one killed leaves
    `.mlflow-<pid>-<token>.db.tmp`, which the next warm-up removes: a run that stops before `register`
    leaves no tracking store behind. A failure here is left for `register` to meet and report.
    """
    db = sqlite_db(tracking_uri) if tracking_uri else None
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    fresh = db.parent / f".{db.stem}-{token}{db.suffix}.tmp" if db is not None else None

    def work() -> None:
        with contextlib.suppress(Exception):
            tracking = import_mlflow()
            # What `log_and_register` imports on first use, about 2 s of it in all: the sklearn
            # flavour, skops (its model format), the SQL store's module and the pyfunc loader.
            import mlflow.sklearn
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
            import skops.io  # noqa: F401
            from mlflow.utils import requirements_utils

            import looml.store.pyfunc  # noqa: F401

            # The map of installed packages MLflow checks the model's requirements against (it
            # reads every installed distribution's file list: ~0.5 s), built once per process.
            requirements_utils._init_packages_to_modules_map()
            if db is not None and fresh is not None and not db.exists():
                _remove_stale(db)
                atexit.register(fresh.unlink, missing_ok=True)
                _new_store(tracking, fresh)

    thread = threading.Thread(target=work, name="looml-tracking-warm-up", daemon=True)
    thread.start()

    def ready() -> None:
        thread.join()
        if fresh is None or not fresh.exists():
            return
        with contextlib.suppress(FileExistsError, OSError):
            os.link(fresh, db)  # type: ignore[arg-type]  # fails if a store appeared meanwhile
        fresh.unlink(missing_ok=True)

    return ready


def _new_store(mlflow: Any, path: Path) -> None:
    """An empty MLflow store at `path`: a copy of this machine's empty store of this MLflow version
    (a 0.2 s copy where MLflow's migrations take 1-9 s), made by MLflow the first time."""
    template = user_cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"
    if template.is_file():
        shutil.copyfile(template, path)
        # What MLflow would have written here: the Default experiment's artifact folder (under the
        # working directory, as MLflow resolves it) and its creation time.
        now = int(time.time() * 1000)
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("UPDATE experiments SET artifact_location = ?, creation_time = ?, "
                         "last_update_time = ? WHERE experiment_id = 0",
                         (str(Path.cwd().resolve() / "mlruns" / "0"), now, now))
        return
    client = mlflow.MlflowClient(_SQLITE + str(path))
    client.search_experiments()  # creates the tracking tables
    client.search_registered_models()  # ... and the registry's
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
        template.parent.mkdir(parents=True, exist_ok=True)
        partial = template.with_name(f".{template.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        shutil.copyfile(path, partial)
        partial.replace(template)


def _remove_stale(db: Path) -> None:
    """Stores half-made by warm-ups of processes that are gone (killed before `register`)."""
    for leftover in db.parent.glob(f".{db.stem}-*{db.suffix}.tmp"):
        pid = leftover.name[len(db.stem) + 2:].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
