"""Tracking and registry: log a finished run to MLflow and register its model.

Everything is written inside one MLflow run; the model version is created last and
the `champion` alias after it. If any step fails, what was registered is removed again,
so the registry never holds a half-made version or a dangling alias.
"""

from __future__ import annotations

import contextlib
import threading
import time
import types
import warnings
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from looml.errors import Problem, RegistryError
from looml.faults import fault_point
from looml.store.connect import import_mlflow, names_the_store, sqlite_db
from looml.store.params import param_value
from looml.store.refusals import storage_cause, storage_error
from looml.store.versions import CHAMPION, champion_model_version

if TYPE_CHECKING:  # the heavy libraries load only when a run is registered
    import pandas as pd
    import polars as pl
    from sklearn.pipeline import Pipeline

__all__ = ["Registration", "TrackedRun", "log_and_register"]


@dataclass(frozen=True)
class Registration:
    """Where a run's model ended up."""

    model_name: str
    version: str
    run_id: str
    model_uri: str
    champion: bool
    tracking_uri: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)


@dataclass(frozen=True)
class TrackedRun:
    """Everything logged to one MLflow run."""

    tracking_uri: str
    experiment: str
    model_name: str
    pipeline: Pipeline
    input_example: pd.DataFrame
    snapshot: pl.DataFrame
    snapshot_path: Path
    data_digest: str
    target: str
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifacts: list[Path]
    documents: dict[str, str]  # artifact path -> text (the schema and the reference profile)
    trials: list[dict[str, Any]] = field(default_factory=list)  # leaderboard rows, logged as child runs
    run_name: str | None = None  # None: MLflow's random name
    work_key: str | None = None  # what this registration is of; a version made for it is adopted
    claim_free_alias: bool = True  # make the version champion when there is none (registry.promote)


def _requirements(pipeline: Pipeline) -> list[str]:
    names = ["mlflow", "scikit-learn", "numpy", "pandas", "scipy", "skops", "looml"]
    # Every estimator in the pipeline, ensembles' members included, and the classes they extend.
    used = {cls.__module__.split(".")[0] for value in [pipeline, *pipeline.get_params(deep=True).values()]
            for cls in type(value).__mro__}
    names += [n for n in ("lightgbm", "xgboost", "catboost") if n in used]
    return [f"{n}=={metadata.version(n)}" for n in names]


# Set while a version is being registered: an interrupted command waits for it to clear before
# it exits hard (cli.base.exit_promptly_on_interrupt), so no half-registered version is left.
REGISTERING = threading.Event()


@names_the_store
def log_and_register(run: TrackedRun) -> Registration:
    """Log params, metrics, lineage tags, the input dataset, artifacts and the model to one
    MLflow run, register a new model version, and make it champion if there is none (unless
    `claim_free_alias` is off)."""
    REGISTERING.set()
    try:
        return _log_and_register(run)
    finally:
        REGISTERING.clear()


def _log_and_register(run: TrackedRun) -> Registration:
    mlflow = import_mlflow()
    import polars as pl
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from skops.io import dumps, get_untrusted_types

    mlflow.set_tracking_uri(run.tracking_uri)
    client = MlflowClient(run.tracking_uri)
    registered: tuple[str, str] | None = None
    adopted = _adopt(client, run) if run.work_key else None
    if adopted is not None:
        return adopted
    try:
        experiment_id = _experiment_id(client, run)
        trusted = type_names(run.pipeline)
        signature = _signature(run.pipeline, run.input_example)
        _serves_its_example(run, signature)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run.run_name) as active:
            mlflow.log_params({k: param_value(v) for k, v in run.params.items()})
            mlflow.log_metrics(run.metrics)
            mlflow.set_tags(run.tags)
            # MLflow's dataset schema has no date type; datetimes say the same without a warning.
            snapshot = run.snapshot.with_columns(pl.col(pl.Date).cast(pl.Datetime("us")))
            dataset = mlflow.data.from_polars(snapshot, source=str(run.snapshot_path),
                                              targets=run.target, name="snapshot",
                                              digest=run.data_digest[:16])
            _log_input(mlflow, dataset)
            for path in run.artifacts:
                mlflow.log_artifact(str(path))
            for artifact_path, text in run.documents.items():
                mlflow.log_text(text, artifact_path)
            with warnings.catch_warnings():  # its hint on integer columns is for typed signatures
                warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
                try:
                    info = _log_model(mlflow, run, signature, trusted)
                except MlflowException as exc:
                    if "untrusted types" not in str(exc):
                        raise
                    # The walk missed a type skops records: ask skops (one more dump of the model).
                    info = _log_model(mlflow, run, signature, get_untrusted_types(data=dumps(run.pipeline)))
            run_id = active.info.run_id
            _log_trials(client, experiment_id, run_id, run.trials)
            _ensure_registered(client, run.model_name)
            version = client.create_model_version(
                run.model_name, source=info.model_uri, run_id=run_id, model_id=info.model_id,
                tags={"looml.data_digest": run.data_digest, "looml.spec_hash": run.tags.get(
                    "looml.spec_hash", ""), **({WORK_KEY: run.work_key} if run.work_key else {})})
            registered = (run.model_name, str(version.version))
            fault_point("register.after_version")  # a version made, no alias, no manifest yet
            champion = run.claim_free_alias and _take_champion_if_free(
                client, run.tracking_uri, run.model_name, registered[1])
            if champion:
                fault_point("register.after_alias")
    except (MlflowException, OSError) as exc:
        if registered is not None:
            _unregister(client, *registered)
        if storage_cause(exc) is not None:  # a full disk under the artifacts, whatever MLflow says
            raise storage_error(run.tracking_uri, exc) from None
        raise RegistryError(Problem(
            loc="tracking.uri", value=run.tracking_uri, message=f"MLflow refused the run: {exc}",
            fix="check that the tracking URI is reachable and writable, then re-run `looml run`",
        )) from exc
    except BaseException:
        if registered is not None:
            _unregister(client, *registered)
        raise
    return Registration(model_name=run.model_name, version=registered[1], run_id=run_id,
                        model_uri=f"models:/{run.model_name}/{registered[1]}", champion=champion,
                        tracking_uri=run.tracking_uri)


