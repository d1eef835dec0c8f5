"""After evaluation: the report's content and HTML, and the MLflow run and model version."""

from __future__ import annotations

import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from looml.data.profile import Profile
from looml.data.validate import ValidationReport
from looml.errors import Problem
from looml.faults import fault_point
from looml.learn.card import CardFacts
from looml.runner import StageRecord
from looml.spec import Spec
from looml.store.artifacts import ArtifactStore
from looml.version import __version__


def report_context(spec: Spec, report: ValidationReport, data_profile: Profile, data_digest: str,
                   split_out: dict[str, Any], trained: dict[str, Any], evaluated: dict[str, Any],
                   failures: list[Problem], stages: list[StageRecord], card: str = "") -> dict[str, Any]:
    """What the report shows, from every stage's output (and the model card's Markdown)."""
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
                  "folds": (trained.get("search") or {}).get("folds", spec.split.folds),
                  "by": spec.split.by.model_dump(exclude_none=True) if spec.split.by else None},
        "primary_metric": trained["primary_metric"], "leaderboard": trained["leaderboard"],
        "search": trained.get("search"), "top_k": spec.tuning.top_k,
        "best": trained["best"], "test_metrics": evaluated["evaluation"]["metrics"],
        "gate": {"passed": not failures, "failures": [f"{f.loc}: {f.message}" for f in failures]},
        "plots": evaluated["evaluation"]["plots"],
        "intervals": evaluated["evaluation"].get("intervals") or {},
        "per_class": evaluated["evaluation"].get("per_class") or {},
        "confidence": evaluated["evaluation"].get("confidence"),
        "fairness": evaluated["evaluation"].get("fairness"),
        "slices": evaluated["evaluation"].get("slices"),
        "card": card,
        "stages": [{"name": s.name, "status": s.status, "reason": s.reason, "seconds": s.seconds}
                   for s in stages],
    }


def card_facts(spec: Spec, report: ValidationReport, data_profile: Profile, data_digest: str,
               split_out: dict[str, Any], trained: dict[str, Any], evaluated: dict[str, Any],
               failures: list[Problem], importance: dict[str, float] | None) -> CardFacts:
    """What the model card states, from the run's stages (the importance: the drift reference's)."""
    return CardFacts(
        model_name=spec.registry.model_name, task=report.task, target=report.target,
        best_model=trained["best"],
        primary_metric=trained["primary_metric"], data_digest=data_digest, spec_hash=spec.spec_hash,
        rows=data_profile.rows, train_rows=split_out["train_rows"], test_rows=split_out["test_rows"],
        features=report.features, profile=data_profile.to_dict(), classes=report.classes,
        evaluation=evaluated["evaluation"], importance=importance,
        gate_failures=[f"{f.loc}: {f.message}" for f in failures],
        decision=(trained.get("search") or {}).get("decision"))


def render_html(context: dict[str, Any], store: ArtifactStore) -> dict[str, Any]:
    """The report's HTML, stored."""
    from looml.report import render_report

    html = render_report(context).encode("utf-8")
    fault_point("report.rendered")
    return {"artifacts": {"html": store.put_bytes(html)}}


def decision_params(fitted: Any) -> dict[str, Any]:
    """The registered pipeline's calibration and decision threshold as MLflow params (none without)."""
    from looml.learn.decision import decision_of

    decision = decision_of(fitted)
    if decision is None:
        return {}
    out = {"decision.calibration": decision["calibration"]}
    if decision["threshold"] is not None:
        out |= {"decision.threshold": round(decision["threshold"], 6),
                "decision.objective": decision["objective"],
                "decision.positive_class": decision["positive_class"]}
    return out


def register_model(spec: Spec, tracking_uri: str, fitted: Any, frame: pl.DataFrame, snapshot_path: Path,
                   data_digest: str, report: ValidationReport, trained: dict[str, Any],
                   evaluated: dict[str, Any], report_path: Path, schema_digest: str,
                   documents: dict[str, str], work_key: str | None = None,
                   compared: dict[str, Any] | None = None) -> dict[str, Any]:
    """The MLflow run (params, metrics, the snapshot, documents, the comparison with the champion)
    and the new model version (or the one an interrupted attempt made for the same `work_key`)."""
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
    metrics |= analysis_metrics(evaluated["evaluation"])
    seen: set[str] = set()
    for row in trained["leaderboard"]:  # best first: each candidate's best trial
        if row["name"] in seen:
            continue
        seen.add(row["name"])
        for metric, value in row["mean"].items():
            metrics[f"cv_{row['name']}_{metric}_mean"] = value
            metrics[f"cv_{row['name']}_{metric}_std"] = row["std"][metric]
    if compared and compared["status"] == "compared":  # against the champion, on the same rows
        metrics |= {f"champion_test_{compared['metric']}": compared["champion_value"],
                    "vs_champion_improvement": compared["improvement"],
                    "vs_champion_lower_bound": compared["lower_bound"]}
    params = {f"model.{k}": v for k, v in best["params"].items()}
    params |= {"best_model": trained["best"], "task": report.task, "seed": spec.seed,
               "folds": (trained.get("search") or {}).get("folds", spec.split.folds),
               "test_size": spec.split.test_size,
               "primary_metric": trained["primary_metric"]}
    params |= settings_params(spec.model_dump(mode="json"))  # every setting, as spec.<section>.<key>
    params |= decision_params(fitted)
    tags = {"looml.version": __version__, "looml.spec_hash": spec.spec_hash,
            "looml.data_digest": data_digest, "looml.task": report.task, "looml.schema_digest": schema_digest}
    commit = _git_commit(spec.project_dir)
    if commit:
        tags["looml.git_commit"] = commit
    if compared:
        tags["looml.compared_with"] = f"v{compared['champion']}: {compared['status']}"
    registration = log_and_register(TrackedRun(
        tracking_uri=tracking_uri, experiment=spec.tracking.experiment,
        model_name=spec.registry.model_name, pipeline=fitted, input_example=example,
        snapshot=frame, snapshot_path=snapshot_path, data_digest=data_digest, target=report.target,
        params=params, metrics=metrics, tags=tags, artifacts=[report_path], documents=documents,
        trials=trained["leaderboard"], work_key=work_key, claim_free_alias=spec.registry.promote != "never",
        # named after what it made and from what: the model, the winning candidate, the data
        run_name=f"{spec.registry.model_name}-{trained['best']}-{data_digest[:8]}",
    ))
    return registration.to_dict()


def analysis_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """The analysis as MLflow metrics: test_<metric>_low / _high (the interval's bounds),
    fairness_<column>_<measure> (each disparity) and, for a multiclass task,
    test_class_<class>_<precision|recall|f1>; undefined values are left out."""
    out = {}
    for label, measures in (evaluation.get("per_class") or {}).items():
        for name in ("precision", "recall", "f1"):
            if measures.get(name) is not None:
                out[f"test_class_{_metric_key(label)}_{name}"] = measures[name]
    for metric, bounds in (evaluation.get("intervals") or {}).items():
        for side, value in zip(("low", "high"), bounds, strict=True):
            if value is not None:
                out[f"test_{metric}_{side}"] = value
    for column, measures in ((evaluation.get("fairness") or {}).get("disparities") or {}).items():
        for name, found in measures.items():
            if found.get("value") is not None:
                out[f"fairness_{_metric_key(column)}_{name}"] = found["value"]
    return out


def _metric_key(name: str) -> str:
    """A column name as MLflow allows in a metric key (letters, digits, _ - . space /)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name)


def _git_commit(folder: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
