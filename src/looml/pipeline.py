"""The lifecycle, wired in one readable place.

ingest -> profile -> validate -> split -> train -> evaluate -> report -> (gate) -> refit -> reference
    -> register

Each stage runs through the `Runner`, which caches its output under a hash of what it
depends on. Heavy libraries (scikit-learn, MLflow) are imported only by stages that
actually run, so a fully cached re-run stays fast.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from looml import __version__
from looml.data.anomalies import Anomaly
from looml.data.profile import Profile, profile
from looml.data.schema import Schema, load_schema
from looml.data.validate import ValidationReport, validate
from looml.errors import DataError, GateError, Problem
from looml.learn.gate import check_gate, check_metrics_fit_task
from looml.monitor.reference import REFERENCE_ARTIFACT
from looml.runner import Runner, StageRecord
from looml.spec import Spec, load_spec
from looml.store.artifacts import ArtifactStore, atomic_write, file_digest
from looml.store.connect import check_reachable, local_tracking_uri, warm_up
from looml.store.snapshots import SnapshotCatalog
from looml.store.tracking import version_state

__all__ = ["DataCheck", "RunResult", "check", "run"]

# Every stage's code version includes this module: the glue below shapes what stages see.
_WIRING = ("looml.pipeline",)
# Under a time budget, the stages after training (evaluate, report, reference, register; the
# refit on every row is planned inside the search) are
# planned at this share of it, at most this many seconds (measured on the corpus: 3-10 s).
_AFTER_TRAIN_SHARE = 0.15
_AFTER_TRAIN_SECONDS = 10.0


@dataclass(frozen=True)
class DataCheck:
    """What `check` found: the data's profile and validation's decisions."""

    profile: Profile
    report: ValidationReport
    data_digest: str
    stages: list[StageRecord]


@dataclass(frozen=True)
class RunResult:
    """What a run produced: metrics, leaderboard, the registered model and the report.

    `artifacts` maps snapshot / split / pipeline / predictions / report to the digests of
    the files in the project's content-addressed store (`.looml/artifacts`).
    """

    model_name: str
    model_version: str
    model_uri: str
    champion: bool
    run_id: str
    tracking_uri: str
    task: str
    primary_metric: str
    best_model: str
    metrics: dict[str, float]
    leaderboard: list[dict[str, Any]]
    report_path: Path
    data_digest: str
    spec_hash: str
    artifacts: dict[str, str]
    stages: list[StageRecord]
    warnings: list[str] = field(default_factory=list)
    search: dict[str, Any] = field(default_factory=dict)  # how the search went: trials, folds, budget

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (what `looml run --json` prints)."""
        out = asdict(self)
        out["report_path"] = str(self.report_path)
        return out