def _log_model(mlflow: Any, run: TrackedRun, signature: Any, trusted: list[str]) -> Any:
    """The sklearn flavor's model, whose pyfunc is looml's (`store.pyfunc`: probabilities on request)."""
    from mlflow.models import Model

    from looml.store import pyfunc

    return Model.log(
        artifact_path=None, name="model", flavor=pyfunc, sk_model=run.pipeline, signature=signature,
        input_example=run.input_example, serialization_format="skops", skops_trusted_types=trusted,
        pip_requirements=_requirements(run.pipeline), validate_serving_input=False)  # checked before


def _serves_its_example(run: TrackedRun, signature: Any) -> None:
    """The model answers its input example as a scoring server would pass it, or nothing is logged."""
    from looml.store.pyfunc import check_serving_example

    try:
        check_serving_example(run.pipeline, signature, run.input_example)
    except Exception as exc:  # the signature's or the model's refusal, whatever its type
        raise RegistryError(Problem(
            loc="registry.model_name", value=run.model_name,
            message=f"the model does not answer its own input example as a server would pass it: {exc}",
            fix="report this with the table's column types; `looml --verbose run` shows the libraries' "
                "warnings")) from exc


def type_names(obj: Any) -> list[str]:
    """Every type (and function) reachable from `obj` through its pickled state, by the dotted
    name skops lists untrusted types by: the trusted types of its skops file, found without
    writing it. skops' own `get_untrusted_types` needs the whole file dumped first, which for a
    forest was most of `register` (258 MB, 3.3 s); `log_and_register` falls back to it if a type
    was missed. Numbers, strings and arrays of them are leaves."""
    import numpy as np

    leaves = (str, bytes, bytearray, int, float, complex, bool, type(None))
    names: set[str] = set()
    seen: dict[int, Any] = {}  # holds each value too: a state made on the fly must keep its id
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, leaves) or id(value) in seen:
            continue
        seen[id(value)] = value
        if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType, np.ufunc)):
            name = getattr(value, "__qualname__", None) or value.__name__
            names.add(f"{getattr(value, '__module__', None) or 'builtins'}.{name}")
            continue
        kind = type(value)
        names.add(f"{kind.__module__}.{kind.__qualname__}")
        if isinstance(value, (np.ndarray, np.dtype, np.generic)):
            names.add("numpy.dtype")
            if isinstance(value, np.ndarray) and value.dtype == object:
                stack.extend(value.ravel().tolist())
            continue
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
            stack.append(getattr(value, "default_factory", None))  # a defaultdict's (skops records it)
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend(value)
        else:
            state = value.__getstate__() if hasattr(value, "__getstate__") else vars(value)
            if state is not None:
                stack.append(state)
    return sorted(names)


def _signature(pipeline: Pipeline, example: pd.DataFrame) -> Any:
    """The model signature: every input column by name, of any type.

    The pipeline's first step coerces each column to its training kind, so the model takes what
    clients actually send: integers where training saw floats (`pd.read_csv` of a column without
    gaps), floats where it saw integers (a column with gaps), dates as ISO strings, numbers in a
    category column. MLflow's typed column specs refuse each of these before the pipeline sees
    them ("Can not safely convert int64 to float64"), so the columns are declared `Any`; the
    types are in the schema document logged beside the model. Extra columns are dropped and the
    order does not matter, as MLflow does for any named signature. A classifier's signature
    declares the `predict_method` param (`store.pyfunc`).
    """
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    from looml.store.pyfunc import param_schema

    outputs = infer_signature(example, pipeline.predict(example)).outputs
    params = param_schema() if hasattr(pipeline, "classes_") else None
    return ModelSignature(inputs=Schema([ColSpec(AnyType(), str(c)) for c in example.columns]),
                          outputs=outputs, params=params)


