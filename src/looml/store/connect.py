"""Reaching the tracking store: its URI made absolute, a probe of a tracking server, MLflow
imported quietly, and the warm-up that imports what registering needs while a run trains."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from looml.errors import Problem, RegistryError

__all__ = ["check_reachable", "import_mlflow", "local_tracking_uri", "sqlite_db", "warm_up"]

_SQLITE = "sqlite:///"


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
    and retries for minutes. Any HTTP answer counts as reachable; other stores are not probed."""
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


def sqlite_db(uri: str) -> Path | None:
    """The database file of an embedded SQLite tracking URI, else None."""
    return Path(uri[len(_SQLITE):]) if uri.startswith(_SQLITE) else None


def import_mlflow() -> Any:
    """Import MLflow with its network calls, subprocess checks and chatter turned off."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # looml's output only
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted",
                            category=UserWarning)
    return mlflow


def warm_up() -> Callable[[], None]:
    """Import MLflow (and its sklearn flavour) in a background thread while the run's other
    stages work; returns the wait for it. The import is paid once per process and was a second
    of `register`. Nothing is opened or created here: a run killed before `register` leaves no
    tracking store behind. A failure here is left for `register` to meet and report."""
    def work() -> None:
        with contextlib.suppress(Exception):
            import_mlflow()
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

    thread = threading.Thread(target=work, name="looml-tracking-warm-up", daemon=True)
    thread.start()
    return thread.join