def run(spec: Spec | str | Path, *, force: bool = False, snapshot: str | None = None,
        on_start: Callable[[str], None] | None = None,
        on_finish: Callable[[StageRecord], None] | None = None) -> RunResult:
    """Run the whole pipeline for a spec (or a path to looml.yaml); return a `RunResult`.

    `snapshot` (a digest or its prefix, see `looml data`) re-runs on a stored data snapshot
    instead of reading the source. Raises `SpecError`, `DataError`, `GateError` or
    `RegistryError`; the registry is changed only at the very end of a run that passed its gate.
    """
    started = time.monotonic()  # `tuning.time_budget` is the whole run's wall clock
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    _check_candidates(spec)
    home = spec.project_dir / ".looml"
    store = ArtifactStore(home / "artifacts")
    runner = Runner(home / "cache", store, force=force, on_start=on_start, on_finish=on_finish)
    tracking_uri = local_tracking_uri(spec.tracking.uri, spec.project_dir)
    check_reachable(tracking_uri)
    tracking_ready = warm_up(tracking_uri)

    data_digest, frame, data_profile, report, schema = _prepare(spec, runner, store, snapshot)
    schema_digest = schema.digest()
    schema_text = cache(lambda: spec.resolve(spec.validation.schema_file).read_text(encoding="utf-8"))
    validation_digest = _digest(report.to_dict())

    split_out, report = _split_stage(spec, runner, store, data_digest, frame, report)
    split_digest = split_out["artifacts"]["indices"]
    indices = cache(lambda: np.load(io.BytesIO(store.get_bytes(split_digest))))

    trained = runner.run(
        "train",
        code=[*_WIRING, "looml.learn.train", "looml.learn.features", "looml.learn.transformers",
              "looml.learn.expressions", "looml.learn.selection", "looml.learn.rows", "looml.learn.zoo",
              "looml.learn.metrics", "looml.learn.tune", "looml.learn.spaces", "looml.learn.trial",
              "looml.learn.ensemble", "looml.learn.xgb", "looml.executors.local", "looml.executors.inline"],
        config=[spec.section_hash("preprocessing", "features", "models", "tuning", "seed"), spec.split.folds,
                spec.evaluation.primary_metric],
        inputs={"snapshot": data_digest, "split": split_digest, "validation": validation_digest},
        compute=lambda: _train(frame(), indices(), report, spec, store, _train_deadline(spec, started)),
    )
    pipeline_digest = trained["artifacts"]["pipeline"]
    fitted = cache(lambda: pickle.loads(store.get_bytes(pipeline_digest)))  # our own, digest-checked

    evaluated = runner.run(
        "evaluate", code=[*_WIRING, "looml.learn.evaluate", "looml.learn.metrics"], config=None,
        inputs={"snapshot": data_digest, "split": split_digest, "pipeline": pipeline_digest},
        compute=lambda: _evaluate(fitted(), frame(), indices(), report, spec.models.n_jobs, store),
    )
    failures = check_gate(evaluated["evaluation"]["metrics"], spec.evaluation.gate)

    context = _report_context(spec, report, data_profile, data_digest, split_out, trained,
                              evaluated, failures, runner.records)
    reported = runner.run(
        "report", code=[*_WIRING, "looml.report.html", "looml.report:templates/report.html"],
        config=spec.spec_hash,
        inputs={"pipeline": pipeline_digest, "evaluation": _digest(evaluated),
                "validation": validation_digest},
        compute=lambda: _report(context, store),
    )
    report_path = home / "reports" / f"{spec.registry.model_name}-{reported['artifacts']['html'][:12]}.html"
    if not report_path.is_file():
        atomic_write(report_path, lambda tmp: shutil.copyfile(store.path(reported["artifacts"]["html"]), tmp))

    if failures:
        raise GateError([replace(f, fix=f"{f.fix}; nothing was registered; see the report at {report_path}")
                         for f in failures])

    registered_digest, template_digest = pipeline_digest, trained["artifacts"]["template"]
    if spec.split.refit_all:
        # Every row teaches the registered model; the holdout metrics above are those of the
        # same configuration fitted on the training split (decision 39).
        registered_digest = runner.run(
            "refit", code=[*_WIRING, "looml.learn.tune", "looml.learn.rows"], config=spec.seed,
            inputs={"snapshot": data_digest, "split": split_digest, "template": template_digest,
                    "validation": validation_digest},
            # The template is our own pickle from the digest-checked store.
            compute=lambda: _refit_all(pickle.loads(store.get_bytes(template_digest)), frame(), indices(),
                                       report, spec, store),
        )["artifacts"]["pipeline"]
    registered_model = cache(lambda: pickle.loads(store.get_bytes(registered_digest)))  # our own, checked
    # The drift reference (training features, holdout outputs, permutation importance) is its
    # own stage: it costs model predictions, and `register` should cost what logging costs. It
    # is made with the registered model, whose outputs the served ones are compared with.
    referenced = runner.run(
        "reference", code=[*_WIRING, "looml.monitor.reference"], config=spec.seed,
        inputs={"snapshot": data_digest, "split": split_digest, "pipeline": registered_digest,
                "validation": validation_digest},
        compute=lambda: {"artifacts": {"reference": store.put_bytes(
            _reference(registered_model(), frame(), indices(), report, spec.seed).encode("utf-8"))}},
    )
    reference_digest = referenced["artifacts"]["reference"]
    tracking_ready()
    registered = runner.run(
        "register", code=[*_WIRING, "looml.store.tracking", "looml.store.params"],
        config=[spec.registry.model_name, tracking_uri, spec.tracking.experiment],
        inputs={"pipeline": registered_digest, "snapshot": data_digest, "schema": schema_digest,
                "evaluation": _digest(evaluated), "report": reported["artifacts"]["html"],
                "reference": reference_digest},
        compute=lambda: _register(spec, tracking_uri, registered_model(), frame(), store.path(data_digest),
                                  data_digest, report, trained, evaluated, report_path, schema_digest,
                                  {"data/schema.yaml": schema_text(), "data/profile.json": json.dumps(
                                      data_profile.to_dict()),
                                   REFERENCE_ARTIFACT: store.get_bytes(reference_digest).decode("utf-8")}),
        still_valid=lambda out: version_state(tracking_uri, out["model_name"], out["version"])[0],
    )
    _, champion = version_state(tracking_uri, registered["model_name"], registered["version"])
    SnapshotCatalog(home / "snapshots").record_use(data_digest, registered["run_id"],
                                                   registered["model_name"], registered["version"])
    return RunResult(
        model_name=registered["model_name"], model_version=registered["version"],
        model_uri=registered["model_uri"], champion=champion,
        run_id=registered["run_id"], tracking_uri=tracking_uri, task=report.task,
        primary_metric=trained["primary_metric"], best_model=trained["best"],
        metrics=evaluated["evaluation"]["metrics"], leaderboard=trained["leaderboard"],
        report_path=report_path, data_digest=data_digest, spec_hash=spec.spec_hash,
        artifacts={"snapshot": data_digest, "split": split_digest, "pipeline": registered_digest,
                   "evaluated_pipeline": pipeline_digest,
                   "predictions": evaluated["artifacts"]["predictions"],
                   "report": reported["artifacts"]["html"]},
        stages=list(runner.records), warnings=report.warnings, search=trained.get("search") or {},
    )


