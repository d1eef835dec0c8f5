"""The REST server: `create_app(spec) -> FastAPI`, one app speaking three protocols.

    Open Inference Protocol v2   /v2/health/*, /v2, /v2/models/{name}[/versions/{v}][/ready|/infer]
    MLflow scoring               /invocations, /ping, /health, /version
    looml                        /predict, /explain, /feedback, /metrics, /docs

Every request is parsed into one `Batch`, validated against the model's schema (a 4xx with
every problem, by column and row), scored through the micro-batcher, logged, and answered
(`routes`); the scoring requests take the fast lane past FastAPI's request machinery (`asgi`).
The served model follows the `champion` alias (`holder`). This module assembles the app: the
routes, the error bodies per protocol, the OpenAPI document of the served model, the offline
docs page and the request middleware.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request, Response

from looml.errors import RequestError
from looml.serve.asgi import FastLane, Observe
from looml.serve.explain import explain_schemas, explaining
from looml.serve.holder import ModelHolder
from looml.serve.metrics import ServerMetrics
from looml.serve.model import ServedModel, load_model
from looml.serve.openapi import schemas
from looml.serve.routes import Server, error_answer, json_response, looml_routes, mlflow_routes, v2_routes
from looml.spec import Spec
from looml.store.connect import local_tracking_uri
from looml.store.feedback import FeedbackStore
from looml.store.predictions import PredictionLog
from looml.version import __version__

__all__ = ["ModelHolder", "create_app"]

_SWITCH_SECONDS = 0.0005  # the GIL switch interval in a serving process (bench/serve.py)


def create_app(spec: Spec, *, version: str | None = None,
               loader: Callable[[str, str, str | None], ServedModel] = load_model) -> FastAPI:
    """The server app for the spec's registered model: `version`, or the champion (followed)."""
    settings = spec.serve
    pinned = version or settings.version
    holder = ModelHolder(local_tracking_uri(spec.tracking.uri, spec.project_dir), spec.registry.model_name,
                         pinned, explaining(loader))  # each loaded version with its explainer (/explain)
    logs_root = spec.project_dir / ".looml" / "logs"
    predictions = PredictionLog(logs_root, settings.log) if settings.log.enabled else None
    metrics = ServerMetrics(predictions)
    server = Server(settings, holder, predictions, FeedbackStore(logs_root), metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The prediction log's writer thread holds the GIL while it builds a file; with Python's
        # default 5 ms switch interval each hand-back to the event loop could wait that long.
        sys.setswitchinterval(_SWITCH_SECONDS)
        await asyncio.to_thread(holder.load)
        metrics.serving(holder.model)
        follower = None if pinned else asyncio.create_task(holder.follow(settings.reload_seconds))
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
            if predictions is not None:
                await asyncio.to_thread(predictions.close)

    app = _App(FastLane(server), title=f"looml: {spec.registry.model_name}", version=__version__,
               lifespan=lifespan, description="Open Inference Protocol v2, MLflow scoring and plain JSON "
                                              "predictions for a looml model.", docs_url=None, redoc_url=None,
               openapi_url=None)
    _offline_docs(app, server)
    v2_routes(app, server)
    mlflow_routes(app, server)
    looml_routes(app, server)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> Response:
        body, media_type = error_answer(request.url.path, exc)
        return Response(body, status_code=exc.status, media_type=media_type)

    def openapi() -> dict[str, Any]:
        # The request schemas name the served model's columns, so the document follows the model.
        model = holder.model
        served = None if model is None else (model.name, model.version)
        if app.openapi_schema is None or app.state.openapi_of != served:
            app.openapi_schema = None
            document = FastAPI.openapi(app)
            document.setdefault("components", {}).setdefault("schemas", {}).update(
                copy.deepcopy({**schemas(model), **explain_schemas()}))
            app.state.openapi_of = served
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get(_OPENAPI, include_in_schema=False)
    async def openapi_document(request: Request) -> Response:
        # FastAPI's own route for it takes no token; the document names the model's columns.
        server.authorize(request.headers, "docs")
        return json_response(app.openapi())

    app.add_middleware(Observe, metrics=metrics)
    app.state.openapi_of = None
    app.state.holder = holder
    app.state.batcher = server.batcher
    return app


_DOCS_ASSETS = "/docs/assets"
_OPENAPI = "/openapi.json"


def _offline_docs(app: FastAPI, server: Server) -> None:
    """`/docs`: Swagger UI from files installed with looml (the `fastapi-offline` package's
    copies), not from a CDN: FastAPI's default page was blank on a machine without internet."""
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    assets = StaticFiles(directory=str(files("fastapi_offline") / "static"))
    app.mount(_DOCS_ASSETS, assets, name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Response:
        server.authorize(request.headers, "docs")
        return get_swagger_ui_html(openapi_url=_OPENAPI, title=f"{app.title}: API",
                                   swagger_js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{_DOCS_ASSETS}/favicon.png")


class _App(FastAPI):
    """FastAPI, with the scoring requests taken first by the fast lane (`serve.asgi`)."""

    def __init__(self, lane: FastLane, **options: Any) -> None:
        super().__init__(**options)
        self.lane = lane

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        route = self.lane.match(scope)
        if route is None:
            await super().__call__(scope, receive, send)
        else:
            await self.lane(scope, receive, send, route)
