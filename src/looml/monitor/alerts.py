"""Alerts: a log line always, a webhook POST when configured, de-duplicated within a cool-down.

An alert is keyed by (kind, subject); the same key is sent at most once per
`alerts.cooldown`, remembered in `.looml/alerts/state.json`. Every alert, sent or suppressed,
is appended to `.looml/alerts/alerts.jsonl`. A webhook that keeps failing after its retries
is logged as an error; it never stops the loop.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from looml.errors import Problem, SpecError
from looml.spec import AlertsSpec

__all__ = ["Alert", "Alerter", "alerts_for"]

log = logging.getLogger("looml.alerts")
_VAR = re.compile(r"\$\{([^}]*)\}")
_MAX_WAIT = 30.0  # seconds: the longest backoff or Retry-After honoured


@dataclass(frozen=True)
class Alert:
    """Something a person should look at."""

    kind: str  # drift | performance_drop | validation_errors | retrain_failed
    subject: str  # what it is about: the model, and e.g. the drifted columns
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        """The webhook payload."""
        return {"source": "looml", **asdict(self)}


class Alerter:
    """Sends alerts per `spec`, remembering what was sent under `folder`."""

    def __init__(self, spec: AlertsSpec, folder: Path, *, env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.spec = spec
        self.folder = Path(folder)
        self._env = os.environ if env is None else env
        self._clock = clock
        self._sleep = sleep

    def check(self) -> None:
        """Raise `SpecError` now if the webhook names an unset environment variable."""
        self._url_and_headers()

    def send(self, alert: Alert) -> str:
        """Deliver `alert`; return 'sent', 'logged' (no webhook), 'suppressed', 'off' or 'failed'."""
        if alert.kind not in self.spec.on:
            return "off"
        state = self._state()
        key = f"{alert.kind}:{alert.subject}"
        now = self._clock()
        if now - state.get(key, float("-inf")) < self.spec.cooldown:
            self._record(alert, "suppressed")
            return "suppressed"
        log.warning("ALERT %s", json.dumps(alert.to_dict(), default=str))
        outcome = "logged"
        if self.spec.webhook_url:
            outcome = "sent" if self._post(alert) else "failed"
        if outcome != "failed":
            state[key] = now
            self._save(state)
        self._record(alert, outcome)
        return outcome

    def _url_and_headers(self) -> tuple[str, dict[str, str]]:
        problems: list[Problem] = []

        def expand(text: str, loc: str) -> str:
            def one(match: re.Match[str]) -> str:
                value = self._env.get(match.group(1))
                if not value:
                    problems.append(Problem(loc=loc, value=match.group(0),
                                            message=f"environment variable {match.group(1)} is not set",
                                            fix=f"export {match.group(1)}=..."))
                    return ""
                return value
            return _VAR.sub(one, text)

        url = expand(self.spec.webhook_url or "", "alerts.webhook_url")
        headers = {k: expand(v, f"alerts.headers.{k}") for k, v in self.spec.headers.items()}
        if problems:
            raise SpecError(problems)
        return url, headers

    def _post(self, alert: Alert) -> bool:
        import httpx

        url, headers = self._url_and_headers()
        for attempt in range(self.spec.retries + 1):
            wait = min(_MAX_WAIT, 0.5 * 2**attempt)
            try:
                answer = httpx.post(url, json=alert.to_dict(), headers=headers, timeout=self.spec.timeout)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if answer.status_code < 300:
                    return True
                problem = f"HTTP {answer.status_code}"
                if answer.status_code != 429 and answer.status_code < 500:
                    break  # the receiver refuses this payload: retrying will not help
                retry_after = answer.headers.get("retry-after", "")
                if retry_after.isdigit():
                    wait = min(_MAX_WAIT, float(retry_after))
            if attempt < self.spec.retries:
                self._sleep(wait)
        log.error("alert webhook failed after %d attempt(s): %s (alert %s about %s)",
                  attempt + 1, problem, alert.kind, alert.subject)
        return False

    def _state(self) -> dict[str, float]:
        path = self.folder / "state.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _save(self, state: dict[str, float]) -> None:
        from looml.store.artifacts import atomic_write

        atomic_write(self.folder / "state.json",
                     lambda tmp: tmp.write_text(json.dumps(state, sort_keys=True), encoding="utf-8"))

    def _record(self, alert: Alert, outcome: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "alerts.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps({**alert.to_dict(), "outcome": outcome}, default=str) + "\n")


def alerts_for(subject: str, drift: dict[str, Any] | None, performance: Any,
               invalid: list[str]) -> list[Alert]:
    """The alerts a monitoring pass raises: dataset drift (a `DriftReport.to_dict()`), a
    performance drop (a `LivePerformance`), schema errors in served rows."""
    alerts = []
    if drift is not None and (drift.get("dataset_drift") or drift.get("prediction_drift")):
        drifted = drift.get("drifted", [])
        what = [*drifted, *(["the model's outputs"] if drift.get("prediction_drift") else [])]
        alerts.append(Alert("drift", subject, f"drift in {', '.join(what)}",
                            {"drifted": drifted, "prediction_drift": bool(drift.get("prediction_drift"))}))
    if performance is not None and performance.dropped:
        alerts.append(Alert("performance_drop", subject,
                            f"{performance.metric} fell to {performance.value:.4g} (holdout "
                            f"{performance.reference:.4g}, limit {performance.limit:.4g})",
                            performance.to_dict()))
    if invalid:
        alerts.append(Alert("validation_errors", subject, f"{len(invalid)} schema error(s) in served rows",
                            {"problems": invalid}))
    return alerts
