"""The REST server: `create_app(spec) -> FastAPI`, one app speaking three protocols.

    Open Inference Protocol v2   /v2/health/*, /v2, /v2/models/{name}[/versions/{v}][/ready|/infer]
    MLflow scoring               /invocations, /ping, /health, /version
    looml                        /predict, /feedback, /metrics, /docs

Every request is parsed into one `Batch`, validated against the model's schema (a 4xx with
every problem, by column and row), scored through the micro-batcher, logged, and answered.
The served model follows the `champion` alias: a poller loads the new version beside the
old one and swaps the reference, so requests in flight finish on the version they started on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

from looml import __version__
from looml.errors import Problem, RequestError
from looml.serve import protocols
from looml.serve.batching import MicroBatcher
from looml.serve.metrics import ServerMetrics
from looml.serve.model import Batch, Prediction, ServedModel, batch_rows, load_model
from looml.serve.predlog import FeedbackStore, PredictionLog, RowsToLog, parse_feedback
from looml.serve.validation import validate_batch
from looml.spec import Spec
from looml.store.tracking import champion_version, local_tracking_uri

__all__ = ["ModelHolder", "create_app"]

log = logging.getLogger("looml.serve")
access = logging.getLogger("looml.access")
_JSON = "application/json"


@dataclass
class ModelHolder:
    """The model being served, swapped whole when the champion alias moves."""

    tracking_uri: str
    name: str
    pinned: str | None  # a fixed version, or None to follow the champion
    loader: Callable[[str, str, str | None], ServedModel] = load_model
    model: ServedModel | None = None
    error: str | None = None

    def load(self) -> None:
        """Load the pinned version or the champion now."""
        self.model = self.loader(self.tracking_uri, self.name, self.pinned)
        self.error = None

    async def follow(self, interval: float) -> None:
        """Poll the alias; load a new champion off the event loop, then swap."""
        while True:
            await asyncio.sleep(interval)
            try:
                current = await asyncio.to_thread(champion_version, self.tracking_uri, self.name)
                if current is not None and (self.model is None or current != self.model.version):
                    new = await asyncio.to_thread(self.loader, self.tracking_uri, self.name, current)
                    old = self.model.version if self.model else None
                    self.model, self.error = new, None
                    log.info("serving %s version %s (was %s)", self.name, new.version, old)
            except Exception as exc:  # keep serving the old model; say why on /v2/health/ready
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("could not follow the champion of %s: %s", self.name, self.error)


def create_app(spec: Spec, *, version: str | None = None,
               loader: Callable[[str, str, str | None], ServedModel] = load_model) -> FastAPI:
    """The server app for the spec's registered model: `version`, or the champion (followed)."""
    settings = spec.serve
    tracking_uri = local_tracking_uri(spec.tracking.uri, spec.project_dir)
    pinned = version or settings.version
    holder = ModelHolder(tracking_uri, spec.registry.model_name, pinned, loader)
    batcher = MicroBatcher(settings.batching.max_batch_rows, settings.batching.max_wait_ms,
                           settings.batching.enabled)
    logs_root = spec.project_dir / ".looml" / "logs"
    predictions = PredictionLog(logs_root, settings.log) if settings.log.enabled else None
    feedback = FeedbackStore(logs_root)
    metrics = ServerMetrics(predictions)
    token = os.environ.get(settings.auth_token_env) if settings.auth_token_env else None
    if settings.auth_token_env and not token:
        raise RequestError(Problem(loc="serve.auth_token_env", value=settings.auth_token_env,
                                   message="the environment variable holding the token is not set",
                                   fix=f"export {settings.auth_token_env}=<token>, or remove "
                                       "serve.auth_token_env"), status=500)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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

    app = FastAPI(title=f"looml: {spec.registry.model_name}", version=__version__, lifespan=lifespan,
                  description="Open Inference Protocol v2, MLflow scoring and plain JSON predictions "
                              "for a looml model.")

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Any]) -> Response:
        started = time.perf_counter()
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        response = await call_next(request)
        seconds = time.perf_counter() - started
        endpoint = _endpoint(request)
        metrics.request(endpoint, response.status_code, seconds)
        response.headers["x-request-id"] = request.state.request_id
        if access.isEnabledFor(logging.INFO):
            access.info(orjson.dumps({"method": request.method, "path": request.url.path,
                                      "status": response.status_code, "ms": round(seconds * 1000, 3),
                                      "request_id": request.state.request_id}).decode())
        return response

    def current() -> ServedModel:
        if holder.model is None:
            raise RequestError(Problem(loc="model", message="the model is not loaded yet",
                                       value=holder.error, fix="retry when /v2/health/ready answers 200"),
                               status=503)
        return holder.model

    def authorize(request: Request) -> None:
        if token is not None and request.headers.get("authorization") != f"Bearer {token}":
            raise RequestError(Problem(loc="headers.authorization", message="missing or wrong bearer token",
                                       fix="send 'Authorization: Bearer <token>'"), status=401)

    async def body_of(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit():
            protocols.check_body_size(int(declared), settings.max_body_bytes)
        body = await request.body()
        protocols.check_body_size(len(body), settings.max_body_bytes)
        return body

    async def score(request: Request, model: ServedModel, batch: Batch, endpoint: str) -> tuple[
            Prediction, list[str]]:
        warnings = validate_batch(batch, model, settings.max_rows)
        prediction = await batcher.score(model, batch)
        metrics.scored(model, batch_rows(batch), prediction, batcher.last_batch_requests)
        if predictions is not None:
            predictions.append(RowsToLog(
                request_id=request.state.request_id, timestamp=datetime.now(UTC), model_name=model.name,
                model_version=model.version, endpoint=endpoint, features=model.features, batch=batch,
                prediction=prediction, classes=model.classes))
        return prediction, warnings

    # --- Open Inference Protocol v2 ---------------------------------------------------------

    @app.get("/v2/health/live", tags=["v2"])
    async def live() -> Response:
        return Response(status_code=200)

    @app.get("/v2/health/ready", tags=["v2"])
    async def ready() -> Response:
        return Response(status_code=200 if holder.model is not None else 400)

    @app.get("/v2", tags=["v2"])
    async def server_metadata() -> Response:
        return _json(protocols.server_metadata())

    def model_for(name: str, model_version: str | None) -> ServedModel:
        model = current()
        if name != model.name:
            raise RequestError(Problem(loc="path.model_name", value=name, message="no such model",
                                       fix=f"this server serves {model.name!r}"), status=404)
        if model_version is not None and model_version != model.version:
            raise RequestError(Problem(loc="path.version", value=model_version,
                                       message=f"version {model_version} is not served",
                                       fix=f"this server serves version {model.version}"), status=404)
        return model

    @app.get("/v2/models/{name}", tags=["v2"])
    @app.get("/v2/models/{name}/versions/{model_version}", tags=["v2"])
    async def model_metadata(name: str, model_version: str | None = None) -> Response:
        return _json(protocols.model_metadata(model_for(name, model_version)))

    @app.get("/v2/models/{name}/ready", tags=["v2"])
    @app.get("/v2/models/{name}/versions/{model_version}/ready", tags=["v2"])
    async def model_ready(name: str, model_version: str | None = None) -> Response:
        try:
            model_for(name, model_version)
        except RequestError:
            return Response(status_code=400)
        return Response(status_code=200)

    @app.post("/v2/models/{name}/infer", tags=["v2"], openapi_extra=_raw_body("InferenceRequest"))
    @app.post("/v2/models/{name}/versions/{model_version}/infer", tags=["v2"],
              openapi_extra=_raw_body("InferenceRequest"))
    async def infer(request: Request, name: str, model_version: str | None = None) -> Response:
        authorize(request)
        model = model_for(name, model_version)
        header = request.headers.get("inference-header-content-length")
        parsed = protocols.parse_infer_request(await body_of(request),
                                               int(header) if header and header.isdigit() else None)
        if parsed.id:
            request.state.request_id = parsed.id
        wanted = protocols.select_outputs(parsed, protocols.available_outputs(model))
        prediction, _ = await score(request, model, parsed.inputs, "v2")
        outputs = protocols.prediction_outputs(prediction)
        body, headers = protocols.encode_infer_response(
            model.name, model.version, request.state.request_id, {n: outputs[n] for n in wanted},
            binary=parsed.binary_outputs)
        return Response(body, headers=headers, media_type=headers.get("content-type", _JSON))

    # --- MLflow scoring -----------------------------------------------------------------------

    @app.get("/ping", tags=["mlflow"])
    @app.get("/health", tags=["mlflow"])
    async def ping() -> Response:
        current()
        return Response("\n", media_type=_JSON)

    @app.get("/version", tags=["mlflow"])
    async def mlflow_version() -> Response:
        from importlib import metadata

        return Response(metadata.version("mlflow"), media_type=_JSON)

    @app.post("/invocations", tags=["mlflow"], openapi_extra=_raw_body("MLflowScoringRequest"))
    async def invocations(request: Request) -> Response:
        authorize(request)
        model = current()
        batch, _params = protocols.parse_invocations(
            await body_of(request), request.headers.get("content-type"), list(model.features))
        prediction, _ = await score(request, model, batch, "invocations")
        return Response(protocols.encode_invocations_response(prediction), media_type=_JSON)

    # --- looml ---------------------------------------------------------------------------------

    @app.post("/predict", tags=["looml"], openapi_extra=_raw_body("PredictRequest"))
    async def predict(request: Request) -> Response:
        authorize(request)
        model = current()
        batch = protocols.parse_records(await body_of(request))
        prediction, warnings = await score(request, model, batch, "predict")
        return Response(protocols.encode_predict_response(model, request.state.request_id, prediction,
                                                          warnings), media_type=_JSON)

    @app.post("/feedback", tags=["looml"], openapi_extra=_raw_body("FeedbackRequest"))
    async def post_feedback(request: Request) -> Response:
        authorize(request)
        records = parse_feedback(await body_of(request))
        await asyncio.to_thread(feedback.append, records)
        return _json({"stored": len(records)})

    @app.get("/metrics", tags=["looml"])
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> Response:
        if request.url.path == "/invocations":
            body, media_type = protocols.mlflow_error(exc)
            return Response(body, status_code=exc.status, media_type=media_type)
        if request.url.path.startswith("/v2"):
            return Response(protocols.infer_error_body(exc), status_code=exc.status, media_type=_JSON)
        return Response(orjson.dumps({"error": exc.render(), "code": exc.code,
                                      "problems": exc.to_dict()["problems"]}),
                        status_code=exc.status, media_type=_JSON)

    app.state.holder = holder
    app.state.batcher = batcher
    return app


def _endpoint(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


def _json(obj: Any) -> Response:
    return Response(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), media_type=_JSON)


def _raw_body(name: str) -> dict[str, Any]:
    """OpenAPI text for an endpoint that reads its body itself (any JSON object is offered)."""
    return {"requestBody": {"required": True, "content": {_JSON: {"schema": {"type": "object",
                                                                             "title": name}}}}}