def _log_trials(client: Any, experiment_id: str, parent_id: str, trials: list[dict[str, Any]]) -> None:
    """Each trial as a child run of the registering run: three calls a trial (create, one
    `log_batch` with every metric, param and tag, terminate), never one call per value."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    for row in trials:
        child = client.create_run(experiment_id, run_name=f"trial {row['trial']} {row['name']}",
                                  tags={"mlflow.parentRunId": parent_id})
        values = {**{f"cv_{m}_mean": v for m, v in row["mean"].items()},
                  **{f"cv_{m}_std": v for m, v in row["std"].items()},
                  "fit_seconds": row["fit_seconds"], **row["timings"], "size_bytes": row["size_bytes"]}
        params = {"trial": row["trial"], "model": row["name"], "family": row["family"],
                  **{f"model.{k}": v for k, v in row["params"].items()},
                  **{f"choice.{k}": v for k, v in row["choices"].items()}}
        tags = {"looml.state": row["state"]} | ({"looml.reason": row["error"][:5000]} if row["error"] else {})
        client.log_batch(
            child.info.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in values.items() if v == v],
            params=[Param(k, param_value(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()])
        status = "FINISHED" if row["state"] == "complete" else "KILLED"
        client.set_terminated(child.info.run_id, status=status)


WORK_KEY = "looml.work_key"


def _adopt(client: Any, run: TrackedRun) -> Registration | None:
    """The version an earlier attempt at the same work created, if it was killed before its
    result was recorded (decision 52): made champion if there is none, its MLflow run closed.
    A version whose model files are gone is deleted and None returned, so it is made again."""
    from mlflow.artifacts import list_artifacts
    from mlflow.exceptions import MlflowException

    if not _exists(client, run.model_name):
        return None
    try:
        found = client.search_model_versions(
            f"name = '{run.model_name}' and tags.`{WORK_KEY}` = '{run.work_key}'")
    except MlflowException:
        return None
    for version in sorted(found, key=lambda v: int(v.version)):
        try:
            where = client.get_model_version_download_uri(run.model_name, str(version.version))
            source_ok = any(f.path.endswith("MLmodel") for f in list_artifacts(artifact_uri=where))
        except (MlflowException, OSError):
            source_ok = False
        if not source_ok:
            _unregister(client, run.model_name, str(version.version))
            continue
        champion = run.claim_free_alias and _take_champion_if_free(client, run.tracking_uri, run.model_name,
                                                                   str(version.version))
        if champion:
            fault_point("register.after_alias")
        if client.get_run(version.run_id).info.status == "RUNNING":
            client.set_terminated(version.run_id, status="FINISHED")
        return Registration(model_name=run.model_name, version=str(version.version), run_id=version.run_id,
                            model_uri=f"models:/{run.model_name}/{version.version}",
                            champion=champion or _is_champion(client, run.model_name, str(version.version)),
                            tracking_uri=run.tracking_uri)
    return None


def _is_champion(client: Any, name: str, version: str) -> bool:
    current = champion_model_version(client, name)
    return current is not None and str(current.version) == version


def _exists(client: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        return False
    return True


def _experiment_id(client: Any, run: TrackedRun) -> str:
    """The id of the run's experiment, created if missing (by this run or, at the same moment, by
    another run against the same server: then the other's is used)."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(run.experiment)
    if experiment is not None:
        return experiment.experiment_id
    db = sqlite_db(run.tracking_uri)
    location = (db.parent / "mlartifacts").as_uri() if db else None
    try:
        return client.create_experiment(run.experiment, artifact_location=location)
    except MlflowException as exc:
        experiment = client.get_experiment_by_name(run.experiment)
        if exc.error_code != "RESOURCE_ALREADY_EXISTS" or experiment is None:
            raise
        return experiment.experiment_id


def _log_input(mlflow: Any, dataset: Any, attempts: int = 3) -> None:
    """Log the snapshot as the run's training input. MLflow's SQL store checks whether the
    dataset exists and then inserts it, so two runs logging the same snapshot at once against one
    server can meet its unique key (`dataset_pk`); the retry finds the other's row and links it."""
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            mlflow.log_input(dataset, context="training")
            return
        except MlflowException as exc:
            if "dataset_pk" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _ensure_registered(client: Any, name: str) -> None:
    """Create the registered model unless it exists; another run creating it at the same moment
    (two `looml run`s against one server) is not an error."""
    from mlflow.exceptions import MlflowException

    if _exists(client, name):
        return
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _take_champion_if_free(client: Any, tracking_uri: str, name: str, version: str) -> bool:
    """Make `version` the champion if the model has none; whether it did. On a shared store the
    check and the move happen under the champion lease (`store.team`), so two runs registering
    at once cannot both see no champion and both take the alias."""
    from looml.store.team import champion_lease, is_shared

    lease = champion_lease(client, name) if is_shared(tracking_uri) else contextlib.nullcontext()
    with lease:
        if champion_model_version(client, name) is not None:
            return False
        client.set_registered_model_alias(name, CHAMPION, version)
    return True


def _unregister(client: Any, name: str, version: str) -> None:
    """Undo a half-finished registration (best effort: the original error is what matters)."""
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):
        client.delete_model_version(name, version)
