"""The server's routes by protocol family, over one `Server` (the state every route shares).

    v2_routes(app, server)       Open Inference Protocol v2: health, metadata, infer
    mlflow_routes(app, server)   MLflow scoring: /invocations, /ping, /health, /version
    looml_routes(app, server)    /predict, /explain, /feedback, /metrics

The scoring endpoints are written once, as functions of a `Call` (headers, body, request id)
that return an `Answer`: FastAPI's routes call them (and document them in OpenAPI), and so does
the fast lane (`serve.fastlane`), which serves the same paths without FastAPI's request machinery.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from looml.errors import Problem, RequestError
from looml.serve import explain, mlflow_scoring, protocols, wire
from looml.serve.batching import MicroBatcher
from looml.serve.holder import ModelHolder
from looml.serve.metrics import ServerMetrics
from looml.serve.model import Batch, Prediction, ServedModel, batch_rows
from looml.serve.openapi import answers, raw_body
from looml.serve.validation import validate_batch
from looml.spec import ServeSpec
from looml.store.feedback import FeedbackStore, check_feedback, parse_feedback
from looml.store.predictions import PredictionLog, RowsToLog

__all__ = ["SCORING", "Answer", "Call", "Server", "error_answer", "looml_routes", "mlflow_routes",
           "v2_routes"]

JSON = "application/json"


@dataclass
class Call:
    """One request as an endpoint sees it: lower-case header names, the body, the request id
    (which a v2 infer request may replace with its own `id`)."""

    headers: Mapping[str, str]
    body: bytes
    request_id: str


@dataclass
class Answer:
    """What an endpoint answers: a 200 body, its media type and any extra headers."""

    body: bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Caller:
    """Who asked for a scored batch's rows: what the prediction log and metrics need per request."""

    request_id: str
    endpoint: str
    rows: int


class Server:
    """The state the routes share: the model holder, the batcher, the logs, the metrics, the token."""

    def __init__(self, settings: ServeSpec, holder: ModelHolder, predictions: PredictionLog | None,
                 feedback: FeedbackStore, metrics: ServerMetrics) -> None:
        self.settings, self.holder, self.predictions = settings, holder, predictions
        self.feedback, self.metrics = feedback, metrics
        self.batcher = MicroBatcher(settings.batching.max_batch_rows, settings.batching.max_wait_ms,
                                    settings.batching.enabled, on_scored=self._scored)
        self.token = os.environ.get(settings.auth_token_env) if settings.auth_token_env else None
        # Compared as bytes in constant time: a plain == leaks how much of a guess was right.
        self._expected = f"Bearer {self.token}".encode() if self.token else None
        if settings.auth_token_env and not self.token:
            raise RequestError(Problem(loc="serve.auth_token_env", value=settings.auth_token_env,
                                       message="the environment variable holding the token is not set",
                                       fix=f"export {settings.auth_token_env}=<token>, or remove "
                                           "serve.auth_token_env"), status=500)

    def _scored(self, model: ServedModel, batch: Batch, prediction: Prediction,
                callers: list[_Caller]) -> None:
        self.metrics.scored(model, prediction, [c.rows for c in callers])
        if self.predictions is not None:
            self.predictions.append(RowsToLog(
                request_id=tuple(c.request_id for c in callers), timestamp=datetime.now(UTC),
                model_name=model.name, model_version=model.version,
                endpoint=tuple(c.endpoint for c in callers), features=model.features, batch=batch,
                prediction=prediction, classes=model.classes, request_rows=tuple(c.rows for c in callers)))

    def store_feedback(self, records: list[dict[str, Any]]) -> None:
        """Check the records against the prediction log (this process's rows written first, so a
        row just served is found), then store them."""
        if self.predictions is not None:
            self.predictions.flush()
        self.feedback.append(check_feedback(records, self.feedback.folder.parent))

    def current(self) -> ServedModel:
        """The model served now; a 503 before it is loaded."""
        if self.holder.model is None:
            raise RequestError(Problem(loc="model", message="the model is not loaded yet",
                                       value=self.holder.error,
                                       fix="retry when /v2/health/ready answers 200"), status=503)
        return self.holder.model

    def authorize(self, headers: Mapping[str, str], group: str | None = None) -> None:
        """A 401 unless the request carries the bearer token (when one is configured), or `group`
        (health, metrics, docs) is one of `serve.open_endpoints`."""
        if self._expected is None or (group is not None and group in self.settings.open_endpoints):
            return
        # Header values arrive as latin-1 text of the bytes sent: encoding it back gives those bytes.
        given = headers.get("authorization", "").encode("latin-1", errors="replace")
        if not hmac.compare_digest(given, self._expected):
            raise RequestError(Problem(loc="headers.authorization", message="missing or wrong bearer token",
                                       fix="send 'Authorization: Bearer <token>'"), status=401)

    async def body_of(self, request: Request) -> bytes:
        """The request body, refused (413) past `serve.max_body_bytes` before or after reading it."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit():
            wire.check_body_size(int(declared), self.settings.max_body_bytes)
        body = await request.body()
        wire.check_body_size(len(body), self.settings.max_body_bytes)
        return body

    async def score(self, call: Call, model: ServedModel, batch: Batch, endpoint: str
                    ) -> tuple[Prediction, list[str]]:
        """Validate `batch` against the model's schema, then score it through the micro-batcher."""
        warnings = validate_batch(batch, model, self.settings.max_rows)
        caller = _Caller(call.request_id, endpoint, batch_rows(batch))
        return await self.batcher.score(model, batch, caller), warnings

    def model_for(self, name: str, model_version: str | None) -> ServedModel:
        """The served model if the path names it (and its version), else a 404."""
        model = self.current()
        if name != model.name:
            raise RequestError(Problem(loc="path.model_name", value=name, message="no such model",
                                       fix=f"this server serves {model.name!r}"), status=404)
        if model_version is not None and model_version != model.version:
            raise RequestError(Problem(loc="path.version", value=model_version,
                                       message=f"version {model_version} is not served",
                                       fix=f"this server serves version {model.version}"), status=404)
        return model


