"""`looml loop`: one check-and-act cycle over the served champion (the registry verbs by hand,
which share its audit trail, are `monitor.moves`).

A cycle reads a window of the prediction log and the feedback on it, then:
1. measures drift against the champion's training reference and live performance against
   its holdout metrics, and checks the served rows against its schema;
2. raises alerts for what it found (log, webhook, exit code);
3. if a trigger fired (drift, a performance drop, the schedule, enough new labels), splits the
   labelled traffic by time: the latest `promotion.fresh_share` is kept apart; the challenger
   is trained by the same pipeline on `loop.retrain_data` (the source read afresh, the rest of
   the labelled traffic, or both), passing the same validation and evaluation gates;
4. scores champion and challenger on the fresh rows, which neither trained on, and promotes the
   challenger only if a paired bootstrap shows it better by more than `promotion.margin` at
   `promotion.confidence`; otherwise keeps the champion and records why.
Every decision is appended to `.looml/audit.jsonl` (on a shared tracking store, to the registered
model's tags: `store.team`); the server follows the alias by itself.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from looml.errors import DataError, GateError, LoomlError, Problem, RegistryError
from looml.monitor.alerts import Alert, Alerter, alerts_for
from looml.monitor.performance import live_performance, watched_metric
from looml.monitor.project import LOCK_WAIT_SECONDS, Project, champion_of, project_of
from looml.monitor.stats import outcomes_of, paired_bootstrap
from looml.schedule import parse_schedule
from looml.spec import Spec
from looml.store.audit import Decision
from looml.store.lock import project_lock
from looml.store.registry import CHALLENGER, move_alias, record_move, version_info
from looml.store.versions import load_pipeline

__all__ = ["CycleResult", "cycle", "watch"]

log = logging.getLogger("looml.loop")


@dataclass(frozen=True)
class CycleResult:
    """What one cycle saw and did."""

    at: str
    model_name: str
    champion: str
    rows: int  # logged rows in the window
    labelled: int
    drift: dict[str, Any] | None
    performance: dict[str, Any] | None
    validation_errors: list[str]
    triggers: list[str]
    decision: dict[str, Any] | None
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def alarmed(self) -> bool:
        """Drift, a performance drop or invalid served rows were found."""
        return any(a["kind"] in ("drift", "performance_drop", "validation_errors") for a in self.alerts)

    @property
    def retrain_failed(self) -> bool:
        """A retrain was due and failed."""
        return self.decision is not None and self.decision["action"] == "retrain_failed"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)


# --- the cycle -------------------------------------------------------------------------------


def cycle(spec: Spec | str | Path, *, now: datetime | None = None, retrain: bool = False) -> CycleResult:
    """Run one check-and-act cycle; `retrain=True` retrains whatever the triggers say. The cycle
    holds the project's lock (`store.lock`), waiting up to `LOCK_WAIT_SECONDS` for a run that
    has it; `BusyError` after that (`watch` logs it and tries again at the next interval)."""
    project = project_of(spec)
    with project_lock(project.home, "looml loop", wait=LOCK_WAIT_SECONDS):
        return _cycle(project, now or datetime.now(UTC), retrain)


def _cycle(project: Project, now: datetime, retrain: bool) -> CycleResult:
    from looml.store.feedback import join_feedback, read_feedback
    from looml.store.logfiles import compact_logs
    from looml.store.predictions import feature_frame, read_predictions

    spec = project.spec
    alerter = Alerter(spec.alerts, project.home / "alerts")
    alerter.check()
    champion = champion_of(project)
    logs = project.home / "logs"
    compact_logs(logs)
    window = read_predictions(logs, since=now - timedelta(seconds=spec.loop.window), until=now)
    joined = join_feedback(window, read_feedback(logs))
    info = version_info(project.tracking_uri, project.name, champion)
    metric_name = watched_metric(spec, info.metrics)

    current = feature_frame(window)
    drift = _drift(project, champion, window) if window.height else None
    served = joined.filter(pl.col("model_version") == champion)
    performance = live_performance(served, metric_name, info.metrics.get(metric_name),
                                   spec.monitor.performance, seed=spec.seed,
                                   positive_class=spec.data.positive_class) if served.height else None
    invalid = _validation_errors(project, champion, current) if window.height else []

    state = _LoopState.load(project.home / "loop" / "state.json")
    labelled_total = int(joined["label"].is_not_null().sum()) if joined.height else 0
    triggers = _triggers(spec, drift, performance, state, labelled_total, now)
    if retrain and "requested" not in triggers:
        triggers.append("requested")
    alerts = alerts_for(f"{project.name} v{champion}", drift, performance, invalid)

    decision = None
    if triggers:
        decision = _retrain_and_decide(project, champion, metric_name, joined, triggers, now)
        if decision.action == "retrain_failed":
            alerts.append(Alert("retrain_failed", project.name, decision.reason, decision.to_dict()))
        state.last_retrain = now.isoformat()
        state.labels_at_retrain = labelled_total
    state.last_cycle = now.isoformat()
    state.save()
    sent = [{**a.to_dict(), "outcome": alerter.send(a)} for a in alerts]
    return CycleResult(
        at=now.isoformat(timespec="seconds"), model_name=project.name, champion=champion, rows=window.height,
        labelled=int(served["label"].is_not_null().sum()) if served.height else 0,
        drift=drift, performance=performance.to_dict() if performance else None,
        validation_errors=invalid, triggers=triggers, decision=decision.to_dict() if decision else None,
        alerts=sent)


def watch(spec: Spec | str | Path, *, cycles: int | None = None,
          on_cycle: Callable[[CycleResult], None] | None = None,
          sleep: Callable[[float], None] = time.sleep) -> None:
    """Run cycles every `loop.interval` seconds (forever, or `cycles` times); a cycle that fails
    with a looml error is logged and the watch goes on."""
    project = project_of(spec)
    done = 0
    while cycles is None or done < cycles:
        started = time.monotonic()
        try:
            result = cycle(project.spec)
        except LoomlError as exc:
            log.error("loop cycle failed: %s", exc.render())
        else:
            if on_cycle is not None:
                on_cycle(result)
        done += 1
        if cycles is None or done < cycles:
            sleep(max(0.0, project.spec.loop.interval - (time.monotonic() - started)))


def _drift(project: Project, champion: str, window: pl.DataFrame) -> dict[str, Any] | None:
    """Drift of the window's features and of the model's outputs against the champion's reference."""
    from looml.monitor.drift import detect
    from looml.monitor.reference import load_reference
    from looml.store.predictions import own_names

    reference = load_reference(project.tracking_uri, project.name, champion)
    if reference is None:
        return None
    return detect(reference, own_names(window, reference.columns), project.spec.monitor.drift).to_dict()


