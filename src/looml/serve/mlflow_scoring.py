"""The MLflow scoring server's wire format (`mlflow models serve`), for /invocations.

    parse_invocations(body, content_type, features) -> (Batch, params)
    encode_invocations_response(prediction[, classes]);  predict_method(params, classifier)
    mlflow_error(exc) / mlflow_error_body(exc)

`dataframe_split`, `dataframe_records`, `instances` and `inputs` JSON bodies, CSV and Parquet,
as MLflow 3.17's scoring server reads them (shared/reference/protocols.md 2).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

from looml.errors import Problem, RequestError, did_you_mean
from looml.serve.model import Batch, Prediction
from looml.serve.wire import (
    kind_of,
    load_json,
    plain_list,
    problems_json,
    records_batch,
    rows_problem,
)
from looml.store.predictions import label_text

__all__ = ["encode_invocations_response", "mlflow_error", "mlflow_error_body", "parse_invocations",
           "predict_method"]

_MLFLOW_TYPES = ["text/csv", "application/json", "application/vnd.apache.parquet"]
_MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_MLFLOW_FORMAT = ("The input must be a JSON dictionary with exactly one of the input fields "
                  "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}")
_MLFLOW_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 404: "RESOURCE_DOES_NOT_EXIST",
                 413: "BAD_REQUEST", 415: "BAD_REQUEST", 422: "INVALID_PARAMETER_VALUE"}


def parse_invocations(body: bytes, content_type: str | None,
                      features: Sequence[str] | None = None) -> tuple[Batch, dict[str, Any] | None]:
    """Parse an MLflow `/invocations` body into a batch and its optional `params`.

    JSON holds exactly one of `dataframe_split`, `dataframe_records`, `instances` or `inputs`;
    `text/csv` has a header row; `application/vnd.apache.parquet` is a Parquet file. Rows given
    as plain lists (`instances` / `inputs`) take the columns of `features`, in order. A missing
    Content-Type is read as JSON. Raises `RequestError`: 415 for another media type or charset,
    400 for a malformed body.
    """
    mime = _mlflow_media_type(content_type)
    if mime == "text/csv":
        return _parse_csv(body), None
    if mime == "application/vnd.apache.parquet":
        return _parse_parquet(body), None
    doc = load_json(body, "the request")
    if not isinstance(doc, dict):
        raise RequestError(Problem(loc="body", message=f"{_MLFLOW_FORMAT}. Received a {kind_of(doc)}.",
                                   fix='wrap the rows: {"dataframe_records": [...]}'))
    keys = [k for k in _MLFLOW_KEYS if k in doc]
    if len(keys) != 1:
        raise RequestError(Problem(loc="body", message=f"{_MLFLOW_FORMAT}. Received dictionary with input "
                                   f"fields: {list(doc)}.", fix='for example {"dataframe_split": '
                                   '{"columns": [...], "data": [[...], ...]}}'))
    params = doc.get("params")
    if params is not None and not isinstance(params, dict):
        raise RequestError(Problem(loc="params", value=params, message="must be a JSON object",
                                   fix='"params": {"name": value}'))
    key = keys[0]
    payload = doc[key]
    if key == "dataframe_split":
        return _parse_split(payload), params
    if key == "dataframe_records":
        return records_batch(payload, key), params
    if isinstance(payload, dict) and key == "inputs":
        return _columns_batch(payload, key), params
    if isinstance(payload, list) and payload and all(isinstance(r, list) for r in payload):
        return _positional_batch(payload, key, features), params
    if isinstance(payload, list) and payload and not isinstance(payload[0], dict) and features \
            and len(features) == 1:
        return {features[0]: payload}, params  # a 1-D tensor for a single-feature model
    return records_batch(payload, key), params


def _mlflow_media_type(content_type: str | None) -> str:
    if content_type is None or not content_type.strip():
        return "application/json"
    mime, *pairs = (part.strip() for part in content_type.split(";"))
    values = {key.strip().lower(): value.strip().strip('"') for key, _, value in (p.partition("=")
                                                                                 for p in pairs if p)}
    if values.get("charset", "utf-8").lower() != "utf-8":
        raise RequestError(Problem(loc="headers.Content-Type", value=content_type,
                                   message="The scoring server only supports UTF-8",
                                   fix="send the body as UTF-8 with charset=utf-8, or no charset"),
                           status=415)
    extra = sorted(set(values) - {"charset"})
    if extra:
        raise RequestError(Problem(loc="headers.Content-Type", value=content_type,
                                   message=f"Unrecognized content type parameters: {', '.join(extra)}. "
                                           "The MLflow scoring protocol changed in MLflow 2.0: the format "
                                           "is now a key of the JSON body, not a Content-Type parameter.",
                                   fix='send Content-Type: application/json and {"dataframe_split": ...}'),
                           status=415)
    if mime.lower() not in _MLFLOW_TYPES:
        raise RequestError(Problem(loc="headers.Content-Type", value=content_type,
                                   message="This predictor only supports the following content types: "
                                           f"Types: {_MLFLOW_TYPES}. Got '{content_type}'.",
                                   fix="send Content-Type: application/json"), status=415)
    return mime.lower()


def _parse_split(payload: Any) -> Batch:
    loc = "dataframe_split"
    if not isinstance(payload, dict):
        raise RequestError(Problem(loc=loc, message=f"a JSON {kind_of(payload)}, not an object",
                                   fix='{"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}'))
    columns, data = payload.get("columns"), payload.get("data")
    problems = []
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns) or not columns:
        problems.append(Problem(loc=f"{loc}.columns", value=columns, message="must be the list of column "
                                "names", fix='"columns": ["age", "city"]'))
    if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
        problems.append(Problem(loc=f"{loc}.data", message="must be a list of rows, each a list of values",
                                fix='"data": [[34.0, "a"], [22.0, "b"]]'))
    if problems:
        raise RequestError(problems)
    assert isinstance(columns, list) and isinstance(data, list)
    _check_row_lengths(data, len(columns), f"{loc}.data", "the columns")
    if not data:
        return {c: [] for c in columns}
    return dict(zip(columns, map(list, zip(*data, strict=True)), strict=True))


def _positional_batch(rows: list[list[Any]], key: str, features: Sequence[str] | None) -> Batch:
    if not features:
        raise RequestError(Problem(loc=key, message="rows given as plain lists need the model's feature "
                                   "order, which is unknown here", fix="send rows as objects: "
                                   '[{"column": value, ...}, ...]'))
    _check_row_lengths(rows, len(features), key, f"the model's {len(features)} features "
                                                  f"({', '.join(features)})")
    return dict(zip(features, map(list, zip(*rows, strict=True)), strict=True))


def _check_row_lengths(rows: list[list[Any]], width: int, loc: str, what: str) -> None:
    bad = [(r, len(row)) for r, row in enumerate(rows) if len(row) != width]
    if bad:
        raise RequestError(rows_problem(loc, bad, f"rows whose number of values differs from {what} "
                                         f"({width}); value counts", f"give every row {width} values"))


def _columns_batch(columns: dict[str, Any], loc: str) -> Batch:
    if columns and not any(isinstance(v, list) for v in columns.values()):
        return {k: [v] for k, v in columns.items()}  # one row given as {column: value}
    bad = [k for k, v in columns.items() if not isinstance(v, list)]
    if bad:
        raise RequestError(Problem(loc=f"{loc}.{bad[0]}", message="every column must be a list of values "
                                   f"(not: {', '.join(map(repr, bad))})", fix='{"age": [34.0, 22.0], ...}'))
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise RequestError(Problem(loc=loc, message="the columns have different lengths: "
                                   + ", ".join(f"{k} {n}" for k, n in lengths.items()),
                                   fix="send every column with one value per row"))
    return dict(columns)


def _parse_csv(body: bytes) -> Batch:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequestError(Problem(loc="body", message=f"not UTF-8 text: {exc}",
                                   fix="send the CSV encoded as UTF-8")) from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or not any(header):
        raise RequestError(Problem(loc="body", message="the CSV has no header row",
                                   fix="start the CSV with the column names: age,city"))
    rows = [row for row in reader if row]
    bad = [(r, len(row)) for r, row in enumerate(rows) if len(row) != len(header)]
    if bad:
        raise RequestError(rows_problem("body", bad, f"CSV rows (counted after the header) whose number "
                                         f"of fields differs from the header's {len(header)}; field counts",
                                         "quote values that hold commas, and give every row every field"))
    columns = [[v if v != "" else None for v in col] for col in zip(*rows, strict=True)] if rows \
        else [[] for _ in header]
    return dict(zip(header, columns, strict=True))


def _parse_parquet(body: bytes) -> Batch:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(pa.BufferReader(body)).to_pydict()
    except (pa.ArrowException, OSError) as exc:
        raise RequestError(Problem(loc="body", message=f"not a readable Parquet file: {exc}",
                                   fix="send the bytes of one Parquet file")) from exc


def encode_invocations_response(prediction: Prediction, classes: Sequence[Any] | None = None) -> bytes:
    """`{"predictions": [label, ...]}`, as `mlflow models serve` answers for a scikit-learn model;
    with `classes`, the probabilities as it answers the registered model's
    `params: {"predict_method": "predict_proba"}`: `[{class: p, ...}, ...]`."""
    if classes is None or prediction.proba is None:
        return orjson.dumps({"predictions": plain_list(prediction.labels)})
    keys = [label_text(c) or str(c) for c in classes]
    return orjson.dumps({"predictions": [dict(zip(keys, row, strict=True))
                                         for row in prediction.proba.tolist()]})


def predict_method(params: dict[str, Any] | None, classifier: bool) -> str:
    """The `predict_method` an `/invocations` body's params ask for ("predict" when none does).

    Raises `RequestError` (400) for a method the model does not offer (a regressor has no
    probabilities), with a did-you-mean.
    """
    method = (params or {}).get("predict_method") or "predict"
    offered = ("predict", "predict_proba") if classifier else ("predict",)
    if method not in offered:
        fix = " ".join(filter(None, [did_you_mean(str(method), offered),
                                     "use " + " or ".join(map(repr, offered))]))
        raise RequestError(Problem(loc="params.predict_method", value=method,
                                   message="is not a method of this model" + (
                                       "" if classifier else " (a regressor gives no probabilities)"),
                                   fix=fix))
    return method


def mlflow_error(exc: RequestError) -> tuple[bytes, str]:
    """The body and media type MLflow's scoring server answers `exc` with (415: plain text)."""
    if exc.status == 415:
        return exc.problems[0].message.encode("utf-8"), "text/plain"
    return mlflow_error_body(exc), "application/json"


def mlflow_error_body(exc: RequestError) -> bytes:
    """`{"error_code": ..., "message": ...}` as MLflow writes errors, plus the problems."""
    code = _MLFLOW_CODES.get(exc.status, "INTERNAL_ERROR" if exc.status >= 500 else "BAD_REQUEST")
    return orjson.dumps({"error_code": code, "message": exc.render(), "problems": problems_json(exc)})
