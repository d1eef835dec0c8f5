"""Alerts to a real HTTP receiver on 127.0.0.1: retries, cool-down, refusals and missing secrets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from looml.errors import SpecError
from looml.monitor.alerts import Alert, Alerter
from looml.spec import AlertsSpec


class Receiver:
    """Answers each POST with the next status of `statuses` (then 200) and keeps the bodies."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.bodies.append(json.loads(body))
                outer.headers.append(dict(self.headers))
                self.send_response(outer.statuses.pop(0) if outer.statuses else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def alerter(tmp_path: Path, clock: Clock, **settings: object) -> Alerter:
    return Alerter(AlertsSpec(**settings), tmp_path, env={"HOOK_TOKEN": "s3cret"}, clock=clock,
                   sleep=lambda _: None)


def test_a_webhook_is_retried_after_5xx_and_gets_the_payload(tmp_path: Path, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    sender = alerter(tmp_path, Clock(), webhook_url=receiver.url, retries=3,
                     headers={"Authorization": "Bearer ${HOOK_TOKEN}"})
    assert sender.send(Alert("drift", "churn v1", "data drift in tenure", {"drifted": ["tenure"]})) == "sent"
    assert len(receiver.bodies) == 3
    last = receiver.bodies[-1]
    assert last["kind"] == "drift" and last["details"] == {"drifted": ["tenure"]}
    assert receiver.headers[-1]["Authorization"] == "Bearer s3cret"


def test_the_same_alert_is_sent_once_per_cooldown(tmp_path: Path, receiver: Receiver) -> None:
    clock = Clock()
    sender = alerter(tmp_path, clock, webhook_url=receiver.url, cooldown="1h")
    drift = Alert("drift", "churn v1", "data drift")
    assert sender.send(drift) == "sent"
    clock.now += 600
    assert sender.send(drift) == "suppressed"
    assert sender.send(Alert("performance_drop", "churn v1", "auc fell")) == "sent"  # another kind
    clock.now += 3600
    assert sender.send(drift) == "sent"
    assert len(receiver.bodies) == 3
    outcomes = [json.loads(line)["outcome"] for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert outcomes == ["sent", "suppressed", "sent", "sent"]


def test_a_refused_payload_is_not_retried_and_is_tried_again_next_time(tmp_path: Path,
                                                                       receiver: Receiver) -> None:
    receiver.statuses = [400]
    sender = alerter(tmp_path, Clock(), webhook_url=receiver.url, retries=5)
    assert sender.send(Alert("drift", "m", "x")) == "failed"
    assert len(receiver.bodies) == 1
    assert sender.send(Alert("drift", "m", "x")) == "sent"  # a failure does not start the cool-down


def test_an_unreachable_webhook_fails_without_raising(tmp_path: Path) -> None:
    sender = alerter(tmp_path, Clock(), webhook_url="http://127.0.0.1:9/nothing", retries=1, timeout=1)
    assert sender.send(Alert("retrain_failed", "m", "x")) == "failed"


def test_without_a_webhook_alerts_are_logged_and_kinds_can_be_turned_off(tmp_path: Path) -> None:
    sender = alerter(tmp_path, Clock(), on=["drift"])
    assert sender.send(Alert("drift", "m", "x")) == "logged"
    assert sender.send(Alert("performance_drop", "m", "x")) == "off"


def test_an_unset_secret_is_a_spec_error_naming_it(tmp_path: Path) -> None:
    sender = Alerter(AlertsSpec(webhook_url="https://hooks.invalid/${MISSING_URL_PART}"), tmp_path, env={})
    with pytest.raises(SpecError) as caught:
        sender.check()
    assert "MISSING_URL_PART" in caught.value.render() and "alerts.webhook_url" in caught.value.render()