def _validation_errors(project: Project, champion: str, current: pl.DataFrame) -> list[str]:
    from looml.data.anomalies import check_batch
    from looml.data.schema import Schema

    schema = project.schema(champion)
    if schema is None:
        return []
    # The log holds the model's features only (the server refused rows without them): check those.
    served = Schema(target=schema.target, columns={n: c for n, c in schema.columns.items()
                                                   if c.role == "feature" and n in current.columns})
    found = check_batch(current, served, project.spec.validation)
    return [a.render() for a in found if a.severity == "error"]


@dataclass
class _LoopState:
    path: Path
    last_cycle: str | None = None
    last_retrain: str | None = None
    labels_at_retrain: int = 0

    @classmethod
    def load(cls, path: Path) -> _LoopState:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raw = {}
        return cls(path=path, **{k: raw[k] for k in ("last_cycle", "last_retrain", "labels_at_retrain")
                                 if k in raw})

    def save(self) -> None:
        from looml.store.artifacts import atomic_write

        data = {k: v for k, v in asdict(self).items() if k != "path"}
        atomic_write(self.path, lambda tmp: tmp.write_text(json.dumps(data), encoding="utf-8"))


def _triggers(spec: Spec, drift: dict[str, Any] | None, performance: Any, state: _LoopState,
              labelled_total: int, now: datetime) -> list[str]:
    chosen = spec.loop.triggers
    fired = []
    if chosen.drift and drift is not None and (drift.get("dataset_drift") or drift.get("prediction_drift")):
        fired.append("drift")
    if chosen.performance_drop and performance is not None and performance.dropped:
        fired.append("performance_drop")
    if chosen.schedule:
        last = datetime.fromisoformat(state.last_retrain) if state.last_retrain else None
        if parse_schedule(chosen.schedule).due(last, now):
            fired.append("schedule")
    if chosen.new_labels is not None and labelled_total - state.labels_at_retrain >= chosen.new_labels:
        fired.append("new_labels")
    return fired


