"""The lifecycle, wired in one readable place.

ingest -> profile -> validate -> split -> train -> evaluate -> (gate: failed -> report, stop)
    -> compare (with the champion, if there is one) -> refit -> reference -> explain
    -> report (with the model card) -> register -> (registry.promote: the champion alias)

Each stage runs through the `Runner`, which caches its output under a hash of what it
depends on. Heavy libraries (scikit-learn, MLflow) are imported only by stages that
actually run, so a fully cached re-run stays fast.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from looml.data.profile import Profile
from looml.data.validate import ValidationReport
from looml.errors import GateError
from looml.learn.card import CARD_ARTIFACT, model_card
from looml.learn.gate import check_gate
from looml.monitor.reference import REFERENCE_ARTIFACT
from looml.pipeline.common import WIRING, digest_of
from looml.pipeline.compare import (
    COMPARISON_ARTIFACT,
    LINEAGE_ARTIFACT,
    compare_with_champion,
    is_this_work,
    lineage_document,
    promote_if_better,
    promotion,
)
from looml.pipeline.explain import make_explanations
from looml.pipeline.model import evaluate_model, make_reference, refit_all, train_deadline, train_model
from looml.pipeline.prepare import check_candidates, prepare, split_stage
from looml.pipeline.record import card_facts, register_model, render_html, report_context
from looml.runner import Runner, StageRecord
from looml.spec import Spec, load_spec
from looml.store.artifacts import ArtifactStore, atomic_write, sweep_temp
from looml.store.connect import check_reachable, local_tracking_uri, warm_up
from looml.store.lock import project_lock
from looml.store.snapshots import SnapshotCatalog
from looml.store.versions import champion_version, model_documents, version_state

__all__ = ["DataCheck", "RunResult", "check", "run"]


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
    intervals: dict[str, list[float | None]] = field(default_factory=dict)  # metric -> [low, high]
    confidence: float | None = None  # the intervals' level (None: evaluation.analysis is off)
    # Against the champion there was when the run began (`pipeline.compare`), and what
    # `registry.promote` did with it ("promoted", "reason"); empty when there was none.
    comparison: dict[str, Any] = field(default_factory=dict)

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
    `BusyError` when another looml process is changing the project (`store.lock`).
    """
    started = time.monotonic()  # `tuning.time_budget` is the whole run's wall clock
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    check_candidates(spec)
    home = spec.project_dir / ".looml"
    with project_lock(home, "looml run"):  # one writer per project (store.lock)
        return _run(spec, home, started, force, snapshot, on_start, on_finish)


