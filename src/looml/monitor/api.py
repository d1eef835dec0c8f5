"""`looml monitor`: drift of a file, a source or a window of the prediction log against the
champion's reference, written as a JSON and an HTML report.

    monitor(spec, data="new.parquet")      rows of any source (scored with the model for
                                           prediction drift)
    monitor(spec, last="24h")              the prediction log: the last 24 hours (the default),
    monitor(spec, rows=10_000)             its newest 10,000 rows,
    monitor(spec, since=..., until=...)    or a time range (UTC)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from looml.errors import DataError, Problem, SpecError
from looml.monitor.alerts import Alerter, alerts_for
from looml.monitor.drift import DriftReport, detect
from looml.monitor.performance import LivePerformance, live_performance, watched_metric
from looml.monitor.reference import Reference, load_reference, model_outputs
from looml.schedule import parse_duration
from looml.spec import DriftSpec, Spec, load_spec

__all__ = ["MonitorResult", "monitor"]

DEFAULT_WINDOW = "24h"


@dataclass(frozen=True)
class MonitorResult:
    """What `monitor` found and wrote; `exit_code` is 0, or `monitor.drift.exit_code` on drift or
    on a live performance drop."""

    model_name: str
    model_version: str
    source: str
    report: DriftReport
    drift: bool  # drift as `monitor.drift.fail_on` counts it
    exit_code: int
    json_path: Path
    html_path: Path
    performance: LivePerformance | None = None  # log windows: the labelled rows against the holdout
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (what `looml monitor --json` prints)."""
        return {"model_name": self.model_name, "model_version": self.model_version, "source": self.source,
                "drift": self.drift, "exit_code": self.exit_code, "json_path": str(self.json_path),
                "html_path": str(self.html_path), "report": self.report.to_dict(),
                "performance": self.performance.to_dict() if self.performance else None,
                "alerts": self.alerts}


def monitor(spec: Spec | str | Path, *, data: str | None = None, last: str | None = None,
            rows: int | None = None, since: datetime | None = None, until: datetime | None = None,
            version: str | None = None, out_dir: Path | None = None) -> MonitorResult:
    """Compare new rows with the reference of the champion (or `version`) and write the reports.

    The rows are `data` (a path, glob, URL or inline source mapping) or a window of the
    prediction log (`last` like "24h" / "7d", the newest `rows`, or `since` / `until`; without
    any, the last 24 hours). Raises `SpecError`, `DataError` or `RegistryError`.
    """
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    from looml.store.connect import local_tracking_uri

    if data is not None and (last or rows or since or until):
        raise SpecError(Problem(loc="--data", message="give either --data or a log window "
                                "(--last, --rows, --since/--until), not both", fix="drop one of them"))
    tracking_uri = local_tracking_uri(spec.tracking.uri, spec.project_dir)
    name = spec.registry.model_name
    reference = load_reference(tracking_uri, name, version)
    if reference is None:
        raise DataError(Problem(loc="registry.model_name", value=f"{name} {version or 'champion'}",
                                message="this model version was registered without a drift reference",
                                fix="re-run `looml run` to register a version with its reference"))
    settings = spec.monitor.drift
    if data is not None:
        current, source = _from_source(data, reference, settings, tracking_uri, name)
    else:
        current, source = _from_log(spec.project_dir / ".looml" / "logs", reference, last, rows, since, until)
    report = detect(reference, current, settings)
    drift = _counts_as_drift(report, settings)
    performance = (None if data is not None else
                   _performance(spec, tracking_uri, reference.model_version, current))
    dropped = performance is not None and performance.dropped
    folder = out_dir or spec.project_dir / ".looml" / "monitor"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    json_path, html_path = folder / f"drift-{stamp}.json", folder / f"drift-{stamp}.html"
    _write(report, json_path, html_path, {"model": f"{name} version {reference.model_version}",
                                          "current": source, "reference": reference.origin}, performance)
    alerter = Alerter(spec.alerts, spec.project_dir / ".looml" / "alerts")
    raised = alerts_for(f"{name} v{reference.model_version}", report.to_dict() if drift else None,
                        performance, [])
    sent = [{**a.to_dict(), "outcome": alerter.send(a)} for a in raised]
    return MonitorResult(model_name=name, model_version=reference.model_version, source=source, report=report,
                         drift=drift, exit_code=settings.exit_code if drift or dropped else 0,
                         json_path=json_path, html_path=html_path, performance=performance, alerts=sent)


