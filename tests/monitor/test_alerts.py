"""Alerts to a real HTTP receiver on 127.0.0.1: retries, cool-down, refusals and missing secrets, and
the alerts of `looml loop` on a served project whose traffic drifted."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_loop import SPEC, serving, shifted, train
from typer.testing import CliRunner

from looml.cli import app
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


def test_a_webhook_that_never_answers_fails_within_its_timeout(tmp_path: Path) -> None:
    # A receiver that takes the connection and the request, then says nothing, holds no one.
    import socket
    import time

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        sender = alerter(tmp_path, Clock(), webhook_url=url, retries=2, timeout=0.5)
        started = time.monotonic()
        assert sender.send(Alert("drift", "m", "x")) == "failed"
        took = time.monotonic() - started
    # Three attempts of 0.5 s each (the backoff sleeps are skipped here); without the timeout the
    # first attempt would wait for ever. The slack is for a loaded machine.
    assert took < 10


def test_without_a_webhook_alerts_are_logged_and_kinds_can_be_turned_off(tmp_path: Path) -> None:
    sender = alerter(tmp_path, Clock(), on=["drift"])
    assert sender.send(Alert("drift", "m", "x")) == "logged"
    assert sender.send(Alert("performance_drop", "m", "x")) == "off"


def test_an_unset_secret_is_a_spec_error_naming_it(tmp_path: Path) -> None:
    sender = Alerter(AlertsSpec(webhook_url="https://hooks.invalid/${MISSING_URL_PART}"), tmp_path, env={})
    with pytest.raises(SpecError) as caught:
        sender.check()
    assert "MISSING_URL_PART" in caught.value.render() and "alerts.webhook_url" in caught.value.render()


def test_the_loop_posts_its_alerts_to_the_webhook_once_per_cooldown(tmp_path: Path,
                                                                    receiver: Receiver) -> None:
    project = train(tmp_path / "shop")
    # The alerts of a cycle, without a retrain: the triggers are off.
    project.write_text(SPEC.replace("loop:\n", "loop:\n  triggers: {drift: false, performance_drop: false}\n")
                       + f"alerts:\n  webhook_url: {receiver.url}\n  retries: 0\n"
                       "  headers: {Authorization: 'Bearer ${LOOML_HOOK_TOKEN}'}\n", encoding="utf-8")
    runner = CliRunner(env={"LOOML_HOOK_TOKEN": "s3cret"})
    with serving(project, shifted()):
        first = runner.invoke(app, ["loop", str(project), "--json"])
        again = runner.invoke(app, ["loop", str(project), "--json"])

    assert first.exit_code == 6 and again.exit_code == 6, first.output + again.output
    cycled = json.loads(first.stdout)
    assert cycled["triggers"] == [] and cycled["decision"] is None
    posted = {body["kind"]: body for body in receiver.bodies}
    assert len(receiver.bodies) == 3 and sorted(posted) == ["drift", "performance_drop", "validation_errors"]
    assert all(h["Authorization"] == "Bearer s3cret" for h in receiver.headers)
    for body in receiver.bodies:
        assert (body["source"], body["subject"]) == ("looml", "shop v1")
        assert datetime.fromisoformat(body["at"]) >= datetime.fromisoformat(cycled["at"])  # this cycle's
    drift = posted["drift"]
    assert sorted(drift["details"]["drifted"]) == ["region", "spend"]
    assert drift["message"] == f"drift in {', '.join(drift['details']['drifted'])}" \
        + (", the model's outputs" if drift["details"]["prediction_drift"] else "")
    performance = posted["performance_drop"]["details"]
    assert (performance["metric"], performance["verdict"], performance["labelled"]) == (
        "roc_auc", "drop", 1200)
    assert posted["performance_drop"]["message"].startswith(f"roc_auc fell to {performance['value']:.4g} ")
    problems = posted["validation_errors"]["details"]["problems"]
    assert any(p.startswith("column 'spend': out_of_range: ") for p in problems), problems
    # what the command printed is what was posted
    assert [{k: v for k, v in a.items() if k != "outcome"} for a in cycled["alerts"]] == receiver.bodies
    assert [a["outcome"] for a in cycled["alerts"]] == ["sent"] * 3
    # the second cycle, within the cool-down: the same alerts, suppressed, nothing posted
    assert [a["outcome"] for a in json.loads(again.stdout)["alerts"]] == ["suppressed"] * 3
    recorded = (project.parent / ".looml" / "alerts" / "alerts.jsonl").read_text(encoding="utf-8")
    outcomes = [json.loads(line)["outcome"] for line in recorded.splitlines()]
    assert outcomes == ["sent"] * 3 + ["suppressed"] * 3