def check(spec: Spec | str | Path, *, snapshot: str | None = None,
          on_start: Callable[[str], None] | None = None,
          on_finish: Callable[[StageRecord], None] | None = None) -> DataCheck:
    """Ingest, profile, validate and split: every check `looml run` makes before training (what
    `looml validate` does); train nothing.

    Raises `SpecError` or `DataError` with every problem found.
    """
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    home = spec.project_dir / ".looml"
    store = ArtifactStore(home / "artifacts")
    runner = Runner(home / "cache", store, on_start=on_start, on_finish=on_finish)
    _check_candidates(spec)
    data_digest, frame, data_profile, report, _ = _prepare(spec, runner, store, snapshot)
    _, report = _split_stage(spec, runner, store, data_digest, frame, report)  # run's skew check too
    return DataCheck(profile=data_profile, report=report, data_digest=data_digest,
                     stages=list(runner.records))


def _split_stage(spec: Spec, runner: Runner, store: ArtifactStore, data_digest: str,
                 frame: Callable[[], pl.DataFrame], report: ValidationReport,
                 ) -> tuple[dict[str, Any], ValidationReport]:
    """The train / holdout split and its skew check: a skew of severity error stops here; the
    report gains the warnings."""
    split_out = runner.run(
        "split", code=[*_WIRING, "looml.data.split", "looml.data.anomalies"],
        config=[spec.split.test_size, spec.seed, spec.validation.train_test_skew.model_dump()],
        inputs={"snapshot": data_digest, "validation": _digest(report.to_dict())},
        compute=lambda: _split(frame(), report, spec, store),
    )
    skew = [Anomaly.from_dict(a) for a in split_out["skew"]]
    if any(a.severity == "error" for a in skew):
        raise DataError([a.to_problem() for a in skew if a.severity == "error"])
    return split_out, replace(report, warnings=[*report.warnings, *(a.render() for a in skew)])


