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
import copy
import gc
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from looml import __version__
from looml.errors import Problem, RequestError
from looml.serve import mlflow_scoring, protocols, wire
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
_SWITCH_SECONDS = 0.0005  # the GIL switch interval in a serving process (bench/serve.py)


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
        _settle()

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
                    _settle()
                    log.info("serving %s version %s (was %s)", self.name, new.version, old)
            except Exception as exc:  # keep serving the old model; say why on /v2/health/ready
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("could not follow the champion of %s: %s", self.name, self.error)


_DOCS_ASSETS = "/docs/assets"


def _offline_docs(app: FastAPI) -> None:
    """`/docs`: Swagger UI from files installed with looml (the `fastapi-offline` package's
    copies), not from a CDN: FastAPI's default page was blank on a machine without internet."""
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    assets = StaticFiles(directory=str(files("fastapi_offline") / "static"))
    app.mount(_DOCS_ASSETS, assets, name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title}: API",
                                   swagger_js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{_DOCS_ASSETS}/favicon.png")


def create_app(spec: Spec, *, version: str | None = None,
               loader: Callable[[str, str, str | None], ServedModel] = load_model) -> FastAPI:
    """The server app for the spec's registered model: `version`, or the champion (followed)."""
    settings = spec.serve
    tracking_uri = local_tracking_uri(spec.tracking.uri, spec.project_dir)
    pinned = version or settings.version
    holder = ModelHolder(tracking_uri, spec.registry.model_name, pinned, loader)
    logs_root = spec.project_dir / ".looml" / "logs"
    predictions = PredictionLog(logs_root, settings.log) if settings.log.enabled else None
    feedback = FeedbackStore(logs_root)
    metrics = ServerMetrics(predictions)

    def scored(model: ServedModel, batch: Batch, prediction: Prediction, callers: list[_Caller]) -> None:
        metrics.scored(model, prediction, [c.rows for c in callers])
        if predictions is not None:
            predictions.append(RowsToLog(
                request_id=tuple(c.request_id for c in callers), timestamp=datetime.now(UTC),
                model_name=model.name, model_version=model.version,
                endpoint=tuple(c.endpoint for c in callers), features=model.features, batch=batch,
                prediction=prediction, classes=model.classes, request_rows=tuple(c.rows for c in callers)))

    batcher = MicroBatcher(settings.batching.max_batch_rows, settings.batching.max_wait_ms,
                           settings.batching.enabled, on_scored=scored)
    token = os.environ.get(settings.auth_token_env) if settings.auth_token_env else None
    if settings.auth_token_env and not token:
        raise RequestError(Problem(loc="serve.auth_token_env", value=settings.auth_token_env,
                                   message="the environment variable holding the token is not set",
                                   fix=f"export {settings.auth_token_env}=<token>, or remove "
                                       "serve.auth_token_env"), status=500)

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

    app = FastAPI(title=f"looml: {spec.registry.model_name}", version=__version__, lifespan=lifespan,
                  description="Open Inference Protocol v2, MLflow scoring and plain JSON predictions "
                              "for a looml model.", docs_url=None, redoc_url=None)
    _offline_docs(app)

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
            wire.check_body_size(int(declared), settings.max_body_bytes)
        body = await request.body()
        wire.check_body_size(len(body), settings.max_body_bytes)
        return body

    async def score(request: Request, model: ServedModel, batch: Batch, endpoint: str) -> tuple[
            Prediction, list[str]]:
        warnings = validate_batch(batch, model, settings.max_rows)
        caller = _Caller(request.state.request_id, endpoint, batch_rows(batch))
        return await batcher.score(model, batch, caller), warnings

    # --- Open Inference Protocol v2 ---------------------------------------------------------

    @app.get("/v2/health/live", tags=["v2"], response_class=Response)
    async def live() -> Response:
        return Response(status_code=200)

    @app.get("/v2/health/ready", tags=["v2"], response_class=Response)
    async def ready() -> Response:
        return Response(status_code=200 if holder.model is not None else 400)

    @app.get("/v2", tags=["v2"], responses=_answers("ServerMetadata", "InferError"))
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

    @app.get("/v2/models/{name}", tags=["v2"], responses=_answers("ModelMetadata", "InferError"))
    @app.get("/v2/models/{name}/versions/{model_version}", tags=["v2"],
             responses=_answers("ModelMetadata", "InferError"))
    async def model_metadata(name: str, model_version: str | None = None) -> Response:
        return _json(protocols.model_metadata(model_for(name, model_version)))

    @app.get("/v2/models/{name}/ready", tags=["v2"], response_class=Response)
    @app.get("/v2/models/{name}/versions/{model_version}/ready", tags=["v2"], response_class=Response)
    async def model_ready(name: str, model_version: str | None = None) -> Response:
        try:
            model_for(name, model_version)
        except RequestError:
            return Response(status_code=400)
        return Response(status_code=200)

    @app.post("/v2/models/{name}/infer", tags=["v2"], openapi_extra=_raw_body("InferenceRequest"),
              responses=_answers("InferenceResponse", "InferError"))
    @app.post("/v2/models/{name}/versions/{model_version}/infer", tags=["v2"],
              openapi_extra=_raw_body("InferenceRequest"),
              responses=_answers("InferenceResponse", "InferError"))
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

    @app.get("/ping", tags=["mlflow"], response_class=Response)
    @app.get("/health", tags=["mlflow"], response_class=Response)
    async def ping() -> Response:
        current()
        return Response("\n", media_type=_JSON)

    @app.get("/version", tags=["mlflow"], response_class=Response)
    async def mlflow_version() -> Response:
        from importlib import metadata

        return Response(metadata.version("mlflow"), media_type=_JSON)

    @app.post("/invocations", tags=["mlflow"], openapi_extra=_raw_body("MLflowScoringRequest"),
              responses=_answers("MLflowScoringResponse", "MLflowError"))
    async def invocations(request: Request) -> Response:
        authorize(request)
        model = current()
        batch, _params = mlflow_scoring.parse_invocations(
            await body_of(request), request.headers.get("content-type"), list(model.features))
        prediction, _ = await score(request, model, batch, "invocations")
        return Response(mlflow_scoring.encode_invocations_response(prediction), media_type=_JSON)

    # --- looml ---------------------------------------------------------------------------------

    @app.post("/predict", tags=["looml"], openapi_extra=_raw_body("PredictRequest"),
              responses=_answers("PredictResponse", "LoomlError"))
    async def predict(request: Request) -> Response:
        authorize(request)
        model = current()
        batch = protocols.parse_records(await body_of(request))
        prediction, warnings = await score(request, model, batch, "predict")
        return Response(protocols.encode_predict_response(model, request.state.request_id, prediction,
                                                          warnings), media_type=_JSON)

    @app.post("/feedback", tags=["looml"], openapi_extra=_raw_body("FeedbackRequest"),
              responses=_answers("FeedbackResponse", "LoomlError"))
    async def post_feedback(request: Request) -> Response:
        authorize(request)
        records = parse_feedback(await body_of(request))
        await asyncio.to_thread(feedback.append, records)
        return _json({"stored": len(records)})

    @app.get("/metrics", tags=["looml"], response_class=PlainTextResponse)
    async def prometheus() -> Response:
        metrics.serving(holder.model)  # a swap shows before the next scored request
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> Response:
        if request.url.path == "/invocations":
            body, media_type = mlflow_scoring.mlflow_error(exc)
            return Response(body, status_code=exc.status, media_type=media_type)
        if request.url.path.startswith("/v2"):
            return Response(protocols.infer_error_body(exc), status_code=exc.status, media_type=_JSON)
        return Response(protocols.predict_error_body(exc), status_code=exc.status, media_type=_JSON)

    def openapi() -> dict[str, Any]:
        # The request schemas name the served model's columns, so the document follows the model.
        model = holder.model
        served = None if model is None else (model.name, model.version)
        if app.openapi_schema is None or app.state.openapi_of != served:
            app.openapi_schema = None
            document = FastAPI.openapi(app)
            document.setdefault("components", {}).setdefault("schemas", {}).update(
                copy.deepcopy(_schemas(model)))
            app.state.openapi_of = served
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(_Observe, metrics=metrics)
    app.state.openapi_of = None
    app.state.holder = holder
    app.state.batcher = batcher
    return app


