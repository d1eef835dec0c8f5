"""The server's plain-ASGI layer: the fast lane for scoring requests, and the observer of every
other request.

A scoring request (`routes.SCORING`: /invocations, /predict, v2 infer) is served by `FastLane`
straight from the ASGI scope: the body read from `receive`, the endpoint function called, the
answer sent, with the request id, the metrics and the access log. FastAPI's request machinery
(its middleware stack, routing, the `Request` object and dependency solving) cost about 0.4 ms
of CPU per request, as much as parsing, validating and scoring a row (bench/serve.py). Every
other request goes to FastAPI, through `Observe` for the same request id, metrics and log.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from looml.errors import Problem, RequestError
from looml.serve import wire
from looml.serve.metrics import ServerMetrics
from looml.serve.routes import SCORING, Call, Endpoint, Server, error_answer

__all__ = ["FastLane", "Observe"]

log = logging.getLogger("looml.serve")
access = logging.getLogger("looml.access")


def _request_id(scope: dict[str, Any]) -> str:
    given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
    return given.decode("latin-1") if given else uuid.uuid4().hex


def _observed(metrics: ServerMetrics, scope: dict[str, Any], route: str, status: int, started: float,
              request_id: str) -> None:
    """Count the request and write its access-log line."""
    seconds = time.perf_counter() - started
    metrics.request(route, status, seconds)
    if access.isEnabledFor(logging.INFO):
        access.info(orjson.dumps({"method": scope["method"], "path": scope["path"], "status": status,
                                  "ms": round(seconds * 1000, 3), "request_id": request_id}).decode())


class FastLane:
    """Serves the scoring paths from the ASGI scope; `match` says whether a request is one."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._routes: list[tuple[re.Pattern[str], str, Endpoint]] = []
        for template, endpoint in SCORING:
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
            self._routes.append((re.compile(f"^{pattern}$"), template, endpoint))

    def match(self, scope: dict[str, Any]) -> tuple[str, Endpoint, dict[str, str]] | None:
        """(route template, endpoint, path parameters) for a scoring POST, else None."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        path = scope["path"]
        for pattern, template, endpoint in self._routes:
            found = pattern.match(path)
            if found:
                return template, endpoint, found.groupdict()
        return None

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any],
                       route: tuple[str, Endpoint, dict[str, str]]) -> None:
        started = time.perf_counter()
        template, endpoint, params = route
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        call = Call(headers, b"", _request_id(scope))
        status, extra = 200, {}
        try:
            call.body = await self._body(headers, receive)
            answer = await endpoint(self.server, call, **params)
            body, media_type, extra = answer.body, answer.media_type, answer.headers
        except RequestError as exc:
            status = exc.status
            body, media_type = error_answer(scope["path"], exc)
        except _Disconnected:
            _observed(self.server.metrics, scope, template, 499, started, call.request_id)
            return
        except Exception as exc:
            log.exception("%s %s failed", scope["method"], scope["path"])
            status = 500
            body, media_type = error_answer(scope["path"], RequestError(Problem(
                loc="server", message=f"internal server error ({type(exc).__name__})",
                fix="see the server's log; report it if it repeats"), status=500))
        out = [(b"content-type", media_type.encode("latin-1")), (b"content-length", str(len(body)).encode()),
               (b"x-request-id", call.request_id.encode("latin-1"))]
        out += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()
                if k.lower() not in ("content-type", "content-length")]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})
        _observed(self.server.metrics, scope, template, status, started, call.request_id)

    async def _body(self, headers: dict[str, str], receive: Callable[..., Any]) -> bytes:
        """The whole body, refused (413) past the limit before or while it is read."""
        limit = self.server.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit():
            wire.check_body_size(int(declared), limit)
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                wire.check_body_size(size, limit)
                parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts) if len(parts) != 1 else parts[0]


class _Disconnected(Exception):
    """The client went away before its body was read."""


class Observe:
    """Request id, metrics and the access log for a request FastAPI serves, as plain ASGI.

    The request id (the `x-request-id` header, or a new one) is kept in the scope's state, where
    `request.state.request_id` reads it, and sent back as `x-request-id`. A plain ASGI
    middleware costs a few microseconds; `@app.middleware("http")` cost about 0.6 ms of CPU
    per request (bench/serve.py).
    """

    def __init__(self, app: Callable[..., Any], metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state["request_id"] = _request_id(scope)
        status = 500

        async def send_observed(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", state["request_id"].encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            _observed(self.metrics, scope, getattr(scope.get("route"), "path", "unmatched"), status, started,
                      state["request_id"])
