"""A registered model version, read: whether it exists and leads, its documents, its pipeline.

    version_state(uri, name, version) -> (exists, is champion)
    champion_version(uri, name) -> the version the champion alias points at, or None
    model_documents(uri, name, version=None) -> (version, {artifact path: text})
    load_pipeline(uri, name, version) -> (the fitted pipeline, its run id)

On the embedded SQLite store with local artifacts, all of them read the registry tables and the
artifact folders directly (milliseconds, no MLflow import, which costs 2-3 s): a cached run, a
server following the alias, `looml serve`, `predict` and `monitor` stay fast. Anything that
does not look as expected there (another schema, a remote artifact store, no such version) asks
MLflow, which also words the errors.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from looml.errors import Problem, RegistryError
from looml.store.connect import import_mlflow, names_the_store, sqlite_db
from looml.store.trusted import load_skops_model

__all__ = [
    "CHAMPION",
    "PROFILE_ARTIFACT",
    "SCHEMA_ARTIFACT",
    "champion_model_version",
    "champion_version",
    "load_pipeline",
    "model_documents",
    "version_state",
]

CHAMPION = "champion"

SCHEMA_ARTIFACT = "data/schema.yaml"
PROFILE_ARTIFACT = "data/profile.json"


def champion_model_version(client: Any, name: str) -> Any:
    """The champion alias's model version through an MLflow client, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


@names_the_store
def version_state(tracking_uri: str, name: str, version: str) -> tuple[bool, bool]:
    """Whether a model version still exists, and whether it is the champion now.

    On the embedded SQLite store this reads the registry tables directly (milliseconds,
    no MLflow import), so a fully cached run stays fast; anywhere else, or if that schema
    ever differs, it asks MLflow.
    """
    db = sqlite_db(tracking_uri)
    if db is not None:
        if not db.is_file():
            return False, False
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM model_versions WHERE name = ? AND version = ? "
                    "AND current_stage != 'Deleted_Internal'", (name, int(version))).fetchone()
                alias = conn.execute(
                    "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                    (name, CHAMPION)).fetchone()
            return exists is not None, alias is not None and str(alias[0]) == version
        except sqlite3.Error:
            pass
    mlflow = import_mlflow()
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri)
    try:
        client.get_model_version(name, version)
    except MlflowException:
        return False, False
    champion = champion_model_version(client, name)
    return True, champion is not None and str(champion.version) == version


@names_the_store
def model_documents(tracking_uri: str, name: str, version: str | None = None,
                    paths: tuple[str, ...] = (SCHEMA_ARTIFACT, PROFILE_ARTIFACT),
                    ) -> tuple[str, dict[str, str]]:
    """The version (default: the champion) of a registered model and the documents logged with it
    (`paths`: by default `data/schema.yaml` and `data/profile.json`), by artifact path.

    Raises `RegistryError` naming the model when there is no such version or no champion.
    """
    local = _local_version(tracking_uri, name, version)
    if local is not None:
        documents = {}
        for artifact_path in paths:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                documents[artifact_path] = (local.run_artifacts / artifact_path).read_text(encoding="utf-8")
        return local.version, documents
    mlflow = import_mlflow()
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri)
    try:
        found = (client.get_model_version(name, version) if version is not None
                 else client.get_model_version_by_alias(name, CHAMPION))
    except MlflowException as exc:
        what = f"version {version}" if version is not None else f"{CHAMPION!r} alias"
        raise RegistryError(Problem(
            loc="registry.model_name", value=name, message=f"the registered model has no {what}",
            fix="run `looml run` until a model passes the gate, or pass an existing version")) from exc
    documents: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="looml-") as tmp:
        for artifact_path in paths:
            with contextlib.suppress(MlflowException, OSError):
                local = mlflow.artifacts.download_artifacts(
                    run_id=found.run_id, artifact_path=artifact_path, dst_path=tmp, tracking_uri=tracking_uri)
                documents[artifact_path] = Path(local).read_text(encoding="utf-8")
    return str(found.version), documents


@names_the_store
def load_pipeline(tracking_uri: str, name: str, version: str) -> tuple[Any, str]:
    """The fitted pipeline of a registered model version (read from its skops file, with the
    trusted types it was saved with) and the id of the run that made it."""
    local = _local_version(tracking_uri, name, version)
    if local is not None and (local.model_folder / "MLmodel").is_file():
        return load_skops_model(local.model_folder, f"{name} v{version}"), local.run_id
    mlflow = import_mlflow()
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    try:
        found = client.get_model_version(name, version)
        folder = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}"))
    except (MlflowException, OSError) as exc:
        raise RegistryError(Problem(loc="registry.model_name", value=f"{name} v{version}",
                                    message=f"cannot load the model: {exc}",
                                    fix="check the tracking URI and that the version exists")) from exc
    return load_skops_model(folder, f"{name} v{version}"), found.run_id


@names_the_store
def champion_version(tracking_uri: str, name: str) -> str | None:
    """The version the champion alias points at now, or None; milliseconds on SQLite.

    The server polls this to follow the alias, so it avoids MLflow where it can.
    """
    db = sqlite_db(tracking_uri)
    if db is not None and db.is_file():
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
                row = conn.execute("SELECT version FROM registered_model_aliases "
                                   "WHERE name = ? AND alias = ?", (name, CHAMPION)).fetchone()
            return str(row[0]) if row else None
        except sqlite3.Error:
            pass
    mlflow = import_mlflow()
    champion = champion_model_version(mlflow.MlflowClient(tracking_uri), name)
    return str(champion.version) if champion is not None else None


@dataclass(frozen=True)
class _LocalVersion:
    version: str
    run_id: str
    model_folder: Path  # the MLmodel folder
    run_artifacts: Path  # the run's artifact root


def _local_version(tracking_uri: str, name: str, version: str | None) -> _LocalVersion | None:
    """A ready version (default: the champion) read from an embedded SQLite store whose artifacts
    are local folders; None to ask MLflow (another store, another schema, or nothing found)."""
    db = sqlite_db(tracking_uri)
    if db is None or not db.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            if version is None:
                alias = conn.execute("SELECT version FROM registered_model_aliases "
                                     "WHERE name = ? AND alias = ?", (name, CHAMPION)).fetchall()
                if len(alias) != 1:
                    return None
                version = str(alias[0][0])
            rows = conn.execute(
                "SELECT v.run_id, v.storage_location, r.artifact_uri FROM model_versions v "
                "JOIN runs r ON r.run_uuid = v.run_id WHERE v.name = ? AND v.version = ? "
                "AND v.status = 'READY' AND v.current_stage != 'Deleted_Internal'",
                (name, int(version))).fetchall()
    except (sqlite3.Error, ValueError):
        return None
    if len(rows) != 1:
        return None
    run_id, storage, artifacts = rows[0]
    folder, root = _local_path(storage), _local_path(artifacts)
    if folder is None or root is None:
        return None
    return _LocalVersion(version=version, run_id=run_id, model_folder=folder, run_artifacts=root)


def _local_path(uri: str | None) -> Path | None:
    """The folder a `file:` URI (or an absolute path) names; None for any other store."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path))
    if not parsed.scheme and Path(uri).is_absolute():
        return Path(uri)
    return None
