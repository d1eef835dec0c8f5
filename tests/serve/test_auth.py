"""The bearer token (`serve.auth_token_env`): every route of the app is walked, over both lanes
(the fast lane takes the scoring paths, FastAPI the rest), and each must refuse a request
without the token unless its group is in `serve.open_endpoints`.

No model is loaded (the app's lifespan is not entered): the token is checked before the model
is looked up, so a refused request is a 401 and an admitted one anything else (a 503, say).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from looml.serve.app import create_app
from looml.spec import load_spec

TOKEN = "s3cret-token-for-tests"
# The groups as docs/spec.md lists them; a route in none of them must always require the token.
HEALTH = {"/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/{name}/ready",
          "/v2/models/{name}/versions/{model_version}/ready", "/ping", "/health", "/version"}
METRICS = {"/metrics"}
DOCS = {"/docs", "/openapi.json"}
PROTECTED = {"/v2/models/{name}/infer", "/v2/models/{name}/versions/{model_version}/infer",
             "/invocations", "/predict", "/explain", "/feedback", "/v2/models/{name}",
             "/v2/models/{name}/versions/{model_version}"}


def app_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = "") -> TestClient:
    monkeypatch.setenv("LOOML_AUTH_TEST", TOKEN)
    spec = tmp_path / "looml.yaml"
    spec.write_text("data: {source: data.csv, target: y}\nregistry: {model_name: tiny}\n"
                    f"serve:\n  auth_token_env: LOOML_AUTH_TEST\n{extra}", encoding="utf-8")
    return TestClient(create_app(load_spec(spec)), raise_server_exceptions=False)


def routes(client: TestClient) -> list[tuple[str, str, str]]:
    """(method, route template, a concrete path) for every route the app has."""
    found = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute) and not hasattr(route, "methods"):
            continue  # the mounted Swagger assets (static files)
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            path = route.path.replace("{name}", "tiny").replace("{model_version}", "1")
            found.append((method, route.path, path))
    return found


def call(client: TestClient, method: str, path: str, token: str | None) -> int:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return client.request(method, path, headers=headers, content=b'{"records": []}').status_code


def test_every_route_is_in_a_known_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A new route must be placed in a group here (and in docs/spec.md) before it can ship.
    templates = {template for _, template, _ in routes(app_for(tmp_path, monkeypatch))}

    assert templates == HEALTH | METRICS | DOCS | PROTECTED


def test_scoring_metadata_and_feedback_need_the_token_health_and_metrics_do_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app_for(tmp_path, monkeypatch)
    for method, template, path in routes(client):
        guarded = template not in HEALTH | METRICS
        for token in (None, "", TOKEN[:-1] + "X", TOKEN + "X", TOKEN.upper()):
            assert (call(client, method, path, token) == 401) == guarded, (method, path, token)
        assert call(client, method, path, TOKEN) != 401, (method, path)


def test_open_endpoints_empty_protects_health_metrics_and_docs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app_for(tmp_path, monkeypatch, "  open_endpoints: []\n")
    for method, _, path in routes(client):
        assert call(client, method, path, None) == 401, (method, path)
        assert call(client, method, path, TOKEN) != 401, (method, path)


def test_open_endpoints_can_open_the_docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app_for(tmp_path, monkeypatch, "  open_endpoints: [docs]\n")

    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
    assert client.get("/metrics").status_code == 401
    assert client.get("/v2/health/live").status_code == 401


def test_a_refused_request_says_how_to_send_the_token(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    answer = app_for(tmp_path, monkeypatch).post("/predict", content=b"{}")

    assert answer.status_code == 401
    assert "headers.authorization: missing or wrong bearer token" in answer.json()["error"]
    assert "fix: send 'Authorization: Bearer <token>'" in answer.json()["error"]


def test_a_non_ascii_authorization_header_is_a_401_not_a_500(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app_for(tmp_path, monkeypatch)

    answer = client.post("/predict", headers={"authorization": "Bearer é".encode()}, content=b"{}")

    assert answer.status_code == 401


def test_an_unknown_open_endpoint_group_is_a_spec_error(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from looml.errors import SpecError

    with pytest.raises(SpecError, match=r"serve\.open_endpoints\.0 \(line 5\): expected one of "
                                        r"'health', 'metrics' or 'docs' \(got 'helth'\)\n"
                                        r"    fix: did you mean 'health'"):
        app_for(tmp_path, monkeypatch, "  open_endpoints: [helth]\n")