# --- retrain and decide ----------------------------------------------------------------------


def _retrain_and_decide(project: Project, champion: str, metric_name: str, joined: pl.DataFrame,
                        triggers: list[str], now: datetime) -> Decision:
    spec = project.spec
    promotion = spec.loop.promotion
    labelled = joined.filter(pl.col("label").is_not_null()).sort("timestamp")
    n_fresh = math.ceil(promotion.fresh_share * labelled.height)
    fresh, trainable = labelled.tail(n_fresh), labelled.head(labelled.height - n_fresh)
    base = {"model_name": project.name, "champion_before": champion, "triggers": triggers}
    if fresh.height < promotion.min_rows:
        return _keep(project, **base, reason=f"only {fresh.height} fresh labelled row(s) to compare on, "
                     f"fewer than loop.promotion.min_rows ({promotion.min_rows}); nothing was retrained")
    try:
        challenger, drifted = _train_challenger(project, trainable, champion, now)
    except (DataError, GateError, RegistryError) as exc:
        decision = Decision(action="retrain_failed", champion_after=champion, **base,
                            reason=f"retraining failed: {exc.render()}")
        project.audit.append(decision)
        return decision
    if challenger == champion:
        return _keep(project, **base, challenger=challenger,
                     reason="retraining reproduced the champion itself (same data, same spec)")
    move_alias(project.tracking_uri, project.name, CHALLENGER, challenger)
    comparison = _compare(project, champion, challenger, metric_name, fresh)
    evidence = {"comparison": comparison.to_dict(), "fresh_rows": fresh.height,
                "trained_on_traffic_rows": trainable.height, "retrain_data": spec.loop.retrain_data,
                "outside_the_champion_schema": drifted}
    verdict = (f"{metric_name} {comparison.challenger:.4g} vs {comparison.champion:.4g} on {fresh.height} "
               f"fresh rows; improvement {comparison.improvement:+.4g}, {promotion.confidence:.0%} lower "
               f"bound {comparison.lower_bound:+.4g}, margin {promotion.margin:g}")
    if comparison.significant:
        decision = Decision(action="promote", champion_after=challenger, challenger=challenger, **base,
                            reason=f"the challenger is better: {verdict}", evidence=evidence)
        record_move(project.tracking_uri, project.audit, decision)
        return decision
    return _keep(project, **base, challenger=challenger, evidence=evidence,
                 reason=f"the challenger is not better by the margin with {promotion.confidence:.0%} "
                        f"confidence: {verdict}")


def _keep(project: Project, **fields: Any) -> Decision:
    decision = Decision(action="keep", champion_after=fields["champion_before"], **fields)
    project.audit.append(decision)
    return decision


def _train_challenger(project: Project, traffic: pl.DataFrame, champion: str,
                      now: datetime) -> tuple[str, list[str]]:
    """Train the same pipeline on the retraining data; return the version it registered and the
    drift-like findings of the data against the champion's schema.

    The new window is checked against the champion's schema first: a missing column, a type
    change or unexpected nulls stop the retrain, but values outside the old ranges or
    categories, and moved missing rates, are what drift looks like, so they are only reported.
    The challenger then gets a schema inferred from its own training data (logged with it).
    """
    from looml.pipeline import run
    from looml.store.artifacts import ArtifactStore
    from looml.store.snapshots import SnapshotCatalog

    spec = project.spec
    frame = _retrain_frame(spec, traffic)
    if frame.is_empty():
        raise DataError(Problem(loc="loop.retrain_data", value=spec.loop.retrain_data,
                                message="no labelled served rows to train on outside the fresh share",
                                fix="wait for more feedback, or retrain from the source"))
    drifted = _check_against_champion(project, champion, frame)
    store = ArtifactStore(project.home / "artifacts")
    digest = store.put_file(lambda path: frame.write_parquet(path, statistics=False))
    SnapshotCatalog(project.home / "snapshots").record(
        digest, f"looml loop {now.isoformat(timespec='seconds')}: {spec.loop.retrain_data}", frame.height,
        frame.columns)
    schema_file = project.home / "loop" / f"schema-{digest[:12]}.yaml"
    # The loop decides on fresh traffic whether the challenger is promoted, not the run's holdout.
    retrain_spec = spec.model_copy(update={
        "validation": spec.validation.model_copy(update={"schema_file": str(schema_file)}),
        "registry": spec.registry.model_copy(update={"promote": "auto"})})
    return run(retrain_spec, snapshot=digest).model_version, drifted