def _prepare(
    spec: Spec, runner: Runner, store: ArtifactStore, snapshot: str | None = None,
) -> tuple[str, Callable[[], pl.DataFrame], Profile, ValidationReport, Schema]:
    """ingest -> profile -> validate -> check: the snapshot digest, a frame loader, the profile,
    the validation report (with the notes and warnings of every step) and the schema.

    validate decides the task and the columns' roles; check compares the data with the schema
    file (inferred and written on the first run) and looks for duplicates, leakage and imbalance.
    Every error of both is raised at once. Metrics of the other task are a spec problem found
    right after.
    """
    data_digest, notes = _ingest(spec, runner, store, snapshot)
    frame = cache(lambda: pl.read_parquet(store.path(data_digest)))

    profiled = runner.run("profile", code=[*_WIRING, "looml.data.profile"],
                          config=[spec.data.target, spec.seed],
                          inputs={"snapshot": data_digest},
                          compute=lambda: {"profile": profile(frame(), target=spec.data.target,
                                                              seed=spec.seed).to_dict()})
    data_profile = Profile.from_dict(profiled["profile"])

    try:
        validated = runner.run(
            "validate", code=[*_WIRING, "looml.data.validate"],
            config=[spec.section_hash("data", "split", "preprocessing", "features")],
            inputs={"snapshot": data_digest, "profile": _digest(profiled)},
            compute=lambda: {"report": validate(data_profile, spec.data, spec.split,
                                                spec.preprocessing, spec.features).to_dict()},
        )
    except DataError as exc:
        # With a schema at hand, a renamed or corrupt column is reported with the rest.
        schema_path = spec.resolve(spec.validation.schema_file)
        if not schema_path.is_file():
            raise
        from looml.data.anomalies import check_batch

        found = check_batch(frame(), load_schema(schema_path), spec.validation)
        raise DataError([*exc.problems, *(a.to_problem() for a in found if a.severity == "error")]) from exc
    report = ValidationReport.from_dict(validated["report"])
    schema = _schema(spec, runner, frame, data_profile, report, data_digest)
    checked = runner.run(
        "check", code=[*_WIRING, "looml.data.anomalies", "looml.data.schema"],
        config=[spec.section_hash("validation"), spec.seed],
        inputs={"snapshot": data_digest, "schema": schema.digest(), "validation": _digest(validated)},
        compute=lambda: _check(frame(), schema, report, spec),
    )
    found = [Anomaly.from_dict(a) for a in checked["anomalies"]]
    errors = [a.to_problem() for a in found if a.severity == "error"]
    if errors:
        raise DataError(errors)
    report = replace(report, warnings=[*notes, *report.warnings,
                                       *(a.render() for a in found if a.severity == "warning")])
    check_metrics_fit_task(spec.evaluation, report.task)
    return data_digest, frame, data_profile, report, schema


def _schema(spec: Spec, runner: Runner, frame: Callable[[], pl.DataFrame], data_profile: Profile,
            report: ValidationReport, data_digest: str) -> Schema:
    """The schema file's content; inferred from the data and written on the first run."""
    path = spec.resolve(spec.validation.schema_file)
    if path.is_file():
        return load_schema(path)
    from looml.data.schema import infer_schema, schema_yaml

    schema = infer_schema(frame(), data_profile, report, spec.data.id_columns,
                          spec.validation.range_margin)
    text = schema_yaml(schema, f"data snapshot {data_digest[:12]}")
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    runner.note("schema", "ran", f"inferred from the data and written to {path.name}; edit it to pin, "
                                 "relax or extend the checks")
    return schema


def _check(frame: pl.DataFrame, schema: Schema, report: ValidationReport, spec: Spec) -> dict[str, Any]:
    from looml.data.anomalies import check_batch, check_dataset

    found = check_batch(frame, schema, spec.validation) + check_dataset(frame, report, spec.validation,
                                                                         spec.seed)
    return {"anomalies": [a.to_dict() for a in found]}


