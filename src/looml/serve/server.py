"""Start uvicorn on `create_app`: one process, or several workers sharing the port.

Workers are separate processes that build the app from an import string, so the spec path and
the options travel in environment variables; each worker builds its own app. On Linux each has
its own listening socket (`serve.workers`: SO_REUSEPORT spreads the connections); elsewhere
uvicorn's supervisor shares one. With more than one worker, Prometheus values are shared
through a temporary `PROMETHEUS_MULTIPROC_DIR`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from fastapi import FastAPI

from looml.spec import load_spec

__all__ = ["app_from_environment", "check_port", "check_servable", "serve"]

_SPEC_ENV = "LOOML_SERVE_SPEC"
_VERSION_ENV = "LOOML_SERVE_VERSION"


def serve(spec_path: str | Path, *, host: str | None = None, port: int | None = None,
          workers: int | None = None, version: str | None = None) -> None:
    """Serve the model of the spec at `spec_path` until interrupted; the options override the
    spec's `serve:` section. Raises `SpecError` / `RegistryError` before binding the port."""
    import uvicorn

    spec = load_spec(spec_path)
    settings = spec.serve
    host = host or settings.host
    port = settings.port if port is None else port
    workers = workers or settings.workers
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if workers == 1:
        from looml.serve.app import create_app

        uvicorn.run(create_app(spec, version=version), host=host, port=port, access_log=False,
                    log_level="info")
        return
    from looml.serve.workers import reuse_port_supported, run_workers

    metrics_dir = tempfile.mkdtemp(prefix="looml-metrics-")
    environment = {_SPEC_ENV: str(Path(spec_path).resolve()), "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
                   **({_VERSION_ENV: version} if version is not None else {})}
    os.environ.update(environment)
    try:
        if reuse_port_supported():
            run_workers(workers, host, port, environment)
        else:
            uvicorn.run("looml.serve.server:app_from_environment", factory=True, host=host, port=port,
                        workers=workers, access_log=False, log_level="info")
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def check_servable(spec_path: str | Path, version: str | None = None) -> None:
    """Raise `SpecError` / `RegistryError` now, before a port is bound, if there is nothing to serve."""
    from looml.errors import Problem, RegistryError
    from looml.store.connect import local_tracking_uri
    from looml.store.versions import champion_version, model_documents

    spec = load_spec(spec_path)
    tracking_uri = local_tracking_uri(spec.tracking.uri, spec.project_dir)
    version = version or spec.serve.version
    if version is None and champion_version(tracking_uri, spec.registry.model_name) is None:
        raise RegistryError(Problem(loc="registry.model_name", value=spec.registry.model_name,
                                    message="the registered model has no 'champion' alias yet",
                                    fix="run `looml run` until a model passes the gate, or pass --version"))
    if version is not None:
        model_documents(tracking_uri, spec.registry.model_name, version)


def check_port(spec_path: str | Path, host: str | None = None, port: int | None = None) -> None:
    """Raise `ServeError` now, before the model loads, if the address cannot be bound (a port in
    use, an address this machine does not have). Binds as uvicorn does (SO_REUSEADDR) and lets go."""
    import socket

    from looml.errors import Problem, ServeError

    settings = load_spec(spec_path).serve
    host = host or settings.host
    port = settings.port if port is None else port
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise ServeError(Problem(loc="serve.port", value=f"{host}:{port}",
                                 message=f"cannot listen there: {exc.strerror or exc}",
                                 fix="stop what holds the port, or pass another with --port "
                                     "(or set serve.port)")) from exc


def app_from_environment() -> FastAPI:
    """The app of one worker process (uvicorn's factory)."""
    from looml.serve.app import create_app

    return create_app(load_spec(os.environ[_SPEC_ENV]), version=os.environ.get(_VERSION_ENV))