_DRIFT_CHECKS = ("out_of_range", "new_category", "missing_rate")


def _check_against_champion(project: Project, champion: str, frame: pl.DataFrame) -> list[str]:
    """Check the retraining rows against the schema: the project's schema file when there is one
    (the file an error's fix names: an edit there must count), else the champion's logged copy.
    Only the columns a model reads and the target are checked: ids and ignored columns are not
    features, and served rows never carry them (the prediction log keeps the features only)."""
    from looml.data.anomalies import check_batch
    from looml.data.schema import Schema, load_schema

    path = project.spec.resolve(project.spec.validation.schema_file)
    schema = load_schema(path) if path.is_file() else project.schema(champion)
    if schema is None:
        return []
    schema = Schema(target=schema.target, columns={n: c for n, c in schema.columns.items()
                                                   if c.role in ("feature", "target")})
    checks = project.spec.validation
    relaxed = checks.model_copy(update={n: getattr(checks, n).model_copy(update={"severity": "warning"})
                                        for n in _DRIFT_CHECKS})
    found = check_batch(frame, schema, relaxed)
    errors = [a.to_problem() for a in found if a.severity == "error"]
    if errors:
        raise DataError(errors)
    return [a.render() for a in found if a.check in _DRIFT_CHECKS]


def _retrain_frame(spec: Spec, traffic: pl.DataFrame) -> pl.DataFrame:
    """The rows the challenger trains on, per `loop.retrain_data`."""
    from looml.data.sources import fetch

    if spec.loop.retrain_data == "labelled_traffic":
        return _traffic_frame(spec, traffic)
    source = fetch(spec.data.source, spec.project_dir).frame
    if spec.loop.retrain_data == "source":
        return source
    return pl.concat([source, _aligned(_traffic_frame(spec, traffic), source)], how="vertical_relaxed")


def _traffic_frame(spec: Spec, traffic: pl.DataFrame) -> pl.DataFrame:
    """Labelled served rows as training rows: their features and the label as the target.

    Served rows carry the features only. A `split.by.time` column that is not a feature is each
    row's request time (served rows are later than the rows the champion learnt from); a
    `data.sample_weight` column is 1; a group column stays empty (each row its own group)."""
    from looml.store.predictions import feature_frame

    rows = feature_frame(traffic).with_columns(traffic["label"].alias(spec.data.target))
    by = spec.split.by
    if by is not None and by.time is not None and by.time not in rows.columns:
        rows = rows.with_columns(traffic["timestamp"].dt.replace_time_zone(None).alias(by.time))
    weight = spec.data.sample_weight
    if weight is not None and weight not in rows.columns:
        rows = rows.with_columns(pl.lit(1.0).alias(weight))
    return rows


def _aligned(frame: pl.DataFrame, like: pl.DataFrame) -> pl.DataFrame:
    """`frame` with `like`'s columns, in its order and (where they convert) its types; absent -> null."""
    columns = []
    for name, dtype in like.schema.items():
        if name in frame.columns:
            columns.append(frame[name].cast(dtype, strict=False))
        else:
            columns.append(pl.repeat(None, frame.height, dtype=dtype, eager=True).alias(name))
    return pl.DataFrame(columns)


def _compare(project: Project, champion: str, challenger: str, metric_name: str,
             fresh: pl.DataFrame) -> Any:
    from looml.store.predictions import feature_frame

    X = feature_frame(fresh).to_pandas()
    y = fresh["label"]
    promotion = project.spec.loop.promotion
    outcomes = [outcomes_of(load_pipeline(project.tracking_uri, project.name, v)[0], X, y,
                          project.spec.data.positive_class)
                for v in (champion, challenger)]
    return paired_bootstrap(metric_name, *outcomes, margin=promotion.margin,
                            confidence=promotion.confidence, resamples=promotion.resamples,
                            seed=project.spec.seed)


# --- registry verbs --------------------------------------------------------------------------