def _run(spec: Spec, home: Path, started: float, force: bool, snapshot: str | None,
         on_start: Callable[[str], None] | None,
         on_finish: Callable[[StageRecord], None] | None) -> RunResult:
    sweep_temp(home)  # what a killed run was writing (decision 52)
    store = ArtifactStore(home / "artifacts")
    runner = Runner(home / "cache", store, force=force, on_start=on_start, on_finish=on_finish)
    tracking_uri = local_tracking_uri(spec.tracking.uri, spec.project_dir)
    check_reachable(tracking_uri)
    tracking_ready = warm_up(tracking_uri)

    data_digest, frame, data_profile, report, schema = prepare(spec, runner, store, snapshot)
    schema_digest = schema.digest()
    schema_text = cache(lambda: spec.resolve(spec.validation.schema_file).read_text(encoding="utf-8"))
    validation_digest = digest_of(report.to_dict())

    split_out, report = split_stage(spec, runner, store, data_digest, frame, report)
    split_digest = split_out["artifacts"]["indices"]
    indices = cache(lambda: np.load(io.BytesIO(store.get_bytes(split_digest))))

    trained = runner.run(
        "train",
        code=[*WIRING, "looml.learn.train", "looml.learn.features", "looml.learn.transformers",
              "looml.learn.expressions", "looml.learn.selection", "looml.learn.rows", "looml.learn.zoo",
              "looml.learn.metrics", "looml.learn.tune", "looml.learn.spaces", "looml.learn.trial",
              "looml.learn.search", "looml.learn.budget", "looml.learn.leaderboard", "looml.learn.vote",
              "looml.learn.ensemble", "looml.learn.xgb", "looml.learn.decision", "looml.executors.local",
              "looml.executors.inline", "looml.data.split"],
        config=[spec.section_hash("preprocessing", "features", "models", "tuning", "seed"), spec.split.folds,
                spec.evaluation.primary_metric, spec.split.by.model_dump() if spec.split.by else None,
                spec.data.sample_weight, spec.data.positive_class, spec.evaluation.custom_metrics,
                spec.evaluation.calibration,
                spec.evaluation.threshold.model_dump() if spec.evaluation.threshold else None],
        inputs={"snapshot": data_digest, "split": split_digest, "validation": validation_digest},
        compute=lambda: train_model(frame(), indices(), report, spec, store, train_deadline(spec, started)),
    )
    pipeline_digest = trained["artifacts"]["pipeline"]
    fitted = cache(lambda: pickle.loads(store.get_bytes(pipeline_digest)))  # our own, digest-checked

    analysis = ["looml.learn.intervals", "looml.learn.fairness", "looml.learn.slices"]
    evaluated = runner.run(
        "evaluate", code=[*WIRING, "looml.learn.evaluate", "looml.learn.metrics", *analysis],
        config=[spec.evaluation.model_dump(mode="json", exclude={"gate"}), spec.seed,
                spec.data.sample_weight, spec.data.positive_class],
        inputs={"snapshot": data_digest, "split": split_digest, "pipeline": pipeline_digest},
        compute=lambda: evaluate_model(fitted(), frame(), indices(), report, spec, trained["primary_metric"],
                                       store),
    )
    failures = check_gate(evaluated["evaluation"]["metrics"], spec.evaluation.gate,
                          evaluated["evaluation"].get("fairness"))
    compared: dict[str, Any] = {}  # against the champion: after the gate (`pipeline.compare`)

    def write_report(reference: str | None,
                     explanations: str | None = None) -> tuple[dict[str, Any], Path, str]:
        """The report (with the model card) as a stage, copied to .looml/reports; and the card."""
        importance = (json.loads(store.get_bytes(reference))["importance"] if reference else None)
        card = model_card(card_facts(spec, report, data_profile, data_digest, split_out, trained, evaluated,
                                     failures, importance))
        context = report_context(spec, report, data_profile, data_digest, split_out, trained,
                                  evaluated, failures, runner.records, card)
        if explanations:  # the report's Explanations section (report/templates/explanations.html)
            context["explanations"] = json.loads(store.get_bytes(explanations))
        if compared:  # the report's "Against the champion"
            context["comparison"] = {**compared, "promotion": promotion(spec.registry.promote, compared)[1]}
        reported = runner.run(
            "report", code=[*WIRING, "looml.report.html", "looml.report.charts", "looml.report.text",
                            "looml.report:templates/report.html",
                            "looml.report:templates/explanations.html",
                            "looml.learn.card", "looml.pipeline.compare"],
            config=spec.spec_hash,
            inputs={"pipeline": pipeline_digest, "evaluation": digest_of(evaluated),
                    "validation": validation_digest, "reference": reference or "",
                    "explanations": explanations or "", "comparison": digest_of(compared)},
            compute=lambda: render_html(context, store),
        )
        path = home / "reports" / f"{spec.registry.model_name}-{reported['artifacts']['html'][:12]}.html"
        if not path.is_file():
            atomic_write(path, lambda tmp: shutil.copyfile(store.path(reported["artifacts"]["html"]), tmp))
        return reported, path, card

    if failures:
        _, report_path, _ = write_report(None)
        raise GateError([replace(f, fix=f"{f.fix}; nothing was registered; see the report at {report_path}")
                         for f in failures])

    compared = _compare(spec, runner, store, tracking_uri, data_digest, split_digest, pipeline_digest,
                        validation_digest, trained["primary_metric"],
                        lambda champion, lineage: compare_with_champion(
                            champion, lineage, fitted(), frame(), indices(), report, spec, store,
                            tracking_uri, split_digest, trained["primary_metric"]))
    registered_digest, template_digest = pipeline_digest, trained["artifacts"]["template"]
    if spec.split.refit_all:
        # Every row teaches the registered model; the holdout metrics above are those of the
        # same configuration fitted on the training split (decision 39).
        registered_digest = runner.run(
            "refit", code=[*WIRING, "looml.learn.tune", "looml.learn.search", "looml.learn.rows"],
            config=[spec.seed, spec.data.sample_weight],
            inputs={"snapshot": data_digest, "split": split_digest, "template": template_digest,
                    "validation": validation_digest},
            # The template is our own pickle from the digest-checked store.
            compute=lambda: refit_all(pickle.loads(store.get_bytes(template_digest)), frame(), indices(),
                                       report, spec, store),
        )["artifacts"]["pipeline"]
    registered_model = cache(lambda: pickle.loads(store.get_bytes(registered_digest)))  # our own, checked
    # The drift reference (training features, holdout outputs, permutation importance) is its
    # own stage: it costs model predictions, and `register` should cost what logging costs. It
    # is made with the registered model, whose outputs the served ones are compared with.
    referenced = runner.run(
        "reference", code=[*WIRING, "looml.monitor.reference"], config=spec.seed,
        inputs={"snapshot": data_digest, "split": split_digest, "pipeline": registered_digest,
                "validation": validation_digest},
        compute=lambda: {"artifacts": {"reference": store.put_bytes(
            make_reference(registered_model(), frame(), indices(), report, spec.seed).encode("utf-8"))}},
    )
    reference_digest = referenced["artifacts"]["reference"]
    # Explanations of the registered model on the holdout: SHAP values or linear contributions,
    # with the reference's permutation importance (not computed twice); part of the analysis.
    explanations_digest = None if not spec.evaluation.analysis else runner.run(
        "explain",
        code=[*WIRING, "looml.pipeline.explain", "looml.learn.explain", "looml.learn.explanations",
              "looml.learn.treecost"],
        config=spec.seed,
        inputs={"snapshot": data_digest, "split": split_digest, "pipeline": registered_digest,
                "reference": reference_digest, "validation": validation_digest},
        compute=lambda: {"artifacts": {"explanations": store.put_bytes(make_explanations(
            registered_model(), frame(), indices(), report, store.get_bytes(reference_digest).decode("utf-8"),
            spec.seed).encode("utf-8"))}},
    )["artifacts"]["explanations"]
    # The report follows the reference: the model card names the registered model's top features.
    reported, report_path, card = write_report(reference_digest, explanations_digest)
    tracking_ready()

    def documents() -> dict[str, str]:  # logged beside the model
        from looml.learn.explanations import EXPLANATIONS_ARTIFACT  # scikit-learn: only when registering

        logged = {"data/schema.yaml": schema_text(), "data/profile.json": json.dumps(data_profile.to_dict()),
                  REFERENCE_ARTIFACT: store.get_bytes(reference_digest).decode("utf-8"), CARD_ARTIFACT: card,
                  LINEAGE_ARTIFACT: lineage_document(data_digest, split_digest, pipeline_digest),
                  COMPARISON_ARTIFACT: json.dumps(compared, indent=2)}
        if explanations_digest is not None:
            logged[EXPLANATIONS_ARTIFACT] = store.get_bytes(explanations_digest).decode("utf-8")
        return logged

    register_config = [spec.registry.model_name, tracking_uri, spec.tracking.experiment]
    register_inputs = {"pipeline": registered_digest, "snapshot": data_digest, "schema": schema_digest,
                       "evaluation": digest_of(evaluated), "report": reported["artifacts"]["html"],
                       "reference": reference_digest, "explanations": explanations_digest or ""}
    # A version made for this same work by a run killed before `register` was recorded is adopted,
    # not made twice (decision 52); --force asks for a new one.
    # This project's own interrupted attempt at this very work is adopted, never another folder's
    # run of the same data and spec against a shared registry (that is a version of its own).
    work_key = None if force else digest_of([register_config, register_inputs,
                                             str(spec.project_dir.resolve())])
    registered = runner.run(
        "register", code=[*WIRING, "looml.store.tracking", "looml.store.versions", "looml.store.params"],
        config=register_config, inputs=register_inputs,
        compute=lambda: register_model(spec, tracking_uri, registered_model(), frame(),
                                       store.path(data_digest), data_digest, report, trained, evaluated,
                                       report_path, schema_digest, documents(), work_key, compared),
        still_valid=lambda out: version_state(tracking_uri, out["model_name"], out["version"])[0],
    )
    promoted, why = promote_if_better(spec, tracking_uri, home, registered["version"], compared)
    _, champion = version_state(tracking_uri, registered["model_name"], registered["version"])
    SnapshotCatalog(home / "snapshots").record_use(data_digest, registered["run_id"],
                                                   registered["model_name"], registered["version"])
    return RunResult(
        model_name=registered["model_name"], model_version=registered["version"],
        model_uri=registered["model_uri"], champion=champion,
        run_id=registered["run_id"], tracking_uri=tracking_uri, task=report.task,
        primary_metric=trained["primary_metric"], best_model=trained["best"],
        metrics=evaluated["evaluation"]["metrics"], intervals=evaluated["evaluation"].get("intervals") or {},
        confidence=evaluated["evaluation"].get("confidence"), leaderboard=trained["leaderboard"],
        report_path=report_path, data_digest=data_digest, spec_hash=spec.spec_hash,
        artifacts={"snapshot": data_digest, "split": split_digest, "pipeline": registered_digest,
                   "evaluated_pipeline": pipeline_digest,
                   "predictions": evaluated["artifacts"]["predictions"],
                   "report": reported["artifacts"]["html"]},
        stages=list(runner.records), warnings=report.warnings, search=trained.get("search") or {},
        comparison={**compared, "promoted": promoted, "promotion": why} if compared else {},
    )