def _performance(spec: Spec, tracking_uri: str, version: str, window: pl.DataFrame) -> LivePerformance | None:
    """Live performance of `version` on the labelled rows of a log window it served."""
    from looml.store.feedback import join_feedback, read_feedback
    from looml.store.registry import version_info

    served = window.filter(pl.col("model_version") == version)
    if served.is_empty():
        return None
    joined = join_feedback(served, read_feedback(spec.project_dir / ".looml" / "logs"))
    holdout = version_info(tracking_uri, spec.registry.model_name, version).metrics
    metric = watched_metric(spec, holdout)
    return live_performance(joined, metric, holdout.get(metric), spec.monitor.performance, seed=spec.seed,
                            positive_class=spec.data.positive_class)


def _from_source(data: str, reference: Reference, settings: DriftSpec, tracking_uri: str,
                 name: str) -> tuple[pl.DataFrame, str]:
    """The rows of a source, with the model's outputs added when predictions are compared."""
    from looml.data.sources import describe, fetch
    from looml.datasets import parse_source

    source = parse_source(data)
    frame = fetch(source, Path.cwd()).frame
    features = list(reference.columns)
    wanted = settings.prediction and reference.predictions and "prediction" not in frame.columns
    if wanted and all(f in frame.columns for f in features):
        from looml.store.versions import load_pipeline

        pipeline, _ = load_pipeline(tracking_uri, name, reference.model_version)
        task = "classification" if reference.predictions["prediction"].kind == "categorical" else "regression"
        frame = frame.hstack(model_outputs(pipeline, frame.select(features).to_pandas(), task))
    return frame, describe(source)


def _from_log(root: Path, reference: Reference, last: str | None, rows: int | None,
              since: datetime | None, until: datetime | None) -> tuple[pl.DataFrame, str]:
    """A window of the prediction log, its feature columns named as the model's features."""
    from looml.store.logfiles import compact_logs
    from looml.store.predictions import own_names, read_predictions

    if rows is not None and rows < 1:
        raise SpecError(Problem(loc="--rows", value=rows, message="must be at least 1",
                                fix="e.g. --rows 10000"))
    if last is None and rows is None and since is None and until is None:
        last = DEFAULT_WINDOW
    if last is not None:
        if since is not None:
            raise SpecError(Problem(loc="--last", message="give --last or --since, not both",
                                    fix="drop one of them"))
        try:
            since = datetime.now(UTC) - timedelta(seconds=parse_duration(last))
        except ValueError as exc:
            raise SpecError(Problem(loc="--last", value=last, message="not a duration",
                                    fix="write a number and a unit: 30m, 24h, 7d or 2w")) from exc
    compact_logs(root)  # a file per second of traffic: merged here, off the serving path
    frame = read_predictions(root, since=since, until=until, last_rows=rows)
    if frame.height == 0:
        raise DataError(Problem(loc="prediction log", value=str(root), message="no logged predictions in "
                                f"the window ({_window(last, rows, since, until)})",
                                fix="widen the window (--last 7d), or pass --data FILE"))
    frame = own_names(frame, reference.columns)
    versions = sorted(frame.get_column("model_version").unique().to_list())
    return frame, (f"prediction log, {_window(last, rows, since, until)}: {frame.height} rows of model "
                   f"version{'s' if len(versions) > 1 else ''} {', '.join(versions)}")


def _window(last: str | None, rows: int | None, since: datetime | None, until: datetime | None) -> str:
    parts = [f"last {last}" if last else f"since {since:%Y-%m-%d %H:%M} UTC" if since else "",
             f"until {until:%Y-%m-%d %H:%M} UTC" if until else "", f"newest {rows} rows" if rows else ""]
    return ", ".join(p for p in parts if p)


def _counts_as_drift(report: DriftReport, settings: DriftSpec) -> bool:
    if settings.fail_on == "never":
        return False
    if settings.fail_on == "any":
        return bool(report.drifted) or bool(report.prediction_drift)
    return report.dataset_drift or bool(report.prediction_drift)


def _write(report: DriftReport, json_path: Path, html_path: Path, meta: dict[str, str],
           performance: LivePerformance | None) -> None:
    """The JSON and HTML reports: the drift and, for a log window, the live-performance verdict
    the command prints."""
    import json

    from looml.monitor.drift_html import render_drift
    from looml.store.artifacts import atomic_write

    document = {**json.loads(report.to_json(**meta)),
                "performance": performance.to_dict() if performance else None}
    atomic_write(json_path, lambda tmp: tmp.write_text(json.dumps(document, indent=1), encoding="utf-8"))
    page = render_drift(report, meta, performance)
    atomic_write(html_path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