@dataclass(frozen=True)
class _Caller:
    """Who asked for a scored batch's rows: what the prediction log and metrics need per request."""

    request_id: str
    endpoint: str
    rows: int


class _Observe:
    """Request id, metrics and the access log for every HTTP request, as plain ASGI.

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
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        state = scope.setdefault("state", {})
        state["request_id"] = given.decode("latin-1") if given else uuid.uuid4().hex
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
            seconds = time.perf_counter() - started
            self.metrics.request(getattr(scope.get("route"), "path", "unmatched"), status, seconds)
            if access.isEnabledFor(logging.INFO):
                access.info(orjson.dumps({"method": scope["method"], "path": scope["path"], "status": status,
                                          "ms": round(seconds * 1000, 3),
                                          "request_id": state["request_id"]}).decode())


def _settle() -> None:
    """Move the loaded model's objects out of the collector's reach: full collections over them
    took 70-310 ms every few seconds and were the server's p99 (bench/serve.py)."""
    gc.collect()
    gc.freeze()


def _json(obj: Any) -> Response:
    return Response(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), media_type=_JSON)


def _raw_body(name: str) -> dict[str, Any]:
    """OpenAPI text for an endpoint that reads its body itself (the schema, from `_schemas`, is a guide)."""
    return {"requestBody": {"required": True, "content": {_JSON: {"schema": _ref(name)}}}}