def _compare(spec: Spec, runner: Runner, store: ArtifactStore, tracking_uri: str, data_digest: str,
             split_digest: str, pipeline_digest: str, validation_digest: str, primary: str,
             compute: Callable[[str, str | None], dict[str, Any]]) -> dict[str, Any]:
    """The `compare` stage: this run's model against the champion (`pipeline.compare`); {} when
    there is none.

    Its cache key is this run's work, not the champion: the comparison is made once, against
    the champion of the first run that made it, so a re-run after the champion moved stays a
    re-run (the same report, the same version, not a new one), and `promote_if_better` refuses
    to act on a comparison with a champion that is no longer there."""
    name = spec.registry.model_name
    champion = champion_version(tracking_uri, name)
    if champion is None:
        return {}
    documents = model_documents(tracking_uri, name, champion,
                                paths=(LINEAGE_ARTIFACT, COMPARISON_ARTIFACT))[1]
    lineage = documents.get(LINEAGE_ARTIFACT)
    if is_this_work(lineage, data_digest, split_digest, pipeline_digest):
        # A re-run of the champion's own work: the comparison it was registered with, so the
        # report, and with it the registered version, stay the same.
        try:
            stored = json.loads(documents.get(COMPARISON_ARTIFACT) or "{}")
        except ValueError:  # not what looml wrote: compare again
            stored = None
        if isinstance(stored, dict):
            return stored
    return runner.run(
        "compare", code=[*WIRING, "looml.pipeline.compare", "looml.monitor.stats"],
        config=[spec.loop.promotion.model_dump(mode="json"), spec.seed, spec.data.positive_class, primary],
        inputs={"snapshot": data_digest, "split": split_digest, "pipeline": pipeline_digest,
                "validation": validation_digest},
        compute=lambda: {"comparison": compute(champion, lineage)},
    )["comparison"]


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
    check_candidates(spec)
    data_digest, frame, data_profile, report, _ = prepare(spec, runner, store, snapshot)
    _, report = split_stage(spec, runner, store, data_digest, frame, report)  # run's skew check too
    return DataCheck(profile=data_profile, report=report, data_digest=data_digest,
                     stages=list(runner.records))