def _check_candidates(spec: Spec) -> None:
    # Only when there is something to check: it imports scikit-learn, which a cached run skips.
    if spec.tuning.space or spec.tuning.resolved_method == "grid" or any(
            c.params or c.space or c.estimator for c in spec.models.candidates):
        from looml.learn.spaces import check_search

        check_search(spec)


def _ingest(spec: Spec, runner: Runner, store: ArtifactStore,
            snapshot: str | None) -> tuple[str, list[str]]:
    """The digest of the data snapshot this run trains on (recorded in the catalog), and the
    source's notes for the user.

    Local files are digested without reading them, so unchanged files are a cache hit. Other
    sources (SQL, HTTP, Python, remote URLs) are fetched every run and snapshotted; the
    snapshot's digest is the data version, so unchanged rows still hit the cache downstream.
    `snapshot` re-runs from a stored snapshot instead of the source.
    """
    from looml.data.sources import Fetched, describe, fetch, local_paths

    catalog = SnapshotCatalog(spec.project_dir / ".looml" / "snapshots")
    source = spec.data.source
    if snapshot is not None:
        entry = catalog.get(snapshot)
        if entry is None or not store.has(entry.digest):
            known = ", ".join(e.digest[:12] for e in catalog.entries()[:10]) or "none yet"
            raise DataError(Problem(loc="--snapshot", value=snapshot, message="no such data snapshot",
                                    fix=f"see `looml data`; known snapshots: {known}"))
        runner.note("ingest", "cached", f"from snapshot {entry.digest[:12]} ({entry.source})")
        return entry.digest, []

    def snapshot_of(fetched: Fetched) -> dict[str, Any]:
        frame = fetched.frame
        digest = store.put_file(lambda path: frame.write_parquet(path, statistics=False))
        return {"artifacts": {"snapshot": digest}, "rows": frame.height, "columns": frame.columns,
                "notes": fetched.notes}

    config = _digest(spec.data.source.model_dump(mode="json"))  # a hash: the URL may hold a password
    paths = local_paths(source, spec.project_dir)
    if paths is not None:
        # Each file's place and content: moving a file between folders can change file_column.
        fingerprint = hashlib.sha256("\0".join(
            f"{_relative(p, spec.project_dir)}:{file_digest(p) if p.is_file() else 'missing'}"
            for p in paths).encode()).hexdigest()
        ingested = runner.run("ingest", code=[*_WIRING, "looml.data.sources", "looml.data.sources.files"],
                              config=config, inputs={"source": fingerprint},
                              compute=lambda: snapshot_of(fetch(source, spec.project_dir)))
    else:
        fetched = runner.uncached("fetch", f"read from {describe(source)} (rows are known only by reading)",
                                  lambda: snapshot_of(fetch(source, spec.project_dir)))
        ingested = runner.run("ingest", code=[*_WIRING], config=config,
                              inputs={"snapshot": fetched["artifacts"]["snapshot"]},
                              compute=lambda: fetched)
    digest = ingested["artifacts"]["snapshot"]
    catalog.record(digest, describe(source), ingested["rows"], ingested["columns"])
    return digest, ingested.get("notes", [])


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def _split(frame: pl.DataFrame, report: ValidationReport, spec: Spec,
           store: ArtifactStore) -> dict[str, Any]:
    from looml.data.anomalies import check_skew
    from looml.data.split import split

    train, test = split(frame.get_column(report.target), report.task, spec.split.test_size, spec.seed)
    buffer = io.BytesIO()
    np.save(buffer, np.concatenate([[len(train)], train, test]))  # [n_train, *train, *test]
    features = frame.select(list(report.features))
    skew = check_skew(features[train], features[test], report.features, spec.validation.train_test_skew)
    return {"artifacts": {"indices": store.put_bytes(buffer.getvalue())},
            "train_rows": len(train), "test_rows": len(test), "skew": [a.to_dict() for a in skew]}


