"""Before training: ingest -> profile -> validate -> check (the schema), and the train / holdout split."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from looml.data.anomalies import Anomaly
from looml.data.profile import Profile, profile
from looml.data.schema import Schema, load_schema
from looml.data.validate import ValidationReport, validate
from looml.errors import DataError, Problem, SpecError
from looml.learn.decision_checks import decision_problems
from looml.learn.gate import check_analysis_columns, check_metrics_fit_task
from looml.pipeline.common import WIRING, digest_of
from looml.runner import Runner
from looml.spec import Spec
from looml.store.artifacts import ArtifactStore, atomic_write, file_digest
from looml.store.snapshots import SnapshotCatalog


def prepare(
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

    profiled = runner.run("profile", code=[*WIRING, "looml.data.profile"],
                          config=[spec.data.target, spec.seed],
                          inputs={"snapshot": data_digest},
                          compute=lambda: {"profile": profile(frame(), target=spec.data.target,
                                                              seed=spec.seed).to_dict()})
    data_profile = Profile.from_dict(profiled["profile"])

    kept_out = sensitive_kept_out(spec)
    named = [(".".join(map(str, loc)), name) for loc, name in spec.evaluation.metric_locations()]
    try:
        validated = runner.run(
            "validate", code=[*WIRING, "looml.data.validate", "looml.data.split_checks"],
            config=[spec.section_hash("data", "split", "preprocessing", "features"), kept_out, named],
            inputs={"snapshot": data_digest, "profile": digest_of(profiled)},
            compute=lambda: {"report": validate(data_profile, spec.data, spec.split,
                                                spec.preprocessing, spec.features, kept_out,
                                                named).to_dict()},
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
    # What the evaluation section names must fit the data: known only now, still before training.
    problems = check_analysis_columns(spec.evaluation, data_profile.names, report.target)
    try:
        check_metrics_fit_task(spec.evaluation, report.task, len(report.classes))
    except SpecError as exc:
        problems = [*problems, *exc.problems]
    problems += decision_problems(spec.evaluation, report.task, len(report.classes))
    if problems:
        raise SpecError(problems)
    schema = _schema(spec, runner, frame, data_profile, report, data_digest)
    checked = runner.run(
        "check", code=[*WIRING, "looml.data.anomalies", "looml.data.schema"],
        config=[spec.section_hash("validation"), spec.seed],
        inputs={"snapshot": data_digest, "schema": schema.digest(), "validation": digest_of(validated)},
        compute=lambda: _check(frame(), schema, report, spec),
    )
    found = [Anomaly.from_dict(a) for a in checked["anomalies"]]
    errors = [a.to_problem() for a in found if a.severity == "error"]
    if errors:
        raise DataError(errors)
    report = replace(report, warnings=[*notes, *report.warnings,
                                       *(a.render() for a in found if a.severity == "warning")])
    return data_digest, frame, data_profile, report, schema


def sensitive_kept_out(spec: Spec) -> dict[str, str]:
    """The sensitive columns kept out of the features (column -> why), unless the spec lets the
    model learn from them (decision 45)."""
    if spec.evaluation.sensitive_as_features:
        return {}
    return {n: "listed in evaluation.sensitive_columns (analysed, not a feature)"
            for n in spec.evaluation.sensitive_columns}


def split_stage(spec: Spec, runner: Runner, store: ArtifactStore, data_digest: str,
                frame: Callable[[], pl.DataFrame], report: ValidationReport,
                 ) -> tuple[dict[str, Any], ValidationReport]:
    """The train / holdout split and its skew check: a skew of severity error stops here; the
    report gains the warnings."""
    split_out = runner.run(
        "split", code=[*WIRING, "looml.data.split", "looml.data.anomalies"],
        config=[spec.split.test_size, spec.seed, spec.validation.train_test_skew.model_dump(),
                spec.split.by.model_dump() if spec.split.by else None],
        inputs={"snapshot": data_digest, "validation": digest_of(report.to_dict())},
        compute=lambda: _split(frame(), report, spec, store),
    )
    skew = [Anomaly.from_dict(a) for a in split_out["skew"]]
    if any(a.severity == "error" for a in skew):
        raise DataError([a.to_problem() for a in skew if a.severity == "error"])
    return split_out, replace(report, warnings=[*report.warnings, *(a.render() for a in skew)])


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


def check_candidates(spec: Spec) -> None:
    """The candidates' fixed parameters and search spaces checked against their estimators; the
    custom metrics imported (a bad path is a `SpecError` before any work)."""
    if spec.evaluation.custom_paths:
        from looml.learn.metrics import custom_metrics

        custom_metrics(spec)
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

    config = digest_of(spec.data.source.model_dump(mode="json"))  # a hash: the URL may hold a password
    paths = local_paths(source, spec.project_dir)
    if paths is not None:
        # Each file's place and content: moving a file between folders can change file_column.
        fingerprint = hashlib.sha256("\0".join(
            f"{_relative(p, spec.project_dir)}:{file_digest(p) if p.is_file() else 'missing'}"
            for p in paths).encode()).hexdigest()
        ingested = runner.run("ingest",
                              code=[*WIRING, "looml.data.sources", "looml.data.sources.files",
                                    "looml.data.sources.locate"],
                              config=config, inputs={"source": fingerprint},
                              compute=lambda: snapshot_of(fetch(source, spec.project_dir)))
    else:
        fetched = runner.uncached("fetch", f"read from {describe(source)} (rows are known only by reading)",
                                  lambda: snapshot_of(fetch(source, spec.project_dir)))
        ingested = runner.run("ingest", code=[*WIRING], config=config,
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
    from looml.data.split import split, split_keys

    by = spec.split.by
    keys = split_keys(frame.get_column(by.column), by.kind) if by else None
    train, test = split(frame.get_column(report.target), report.task, spec.split.test_size, spec.seed,
                        by.kind if by else None, keys, by.column if by else "")
    buffer = io.BytesIO()
    np.save(buffer, np.concatenate([[len(train)], train, test]))  # [n_train, *train, *test]
    features = frame.select(list(report.features))
    skew = check_skew(features[train], features[test], report.features, spec.validation.train_test_skew)
    return {"artifacts": {"indices": store.put_bytes(buffer.getvalue())},
            "train_rows": len(train), "test_rows": len(test), "skew": [a.to_dict() for a in skew]}