def json_response(obj: Any) -> Response:
    """`obj` as a JSON response (numpy values included)."""
    return Response(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), media_type=JSON)


def error_answer(path: str, exc: RequestError) -> tuple[bytes, str]:
    """The error body a client of the protocol at `path` expects, and its media type."""
    if path == "/invocations":
        return mlflow_scoring.mlflow_error(exc)
    if path.startswith("/v2"):
        return protocols.infer_error_body(exc), JSON
    return protocols.predict_error_body(exc), JSON


# -- the scoring endpoints, once for FastAPI and the fast lane -------------------------------------

async def infer(server: Server, call: Call, name: str, model_version: str | None = None) -> Answer:
    """POST /v2/models/{name}[/versions/{v}]/infer."""
    server.authorize(call.headers)
    model = server.model_for(name, model_version)
    header = call.headers.get("inference-header-content-length")
    # The text as sent: "²" and a 5,000-digit number pass str.isdigit() but not int().
    parsed = protocols.parse_infer_request(call.body, header)
    if parsed.id:
        call.request_id = parsed.id
    wanted = protocols.select_outputs(parsed, protocols.available_outputs(model))
    prediction, _ = await server.score(call, model, parsed.inputs, "v2")
    outputs = protocols.prediction_outputs(prediction)
    body, headers = protocols.encode_infer_response(
        model.name, model.version, call.request_id, {n: outputs[n] for n in wanted},
        binary=parsed.binary_outputs)
    return Answer(body, headers.get("content-type", JSON), headers)


async def invocations(server: Server, call: Call) -> Answer:
    """POST /invocations (MLflow's scoring protocol)."""
    server.authorize(call.headers)
    model = server.current()
    batch, params = mlflow_scoring.parse_invocations(call.body, call.headers.get("content-type"),
                                                     list(model.features))
    # as the registered model's pyfunc: params {"predict_method": "predict_proba"} for probabilities
    method = mlflow_scoring.predict_method(params, model.classes is not None)
    prediction, _ = await server.score(call, model, batch, "invocations")
    return Answer(mlflow_scoring.encode_invocations_response(
        prediction, model.classes if method == "predict_proba" else None))


async def predict(server: Server, call: Call) -> Answer:
    """POST /predict (looml's records; with `"explain": true`, each row's contributions too)."""
    server.authorize(call.headers)
    model = server.current()
    body, wanted = explain.wants_explain(call.body)
    if wanted:
        explain.check_explainable(model)  # a model without explanations: the 422 before any scoring
    batch = protocols.parse_records(body)
    prediction, warnings = await server.score(call, model, batch, "predict")
    answer = protocols.encode_predict_response(model, call.request_id, prediction, warnings)
    if wanted:
        contributions = await asyncio.to_thread(explain.explain_rows, model, batch)
        answer = explain.with_explanations(answer, contributions, call.request_id)
    return Answer(answer)


async def explain_endpoint(server: Server, call: Call) -> Answer:
    """POST /explain (looml's records): each row's contributions per column (`serve.explain`)."""
    server.authorize(call.headers)
    model = server.current()
    explain.check_explainable(model)  # a model without explanations: the 422 before reading the rows
    batch = protocols.parse_records(call.body)
    validate_batch(batch, model, server.settings.max_rows)
    contributions = await asyncio.to_thread(explain.explain_rows, model, batch)
    return Answer(explain.encode_explain_response(model, call.request_id, contributions))


Endpoint = Callable[..., Awaitable[Answer]]
# The paths the fast lane serves: (route template, endpoint, path parameters by position)
SCORING: tuple[tuple[str, Endpoint], ...] = (
    ("/invocations", invocations), ("/predict", predict), ("/explain", explain_endpoint),
    ("/v2/models/{name}/infer", infer),
    ("/v2/models/{name}/versions/{model_version}/infer", infer))