def _answers(ok: str, error: str) -> dict[int | str, Any]:
    """The documented responses of an endpoint: `ok` (200) and `error` (every 4xx)."""
    answers: dict[int | str, Any] = {200: {"content": {_JSON: {"schema": _ref(ok)}}},
                                     "4XX": {"content": {_JSON: {"schema": _ref(error)}}}}
    if ok == "InferenceResponse":
        answers[200]["content"]["application/octet-stream"] = {"schema": {"type": "string",
                                                                          "format": "binary"}}
    if error == "MLflowError":  # as MLflow answers an unsupported media type
        answers[415] = {"content": {"text/plain": {"schema": {"type": "string"}}}}
    return answers


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], extra: bool = True, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties,
            **({} if extra else {"additionalProperties": False})}


_STR, _INT, _OBJECT = {"type": "string"}, {"type": "integer", "minimum": 0}, {"type": "object"}
_VALUES = {"type": "array", "items": {"type": ["number", "string", "boolean", "null"]}}
_KINDS = {"numeric": {"type": "number"}, "categorical": {"type": "string"},
          "datetime": {"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]}}


def _schemas(model: ServedModel | None) -> dict[str, Any]:
    """The request and response schemas of the OpenAPI document; records name `model`'s columns."""
    record: dict[str, Any] = _OBJECT
    names: dict[str, Any] = _STR
    if model is not None:
        columns = model.schema.columns if model.schema is not None else {}
        values = {}
        for name, kind in model.features.items():
            col = columns.get(name)
            value = dict(_KINDS.get(kind, _STR))
            if col is not None and col.categories:
                value["examples"] = col.categories[:5]
            values[name] = value if col is not None and not col.nullable else {
                "anyOf": [value, {"type": "null"}]}
        record = _object([n for n in model.features if n not in columns or columns[n].required], **values)
        names = {"enum": list(model.features)}
    problems = {"type": "array", "minItems": 1, "items": _ref("Problem")}
    rows = {"type": "array", "minItems": 1, "items": _ref("Record")}
    feedback = _object(["label"], extra=False, row_id={**_STR, "minLength": 1},
                       request_id={**_STR, "minLength": 1}, row=_INT,
                       label={"type": ["string", "number", "boolean"]},
                       timestamp={"anyOf": [{**_STR, "format": "date-time"}, {"type": "number"}]})
    feedback["anyOf"] = [{"required": ["row_id"]}, {"required": ["request_id"]}]
    tensor = _object(["name", "datatype", "shape"], name=_STR, datatype=_STR,
                     shape={"type": "array", "items": {"type": "integer"}}, data={"type": "array"},
                     parameters=_OBJECT)
    return {
        "Problem": _object(["loc", "msg"], loc=_STR, line={"type": ["integer", "null"]}, msg=_STR, value={},
                           fix=_STR),
        "LoomlError": _object(["error", "code", "problems"], error=_STR, code=_STR, problems=problems),
        "InferError": _object(["error"], error=_STR, problems=problems),
        "MLflowError": _object(["error_code", "message"], error_code=_STR, message=_STR, problems=problems),
        "Record": record,
        "PredictRequest": _object(["records"], records=rows),
        "PredictResponse": _object(
            ["request_id", "model_name", "model_version", "warnings", "predictions"], request_id=_STR,
            model_name=_STR, model_version=_STR, warnings={"type": "array", "items": _STR},
            predictions={"type": "array", "items": _object(
                ["request_id", "prediction"], request_id=_STR, prediction={},
                probabilities={"type": "object", "additionalProperties": {"type": "number"}})}),
        "MLflowScoringRequest": {"oneOf": [
            _object(["dataframe_split"], extra=False, params=_OBJECT, dataframe_split=_object(
                ["columns", "data"], columns={"type": "array", "minItems": 1, "items": names},
                data={"type": "array", "items": _VALUES})),
            _object(["dataframe_records"], extra=False, params=_OBJECT, dataframe_records=rows),
            _object(["instances"], extra=False, params=_OBJECT, instances=rows),
            _object(["inputs"], extra=False, params=_OBJECT, inputs={
                "type": "object", "propertyNames": names, "additionalProperties": _VALUES})]},
        "MLflowScoringResponse": _object(["predictions"], predictions={"type": "array"}),
        "InferenceRequest": _object(["inputs"], id=_STR, parameters=_OBJECT, inputs={
            "type": "array", "minItems": 1, "items": _object(
                ["name", "shape", "datatype", "data"], name=names, parameters=_OBJECT,
                datatype={"enum": list(protocols.DATATYPES)}, data=_VALUES,
                shape={"type": "array", "minItems": 1, "maxItems": 2, "items": _INT})},
            outputs={"type": "array", "items": _object(["name"], name={
                "enum": [protocols.PREDICT, protocols.PREDICT_PROBA]}, parameters=_object(
                    [], binary_data={"type": "boolean"}))}),
        "InferenceResponse": _object(["model_name", "outputs"], model_name=_STR, model_version=_STR, id=_STR,
                                     parameters=_OBJECT, outputs={"type": "array", "items": tensor}),
        "ModelMetadata": _object(["name", "versions", "platform", "inputs", "outputs"], name=_STR,
                                 versions={"type": "array", "items": _STR}, platform=_STR,
                                 inputs={"type": "array", "items": tensor},
                                 outputs={"type": "array", "items": tensor}),
        "ServerMetadata": _object(["name", "version", "extensions"], name=_STR, version=_STR,
                                  extensions={"type": "array", "items": _STR}),
        "FeedbackRequest": {"anyOf": [_ref("FeedbackRecord"),
                                      {"type": "array", "minItems": 1, "items": _ref("FeedbackRecord")}]},
        "FeedbackRecord": feedback,
        "FeedbackResponse": _object(["stored"], stored=_INT),
    }