def _rows(frame: pl.DataFrame, indices: np.ndarray, report: ValidationReport,
          part: str) -> tuple[Any, np.ndarray]:
    n_train = int(indices[0])
    rows = indices[1:n_train + 1] if part == "train" else indices[n_train + 1:]
    picked = frame.select([*report.features, report.target])[rows]
    X = picked.drop(report.target).to_pandas()
    y = picked.get_column(report.target).to_numpy()
    return X, y


def _train_deadline(spec: Spec, started: float) -> float | None:
    """When the search and refit must be done for the run to end inside `tuning.time_budget`:
    the budget counts from the start of the run, and the stages after training (evaluate,
    report, reference, register) get their share back."""
    budget = spec.tuning.time_budget
    if budget is None:
        return None
    return started + budget - min(_AFTER_TRAIN_SHARE * budget, _AFTER_TRAIN_SECONDS)


def _train(frame: pl.DataFrame, indices: np.ndarray, report: ValidationReport, spec: Spec,
           store: ArtifactStore, deadline: float | None = None) -> dict[str, Any]:
    from looml.learn.train import train

    X, y = _rows(frame, indices, report, "train")
    later = len(indices) - 1 if spec.split.refit_all else 0  # the refit on every row, after evaluate
    trained = train(X, y, report.features, spec, report.task, deadline=deadline, refit_rows=later)
    digest = store.put_bytes(pickle.dumps(trained.pipeline, protocol=5))
    template = store.put_bytes(pickle.dumps(trained.template, protocol=5))
    return {"artifacts": {"pipeline": digest, "template": template}, "leaderboard": trained.leaderboard,
            "best": trained.best, "primary_metric": trained.primary_metric, "search": trained.search}


def _refit_all(template: Any, frame: pl.DataFrame, indices: np.ndarray, report: ValidationReport,
               spec: Spec, store: ArtifactStore) -> dict[str, Any]:
    """The evaluated configuration fitted on the training and holdout rows together."""
    import pandas as pd

    from looml.learn.tune import refit

    X_train, y_train = _rows(frame, indices, report, "train")
    X_test, y_test = _rows(frame, indices, report, "test")
    X = pd.concat([X_train, X_test], ignore_index=True)
    fitted = refit(template, X, np.concatenate([y_train, y_test]), spec)
    return {"artifacts": {"pipeline": store.put_bytes(pickle.dumps(fitted, protocol=5))}}


def _evaluate(fitted: Any, frame: pl.DataFrame, indices: np.ndarray, report: ValidationReport,
              n_jobs: int, store: ArtifactStore) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from looml.learn.evaluate import evaluate
    from looml.learn.zoo import threads_for

    X, y = _rows(frame, indices, report, "test")
    with threadpool_limits(limits=threads_for(len(X), n_jobs), user_api="openmp"):
        evaluation, predictions = evaluate(fitted, X, y, report.task)
    n_train = int(indices[0])
    table = pl.DataFrame({"row": indices[n_train + 1:], "prediction": predictions})
    digest = store.put_file(lambda path: table.write_parquet(path, statistics=False))
    return {"artifacts": {"predictions": digest}, "evaluation": evaluation.to_dict()}


def _report_context(spec: Spec, report: ValidationReport, data_profile: Profile, data_digest: str,
                    split_out: dict[str, Any], trained: dict[str, Any], evaluated: dict[str, Any],
                    failures: list[Problem], stages: list[StageRecord]) -> dict[str, Any]:
    columns = []
    for col in data_profile.columns:
        role = ("target" if col.name == report.target else report.features.get(col.name, "dropped"))
        columns.append({**asdict(col), "role": role, "missing_rate": col.missing_rate(data_profile.rows)})
    return {
        "title": spec.registry.model_name,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "looml_version": __version__, "spec_hash": spec.spec_hash, "data_digest": data_digest,
        "task": report.task, "task_reason": report.task_reason, "target": report.target,
        "data": {"rows": data_profile.rows, "columns": columns, "dropped": report.dropped,
                 "warnings": report.warnings},
        "profile": data_profile.to_dict(),
        "split": {"train_rows": split_out["train_rows"], "test_rows": split_out["test_rows"],
                  "folds": (trained.get("search") or {}).get("folds", spec.split.folds)},
        "primary_metric": trained["primary_metric"], "leaderboard": trained["leaderboard"],
        "search": trained.get("search"), "top_k": spec.tuning.top_k,
        "best": trained["best"], "test_metrics": evaluated["evaluation"]["metrics"],
        "gate": {"passed": not failures, "failures": [f"{f.loc}: {f.message}" for f in failures]},
        "plots": evaluated["evaluation"]["plots"],
        "stages": [{"name": s.name, "status": s.status, "reason": s.reason, "seconds": s.seconds}
                   for s in stages],
    }


