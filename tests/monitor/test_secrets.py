"""No secret a project uses is written anywhere looml writes (issue 16, security).

One project uses a secret everywhere a user puts one: a PostgreSQL source whose password comes
from the environment, a server that wants a bearer token, a webhook whose URL path and header
are secret, an HTTP source with a token and an API key header, and MLflow credentials in the
environment. It trains, serves drifted traffic with feedback, runs a loop cycle that alerts and
retrains from the database, and scores the API's rows with `looml predict`. Each secret is first
shown to have been used (the database, the server, the receiver and the API saw it), then looked
for in every file under the project (inside zip archives and Parquet files too), the SQLite
store and the artifacts included, and in everything the commands printed: it must appear nowhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest
from test_loop import month, serve_month, shifted, wait_logged

from external_tools import unavailable
from filescan import texts_under

LOOML = Path(sys.executable).with_name("looml")
SECRETS = {  # environment variable -> a value that appears nowhere else
    "LOOML_PG_PASSWORD": "pg-Xyzzy-7119-pass",
    "LOOML_SERVE_TOKEN": "serve-Xyzzy-7120-token",
    "LOOML_HOOK_PATH": "hook-Xyzzy-7121-path",
    "LOOML_HOOK_TOKEN": "hook-Xyzzy-7122-header",
    "LOOML_API_TOKEN": "api-Xyzzy-7123-token",
    "LOOML_API_KEY": "api-Xyzzy-7124-key",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-Xyzzy-7125-pass",
}


class Recorder(ThreadingHTTPServer):
    """POST: records the path and headers (a webhook). GET: the rows as JSON, only to the right
    token and key (an API)."""

    def __init__(self, rows: list[dict]) -> None:
        self.posts: list[tuple[str, dict[str, str]]] = []
        self.gets: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                outer.posts.append((self.path, dict(self.headers)))
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:
                outer.gets.append(dict(self.headers))
                allowed = (self.headers.get("Authorization") == f"Bearer {SECRETS['LOOML_API_TOKEN']}"
                           and self.headers.get("X-Api-Key") == SECRETS["LOOML_API_KEY"])
                body = json.dumps(rows if allowed else {"error": "unauthorized"}).encode()
                self.send_response(200 if allowed else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder(shifted().drop("churned").head(300).to_dicts())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def spec_text(pg_url: str, recorder: Recorder) -> str:
    return f"""seed: 5
data:
  source: {{kind: sql, url: "{pg_url}", table: month1, password_env: LOOML_PG_PASSWORD}}
  target: churned
split: {{folds: 3}}
models: {{candidates: [linear]}}
tuning: {{method: none}}
registry: {{model_name: shop}}
serve:
  auth_token_env: LOOML_SERVE_TOKEN
  reload_seconds: 0.2
  log: {{flush_seconds: 0.2}}
loop:
  retrain_data: source
  promotion: {{min_rows: 100, resamples: 300}}
monitor:
  performance: {{min_labels: 100, resamples: 300}}
alerts:
  webhook_url: "{recorder.url}/${{LOOML_HOOK_PATH}}"
  headers: {{Authorization: "Bearer ${{LOOML_HOOK_TOKEN}}"}}
  retries: 0
"""


def looml(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LOOML), *args], cwd=folder, capture_output=True, text=True, timeout=300,
                          check=False, env=os.environ.copy())


def test_no_secret_is_written_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       recorder: Recorder) -> None:
    from liveserver import LiveServer
    from postgres import running_postgres, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        unavailable(reason)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    project = tmp_path / "shop"
    project.mkdir()
    printed: list[str] = []
    with running_postgres(password=SECRETS["LOOML_PG_PASSWORD"]) as pg:
        rows = month(1500, seed=1, shifted=False)
        with pg.connect() as conn:
            conn.execute("CREATE TABLE month1 (tenure float8, visits float8, spend float8, region text, "
                         "churned text)")
            with conn.cursor().copy("COPY month1 FROM STDIN") as copy:
                for row in rows.iter_rows():
                    copy.write_row(row)
        (project / "looml.yaml").write_text(spec_text(pg.url_without_password(), recorder), encoding="utf-8")

        trained = looml(project, "run", "looml.yaml", "--json")
        printed.append(trained.stdout + trained.stderr)
        assert trained.returncode == 0, trained.stderr

        with LiveServer(project / "looml.yaml") as server:
            assert server.client.post("/predict", json={"records": rows.head(1).drop("churned").to_dicts()}
                                      ).status_code == 401  # the token is asked for
            server.client.headers["Authorization"] = f"Bearer {SECRETS['LOOML_SERVE_TOKEN']}"
            traffic = shifted()
            serve_month(server, traffic)
            wait_logged(project / "looml.yaml", traffic.height)
            cycled = looml(project, "loop", "looml.yaml", "--json")
            printed.append(cycled.stdout + cycled.stderr)
        assert cycled.returncode in (0, 6), cycled.stderr
        decision = json.loads(cycled.stdout.splitlines()[-1])["decision"]
        assert decision is not None and decision["challenger"] == "2"  # retrained from the database

    api = json.dumps({"kind": "http", "url": f"{recorder.url}/rows", "auth_env": "LOOML_API_TOKEN",
                      "headers": {"X-Api-Key": "${LOOML_API_KEY}"}})
    scored = looml(project, "predict", "looml.yaml", "--data", api, "--out", "scored.parquet")
    printed.append(scored.stdout + scored.stderr)
    assert scored.returncode == 0, scored.stderr
    assert pl.read_parquet(project / "scored.parquet").height == 300

    # Each secret was used: the webhook's path and header, the API's token and key.
    assert recorder.posts, "the loop sent no alert"
    assert all(path == f"/{SECRETS['LOOML_HOOK_PATH']}" for path, _ in recorder.posts)
    assert all(h["Authorization"] == f"Bearer {SECRETS['LOOML_HOOK_TOKEN']}" for _, h in recorder.posts)
    assert recorder.gets and recorder.gets[-1]["X-Api-Key"] == SECRETS["LOOML_API_KEY"]

    texts = dict(texts_under(project))
    assert any(w.endswith("mlflow.db") for w in texts) and any(".skops!" in w for w in texts)
    found = [(name, where) for where, data in texts.items() for name, secret in SECRETS.items()
             if secret.encode() in data]
    found += [(name, "printed") for text in printed for name, secret in SECRETS.items() if secret in text]
    assert found == []
