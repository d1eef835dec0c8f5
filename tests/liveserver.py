"""A real uvicorn serving `create_app(spec)` in a thread, on a free loopback port, for the tests."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from looml.serve.app import create_app
from looml.spec import load_spec


class LoggedErrors(logging.Handler):
    """Collects the errors looml logs: those the server swallows (a prediction log write, say)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class LiveServer:
    """uvicorn serving `create_app(spec)` (with `serve:` keys overridden) while in a `with` block.

    `url` / `address` name it, `client` is an httpx client on it, and `errors` holds what looml
    logged at ERROR meanwhile.
    """

    def __init__(self, spec_path: Path, *, log_level: str = "warning", **overrides: Any) -> None:
        spec = load_spec(spec_path)
        if overrides:
            spec = spec.model_copy(update={"serve": spec.serve.model_copy(update=overrides)})
        self.app = create_app(spec)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level=log_level))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.errors = LoggedErrors()

    def __enter__(self) -> LiveServer:
        logging.getLogger("looml").addHandler(self.errors)
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            assert time.time() < deadline, "the server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        self.url = f"http://{self.address}"
        self.client = httpx.Client(base_url=self.url, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)
        logging.getLogger("looml").removeHandler(self.errors)