def _report(context: dict[str, Any], store: ArtifactStore) -> dict[str, Any]:
    from looml.report import render_report

    return {"artifacts": {"html": store.put_bytes(render_report(context).encode("utf-8"))}}


def _register(spec: Spec, tracking_uri: str, fitted: Any, frame: pl.DataFrame, snapshot_path: Path,
              data_digest: str, report: ValidationReport, trained: dict[str, Any],
              evaluated: dict[str, Any], report_path: Path, schema_digest: str,
              documents: dict[str, str]) -> dict[str, Any]:
    from looml.store.params import settings_params
    from looml.store.tracking import TrackedRun, log_and_register

    # Numbers as float64 and dates as datetimes, so the signature admits missing values.
    kinds = report.features
    example = frame.head(5).select(
        pl.col(c).cast(pl.Float64) if kinds[c] == "numeric"
        else pl.col(c).cast(pl.Datetime("us")) if kinds[c] == "datetime" else pl.col(c)
        for c in kinds
    ).to_pandas()
    best = trained["leaderboard"][0]
    metrics = {f"test_{k}": v for k, v in evaluated["evaluation"]["metrics"].items()}
    seen: set[str] = set()
    for row in trained["leaderboard"]:  # best first: each candidate's best trial
        if row["name"] in seen:
            continue
        seen.add(row["name"])
        for metric, value in row["mean"].items():
            metrics[f"cv_{row['name']}_{metric}_mean"] = value
            metrics[f"cv_{row['name']}_{metric}_std"] = row["std"][metric]
    params = {f"model.{k}": v for k, v in best["params"].items()}
    params |= {"best_model": trained["best"], "task": report.task, "seed": spec.seed,
               "folds": (trained.get("search") or {}).get("folds", spec.split.folds),
               "test_size": spec.split.test_size,
               "primary_metric": trained["primary_metric"]}
    params |= settings_params(spec.model_dump(mode="json"))  # every setting, as spec.<section>.<key>
    tags = {"looml.version": __version__, "looml.spec_hash": spec.spec_hash,
            "looml.data_digest": data_digest, "looml.task": report.task, "looml.schema_digest": schema_digest}
    commit = _git_commit(spec.project_dir)
    if commit:
        tags["looml.git_commit"] = commit
    registration = log_and_register(TrackedRun(
        tracking_uri=tracking_uri, experiment=spec.tracking.experiment,
        model_name=spec.registry.model_name, pipeline=fitted, input_example=example,
        snapshot=frame, snapshot_path=snapshot_path, data_digest=data_digest, target=report.target,
        params=params, metrics=metrics, tags=tags, artifacts=[report_path], documents=documents,
        trials=trained["leaderboard"],
        # named after what it made and from what: the model, the winning candidate, the data
        run_name=f"{spec.registry.model_name}-{trained['best']}-{data_digest[:8]}",
    ))
    return registration.to_dict()



def _reference(fitted: Any, frame: pl.DataFrame, indices: np.ndarray, report: ValidationReport,
               seed: int) -> str:
    """The drift reference logged with the model: the training split's features, the model's
    outputs and permutation importance on the holdout split."""
    from looml.monitor.reference import reference_for_model

    X, y = _rows(frame, indices, report, "test")
    train = frame[indices[1:int(indices[0]) + 1]]
    return reference_for_model(fitted, train, X, y, report.features, report.task, seed).to_json()


def _git_commit(folder: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