async def _through_fastapi(server: Server, request: Request, endpoint: Endpoint, **params: Any) -> Response:
    call = Call(request.headers, await server.body_of(request), request.state.request_id)
    answer = await endpoint(server, call, **params)
    request.state.request_id = call.request_id
    return Response(answer.body, headers=answer.headers, media_type=answer.media_type)


def v2_routes(app: FastAPI, server: Server) -> None:
    """Open Inference Protocol v2."""

    @app.get("/v2/health/live", tags=["v2"], response_class=Response)
    async def live(request: Request) -> Response:
        server.authorize(request.headers, "health")
        return Response(status_code=200)

    @app.get("/v2/health/ready", tags=["v2"], response_class=Response)
    async def ready(request: Request) -> Response:
        server.authorize(request.headers, "health")
        return Response(status_code=200 if server.holder.model is not None else 400)

    @app.get("/v2", tags=["v2"], responses=answers("ServerMetadata", "InferError"))
    async def server_metadata(request: Request) -> Response:
        server.authorize(request.headers, "health")
        return json_response(protocols.server_metadata())

    @app.get("/v2/models/{name}", tags=["v2"], responses=answers("ModelMetadata", "InferError"))
    @app.get("/v2/models/{name}/versions/{model_version}", tags=["v2"],
             responses=answers("ModelMetadata", "InferError"))
    async def model_metadata(request: Request, name: str, model_version: str | None = None) -> Response:
        server.authorize(request.headers)  # the model's inputs and outputs: as private as scoring
        return json_response(protocols.model_metadata(server.model_for(name, model_version)))

    @app.get("/v2/models/{name}/ready", tags=["v2"], response_class=Response)
    @app.get("/v2/models/{name}/versions/{model_version}/ready", tags=["v2"], response_class=Response)
    async def model_ready(request: Request, name: str, model_version: str | None = None) -> Response:
        server.authorize(request.headers, "health")
        try:
            server.model_for(name, model_version)
        except RequestError:
            return Response(status_code=400)
        return Response(status_code=200)

    @app.post("/v2/models/{name}/infer", tags=["v2"], openapi_extra=raw_body("InferenceRequest"),
              responses=answers("InferenceResponse", "InferError"))
    @app.post("/v2/models/{name}/versions/{model_version}/infer", tags=["v2"],
              openapi_extra=raw_body("InferenceRequest"),
              responses=answers("InferenceResponse", "InferError"))
    async def infer_route(request: Request, name: str, model_version: str | None = None) -> Response:
        return await _through_fastapi(server, request, infer, name=name, model_version=model_version)


def mlflow_routes(app: FastAPI, server: Server) -> None:
    """MLflow's scoring server protocol."""

    @app.get("/ping", tags=["mlflow"], response_class=Response)
    @app.get("/health", tags=["mlflow"], response_class=Response)
    async def ping(request: Request) -> Response:
        server.authorize(request.headers, "health")
        server.current()
        return Response("\n", media_type=JSON)

    @app.get("/version", tags=["mlflow"], response_class=Response)
    async def mlflow_version(request: Request) -> Response:
        from importlib import metadata

        server.authorize(request.headers, "health")
        return Response(metadata.version("mlflow"), media_type=JSON)

    @app.post("/invocations", tags=["mlflow"], openapi_extra=raw_body("MLflowScoringRequest"),
              responses=answers("MLflowScoringResponse", "MLflowError"))
    async def invocations_route(request: Request) -> Response:
        return await _through_fastapi(server, request, invocations)


def looml_routes(app: FastAPI, server: Server) -> None:
    """looml's own: plain JSON predictions, feedback labels, Prometheus metrics."""

    @app.post("/predict", tags=["looml"], openapi_extra=raw_body("PredictRequest"),
              responses=answers("PredictResponse", "LoomlError"))
    async def predict_route(request: Request) -> Response:
        return await _through_fastapi(server, request, predict)

    @app.post("/explain", tags=["looml"], openapi_extra=raw_body("ExplainRequest"),
              responses=answers("ExplainResponse", "LoomlError"))
    async def explain_route(request: Request) -> Response:
        return await _through_fastapi(server, request, explain_endpoint)

    @app.post("/feedback", tags=["looml"], openapi_extra=raw_body("FeedbackRequest"),
              responses=answers("FeedbackResponse", "LoomlError"))
    async def post_feedback(request: Request) -> Response:
        server.authorize(request.headers)
        records = parse_feedback(await server.body_of(request))
        await asyncio.to_thread(server.store_feedback, records)
        return json_response({"stored": len(records)})

    @app.get("/metrics", tags=["looml"], response_class=PlainTextResponse)
    async def prometheus(request: Request) -> Response:
        server.authorize(request.headers, "metrics")
        server.metrics.serving(server.holder.model)  # a swap shows before the next scored request
        body, content_type = server.metrics.exposition()
        return Response(body, media_type=content_type)
