"""Wire formats: request bodies in, one `Batch` out; predictions in, response bodies out.

    Open Inference Protocol v2 (KServe, Triton, MLServer)   /v2/models/{name}/infer
        parse_infer_request(body, header_length) -> InferRequest
        select_outputs(request, available) -> [output name]
        encode_infer_response(...) -> (body, headers);  model_metadata(model);  server_metadata()
    looml's own                                             /predict
        parse_records(body) -> Batch;  encode_predict_response(model, request_id, prediction)

Every body is parsed as JSON whatever its Content-Type says (the sync tritonclient sends
none). A malformed body raises
`RequestError` (400; 413 too large; 415 media type) listing every problem found in it.
Rows are counted from 0, in request order. Numeric OIP inputs become numpy arrays of their
declared type; every other column is the list of JSON values the client sent.
The exact contracts, checked against the real clients: shared/reference/protocols.md 1.
The MLflow scoring format is in `looml.serve.mlflow_scoring`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import orjson

from looml.errors import Problem, RequestError, did_you_mean
from looml.serve.model import Batch, Prediction, ServedModel
from looml.serve.wire import (
    kind_of,
    load_json,
    number_like,
    parameters_of,
    plain_list,
    problems_json,
    records_batch,
    rows_problem,
)
from looml.store.predictions import row_id

__all__ = [
    "DATATYPES", "PREDICT", "PREDICT_PROBA", "InferRequest", "available_outputs",
    "encode_infer_response", "encode_predict_response", "infer_error_body", "model_metadata",
    "parse_infer_request", "parse_records",
    "predict_error_body", "prediction_outputs", "select_outputs", "server_metadata",
]

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"
BINARY_HEADER = "Inference-Header-Content-Length"
_LENGTH = struct.Struct("<I")  # the length before each element of a binary BYTES tensor

# Little-endian, as the binary tensor data extension sends them; BYTES are length-prefixed.
_DTYPES: dict[str, str | None] = {
    "BOOL": "u1", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8", "BYTES": None,
}
DATATYPES = tuple(_DTYPES)  # the OIP datatypes looml reads
_WIRE = {name: np.dtype(code) for name, code in _DTYPES.items() if code}
_NATIVE = {name: dtype.newbyteorder("=") for name, dtype in _WIRE.items()}
_FLOAT = np.dtype(np.float64)
_INPUT_TYPES = {"numeric": "FP64", "categorical": "BYTES", "datetime": "BYTES"}


@dataclass(frozen=True)
class InferRequest:
    """An Open Inference Protocol request, its inputs gathered into one batch."""

    id: str | None
    parameters: dict[str, Any]
    inputs: Batch  # input name (= column) -> values
    outputs: tuple[str, ...] | None  # the requested outputs, in order; None: every output
    binary_outputs: frozenset[str]  # the outputs to send as binary tensor data


# ---------------------------------------------------------------------------------------------
# Open Inference Protocol v2


def parse_infer_request(body: bytes, header_length: int | str | None = None) -> InferRequest:
    """Parse an inference request: one input per column, JSON data or binary tensor data.

    With `header_length` (the Inference-Header-Content-Length header, as int or text), the
    JSON object is the first `header_length` bytes and every input with
    `parameters.binary_data_size` takes its bytes from the rest, in order. Shapes are [n] or
    [n, 1]. Raises `RequestError` (400) listing every malformed input.
    """
    head_end = _header_end(body, header_length)
    doc = load_json(body[:head_end] if head_end < len(body) else body, "the request")
    if not isinstance(doc, dict):
        raise RequestError(Problem(loc="body", message=f"a JSON {kind_of(doc)}, not an object",
                                   fix='send {"inputs": [{"name": ..., "shape": [n], "datatype": ..., '
                                       '"data": [...]}, ...]}'))
    problems: list[Problem] = []
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        if isinstance(request_id, int) and not isinstance(request_id, bool):
            request_id = str(request_id)
        else:
            problems.append(Problem(loc="id", message="must be a string", value=request_id,
                                    fix="send the request id as a JSON string"))
            request_id = None
    parameters = parameters_of(doc.get("parameters"), "parameters", problems)
    binary_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        problems.append(Problem(loc="parameters.binary_data_output", message="must be true or false",
                                value=binary_output))
        binary_output = False
    batch = _parse_inputs(doc.get("inputs"), body, head_end, problems)
    outputs = _parse_outputs(doc.get("outputs"), binary_output, problems)
    if problems:
        raise RequestError(problems)
    names = None if outputs is None else tuple(dict.fromkeys(outputs))
    binary = frozenset(n for n, b in outputs.items() if b) if outputs is not None \
        else frozenset((PREDICT, PREDICT_PROBA) if binary_output else ())
    return InferRequest(id=request_id, parameters=parameters, inputs=batch, outputs=names,
                        binary_outputs=binary)


def _header_end(body: bytes, header_length: int | str | None) -> int:
    if header_length is None:
        return len(body)
    try:
        end = int(header_length)
    except (TypeError, ValueError):
        end = -1
    if not 0 < end <= len(body):
        raise RequestError(Problem(
            loc=f"headers.{BINARY_HEADER}", value=header_length,
            message=f"must be the length in bytes of the JSON part, from 1 to the body's {len(body)} bytes",
            fix="send the byte length of the JSON object, or leave the header out for a JSON-only body"))
    return end


def _parse_inputs(inputs: Any, body: bytes, head_end: int, problems: list[Problem]) -> Batch:
    if not isinstance(inputs, list) or not inputs:
        problems.append(Problem(loc="inputs", message="missing or empty: the request needs one input per "
                                "feature column", value=None if inputs is None else inputs,
                                fix='send "inputs": [{"name": "<column>", "shape": [n], "datatype": '
                                    '"FP64", "data": [...]}, ...]'))
        return {}
    batch: Batch = {}
    rows: dict[str, int] = {}
    offset = head_end  # where the next input's binary data starts
    for i, spec in enumerate(inputs):
        # Locations are written only when something is wrong: this loop runs for every column.
        if type(spec) is not dict:
            problems.append(Problem(loc=f"inputs[{i}]",
                                    message=f"a JSON {kind_of(spec)}, not an input object",
                                    fix='{"name": ..., "shape": [n], "datatype": ..., "data": [...]}'))
            continue
        name = spec.get("name")
        params = spec.get("parameters")
        if params is None:
            params = {}
        elif type(params) is not dict:
            problems.append(Problem(loc=f"{_at(i, name)}.parameters", value=params,
                                    message="must be a JSON object"))
            params = {}
        size = params.get("binary_data_size") if params else None
        if size is not None and (type(size) is not int or size < 0):
            problems.append(Problem(loc=f"{_at(i, name)}.parameters.binary_data_size", value=size,
                                    message="must be a whole number of bytes"))
            size = None
        start = offset
        if size is not None:
            offset += size
        found = len(problems)
        if type(name) is not str or not name:
            problems.append(Problem(loc=f"{_at(i, name)}.name", value=name, message="missing: each input is "
                                    "named after the feature column it holds", fix='add "name": "<column>"'))
        elif name in batch:
            problems.append(Problem(loc=f"{_at(i, name)}.name", value=name,
                                    message="a second input with this name", fix="send each column once"))
        datatype = spec.get("datatype")
        if type(datatype) is not str or datatype not in _DTYPES:
            problems.append(Problem(loc=f"{_at(i, name)}.datatype", value=datatype, message="not a datatype "
                                    f"looml reads; one of {', '.join(_DTYPES)}",
                                    fix="FP64 for numbers, BYTES for strings"))
        shape = spec.get("shape")
        n = _rows_of_shape(shape)
        if n is None:
            problems.append(Problem(loc=f"{_at(i, name)}.shape", value=shape, message="looml takes one input "
                                    "per column, with shape [n] or [n, 1] for n rows",
                                    fix="send each feature column as its own input, named after the column "
                                        "(a DataFrame is one input per column)"))
        if len(params) > (size is not None) and any(key.startswith("shared_memory") for key in params):
            problems.append(Problem(loc=f"{_at(i, name)}.parameters",
                                    message="shared memory is not supported",
                                    fix="send the data in the body, as JSON or binary"))
        if size is None:
            if "data" not in spec:
                problems.append(Problem(loc=f"{_at(i, name)}.data", message="missing",
                                        fix='add "data": [...], or binary data with '
                                            "parameters.binary_data_size"))
        elif "data" in spec:
            problems.append(Problem(loc=_at(i, name),
                                    message='has both "data" and parameters.binary_data_size',
                                    fix="send the values one way: JSON data, or binary data"))
        elif head_end == len(body):
            problems.append(Problem(loc=f"{_at(i, name)}.parameters.binary_data_size", value=size,
                                    message=f"binary data, but the request has no {BINARY_HEADER} header",
                                    fix=f"send {BINARY_HEADER}: <bytes of the JSON part>"))
        elif offset > len(body):
            problems.append(Problem(loc=f"{_at(i, name)}.parameters.binary_data_size", value=size,
                                    message=f"reaches byte {offset - head_end} of the binary part, which "
                                            f"holds {len(body) - head_end}",
                                    fix="give each input's true binary size, in input order"))
        if len(problems) > found:
            continue
        if size is not None:
            values = _binary_values(body, start, size, datatype, n, i, name, problems)  # type: ignore[arg-type]
        else:
            values = _json_values(spec["data"], datatype, n, i, name, problems)  # type: ignore[arg-type]
        if values is not None:
            batch[name] = values  # type: ignore[index]
            rows[name] = n  # type: ignore[index,assignment]
    if offset < len(body) and head_end < len(body) and not problems:
        problems.append(Problem(loc="body", message=f"{len(body) - offset} bytes after the last input's "
                                "binary data", fix="give each input's true parameters.binary_data_size"))
    if len(set(rows.values())) > 1:
        problems.append(Problem(loc="inputs", message="the inputs have different numbers of rows: "
                                + ", ".join(f"{k} {v}" for k, v in rows.items()),
                                fix="send every column with the same number of rows"))
    return batch


def _at(i: int, name: Any) -> str:
    """The location of input `i` in messages: its index, and its name when it has one."""
    return f"inputs[{i}] ({name!r})" if isinstance(name, str) else f"inputs[{i}]"


def _rows_of_shape(shape: Any) -> int | None:
    """n for a shape [n] or [n, 1]; None for any other."""
    if type(shape) is not list or not 1 <= len(shape) <= 2 or (len(shape) == 2 and shape[1] != 1):
        return None
    n = shape[0]
    return n if type(n) is int and n >= 0 else None


def _json_values(data: Any, datatype: str, n: int, i: int, name: str, problems: list[Problem]) -> Any:
    if type(data) is not list:
        problems.append(Problem(loc=f"{_at(i, name)}.data", value=data, message="must be a list of values"))
        return None
    if data and type(data[0]) is list:  # nested by row: [[1], [2]]
        if set(map(type, data)) != {list} or set(map(len, data)) != {1}:
            problems.append(Problem(loc=f"{_at(i, name)}.data",
                                    message="nested lists must hold one value per row",
                                    fix="send a flat list, row by row"))
            return None
        data = list(chain.from_iterable(data))
    if len(data) != n:
        problems.append(Problem(loc=f"{_at(i, name)}.data",
                                message=f"{len(data)} values, but the shape says {n} rows",
                                fix="make the shape's first dimension the number of values"))
        return None
    if datatype == "BYTES":
        kinds = set(map(type, data))
        if list in kinds or dict in kinds:
            bad = [(r, v) for r, v in enumerate(data) if type(v) is list or type(v) is dict]
            problems.append(rows_problem(f"{_at(i, name)}.data", bad, "holds lists or objects, not single "
                                          "values", "send one string per row"))
            return None
        return data
    if datatype == "BOOL":
        bad = [(r, v) for r, v in enumerate(data) if not (v is None or isinstance(v, bool))]
        if bad:
            problems.append(rows_problem(f"{_at(i, name)}.data", bad, "BOOL data must be true or false",
                                          "send true / false, or declare another datatype"))
            return None
        return data if None in data else np.asarray(data, dtype=np.bool_)
    dtype = _NATIVE[datatype]
    if dtype.kind == "f":
        try:
            return np.asarray(data, dtype=dtype)  # null (missing) becomes NaN
        except (TypeError, ValueError, OverflowError):
            pass
    else:
        try:
            array = np.asarray(data)
        except ValueError:  # a list somewhere among the values
            array = np.asarray(data, dtype=object)
        # Integer data with fractions or nulls (null: missing) stays float: never truncated.
        for target in ((dtype, _FLOAT) if array.dtype.kind in "iub" else (_FLOAT,)):
            try:
                return array.astype(target)
            except (TypeError, ValueError, OverflowError):
                continue
    bad = [(r, v) for r, v in enumerate(data) if not number_like(v)]
    problems.append(rows_problem(f"{_at(i, name)}.data", bad, f"not numbers, and the datatype is {datatype}",
                                  "send numbers, or declare the input BYTES"))
    return None


def _binary_values(body: bytes, start: int, size: int, datatype: str, n: int, i: int, name: str,
                   problems: list[Problem]) -> Any:
    if datatype == "BYTES":
        values: list[Any] = []
        pos, end = start, start + size
        try:
            while pos < end:
                (length,) = _LENGTH.unpack_from(body, pos)
                if pos + 4 + length > end:
                    raise ValueError("an element runs past the input's binary_data_size")
                values.append(body[pos + 4:pos + 4 + length].decode("utf-8"))
                pos += 4 + length
        except (struct.error, ValueError) as exc:
            reason = "an element is not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
            problems.append(Problem(loc=f"{_at(i, name)}.binary data",
                                    message=f"unreadable BYTES tensor: {reason}",
                                    fix="send each element as a 4-byte little-endian length and its "
                                        "UTF-8 bytes"))
            return None
        if len(values) != n:
            problems.append(Problem(loc=f"{_at(i, name)}.binary data",
                                    message=f"{len(values)} elements, but the shape says {n} rows",
                                    fix="make the shape match the data"))
            return None
        return values
    dtype = _WIRE[datatype]
    if size != n * dtype.itemsize:
        problems.append(Problem(loc=f"{_at(i, name)}.parameters.binary_data_size", value=size,
                                message=f"{n} rows of {datatype} take {n * dtype.itemsize} bytes",
                                fix="make binary_data_size rows x the datatype's size"))
        return None
    array = np.frombuffer(body, dtype=dtype, count=n, offset=start)
    # A copy in native byte order: writable, and the request body can be freed.
    return array != 0 if datatype == "BOOL" else array.astype(_NATIVE[datatype])


def _parse_outputs(outputs: Any, binary_output: bool, problems: list[Problem]) -> dict[str, bool] | None:
    """Requested output -> binary?; an output's own binary_data wins over binary_data_output."""
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        problems.append(Problem(loc="outputs", value=outputs, message="must be a list of {\"name\": ...}",
                                fix="leave it out to get every output"))
        return None
    found: dict[str, bool] = {}
    for i, spec in enumerate(outputs):
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str):
            problems.append(Problem(loc=f"outputs[{i}].name", value=name, message="missing",
                                    fix=f'name an output: "{PREDICT}" or "{PREDICT_PROBA}"'))
            continue
        params = parameters_of(spec.get("parameters"), f"outputs[{i}].parameters", problems)
        binary = params.get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            problems.append(Problem(loc=f"outputs[{i}].parameters.binary_data", value=binary,
                                    message="must be true or false"))
            binary = None
        found.setdefault(name, binary_output if binary is None else binary)
    return found


def available_outputs(model: ServedModel) -> list[str]:
    """The outputs `model` offers: `predict`, and `predict_proba` for a classifier."""
    return [PREDICT, PREDICT_PROBA] if model.classes is not None else [PREDICT]


def select_outputs(request: InferRequest, available: Sequence[str]) -> list[str]:
    """The outputs to answer with, in order: the requested ones, or every available one.

    Raises `RequestError` (400) naming every unknown output and the available ones.
    """
    if request.outputs is None:
        return list(available)
    unknown = [Problem(loc="outputs", value=name, message="not an output of this model",
                       fix=" ".join(filter(None, [did_you_mean(name, available),
                                                  f"available: {', '.join(available)}"])))
               for name in request.outputs if name not in available]
    if unknown:
        raise RequestError(unknown)
    return list(request.outputs)


def prediction_outputs(prediction: Prediction) -> dict[str, np.ndarray]:
    """The OIP outputs of a prediction: `predict` (labels) and `predict_proba` when present."""
    outputs = {PREDICT: prediction.labels}
    if prediction.proba is not None:
        outputs[PREDICT_PROBA] = prediction.proba
    return outputs


def encode_infer_response(model_name: str, model_version: str | None, request_id: str | None,
                          outputs: dict[str, np.ndarray], binary: set[str] | frozenset[str],
                          parameters: dict[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers; outputs named in `binary` go as binary tensor data.

    `predict` is [n] (BYTES for string labels, INT64, FP64 or BOOL), `predict_proba` [n, k]
    FP64. With any binary output the headers carry Inference-Header-Content-Length.
    """
    tensors = []
    chunks: list[bytes] = []
    for name, array in outputs.items():
        datatype, array = _wire_array(array)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if name in binary:
            raw = _bytes_tensor(array) if datatype == "BYTES" else array.astype(
                _DTYPES[datatype] if datatype != "BOOL" else np.uint8).tobytes()
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif datatype == "BYTES":
            tensor["data"] = [v if isinstance(v, str) else str(v) for v in array.ravel().tolist()]
        else:
            tensor["data"] = array.ravel()
        tensors.append(tensor)
    doc: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        doc["model_version"] = model_version
    if request_id is not None:
        doc["id"] = request_id
    if parameters:
        doc["parameters"] = parameters
    doc["outputs"] = tensors
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return head, {"Content-Type": "application/json"}
    return b"".join([head, *chunks]), {"Content-Type": "application/octet-stream",
                                       BINARY_HEADER: str(len(head))}


def _wire_array(array: Any) -> tuple[str, np.ndarray]:
    """The array in the datatype the model metadata announces, whatever the scorer returned."""
    array = np.asarray(array)
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL", array
    if kind == "i":
        return "INT64", array.astype(np.int64, copy=False)
    if kind == "u":
        return "UINT64", array.astype(np.uint64, copy=False)
    if kind == "f":
        return "FP64", array.astype(np.float64, copy=False)
    return "BYTES", array


def _bytes_tensor(array: np.ndarray) -> bytes:
    parts = []
    for value in array.ravel().tolist():
        raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts += [_LENGTH.pack(len(raw)), raw]
    return b"".join(parts)


def model_metadata(model: ServedModel) -> dict[str, Any]:
    """The model metadata object: one input per feature column, the outputs with their shapes."""
    inputs = []
    for name, kind in model.features.items():
        tensor: dict[str, Any] = {"name": name, "datatype": _INPUT_TYPES.get(kind, "BYTES"), "shape": [-1, 1]}
        if tensor["datatype"] == "BYTES":
            tensor["parameters"] = {"content_type": "str"}  # MLServer's codec hint for strings
        inputs.append(tensor)
    outputs = [{"name": PREDICT, "datatype": _label_datatype(model), "shape": [-1]}]
    if model.classes is not None:
        # column j of predict_proba is the probability of classes[j]; a parameter value must be a
        # scalar, so the labels go as JSON text, each as the predict output writes it
        outputs.append({"name": PREDICT_PROBA, "datatype": "FP64", "shape": [-1, len(model.classes)],
                        "parameters": {"classes": _classes_json(model.classes)}})
    # server-specific parameters (the spec allows them): which scorer runs, and why not the compiled one
    parameters: dict[str, Any] = {"scorer": model.scorer.name}
    if model.fallback is not None:
        parameters["scorer_fallback"] = model.fallback
    if model.decision is not None:  # the labels are cut at this threshold, on calibrated probabilities
        if model.threshold is not None:
            parameters["threshold"] = model.threshold
            parameters["positive_class"] = _class_key(model.decision["positive_class"])
        parameters["calibration"] = model.decision["calibration"]
    return {"name": model.name, "versions": [model.version], "platform": "looml-sklearn",
            "inputs": inputs, "outputs": outputs, "parameters": parameters}


def _classes_json(classes: Sequence[Any]) -> str:
    """The class labels as a JSON array, typed as the `predict` output sends labels."""
    datatype, array = _wire_array(np.asarray(classes))
    values = array.tolist()
    return orjson.dumps([v if isinstance(v, str) else str(v) for v in values] if datatype == "BYTES"
                        else values).decode()


def _label_datatype(model: ServedModel) -> str:
    if model.classes is None:
        return "FP64"
    return _wire_array(np.asarray(model.classes))[0]


def server_metadata() -> dict[str, Any]:
    """The server metadata object."""
    from looml.version import __version__

    return {"name": "looml", "version": __version__, "extensions": ["binary_tensor_data"]}


def infer_error_body(exc: RequestError) -> bytes:
    """The OIP error body, `{"error": message}` (what tritonclient shows), plus the problems."""
    return orjson.dumps({"error": exc.render(), "problems": problems_json(exc)})


# ---------------------------------------------------------------------------------------------
# looml's /predict


def parse_records(body: bytes) -> Batch:
    """Parse `{"records": [{column: value, ...}, ...]}` (canonical) or a bare list of records.

    A column missing from some records is None (missing) in those rows.
    """
    doc = load_json(body, "the request")
    if isinstance(doc, dict):
        if "records" not in doc:
            raise RequestError(Problem(loc="body", message=f"no 'records' key (got keys: {list(doc)})",
                                       fix='send {"records": [{"column": value, ...}, ...]}'))
        doc = doc["records"]
    if isinstance(doc, list) and not doc:
        raise RequestError(Problem(loc="records", message="no records: the list is empty",
                                   fix='send at least one record: {"records": [{"column": value, ...}]}'))
    return records_batch(doc, "records")


def encode_predict_response(model: ServedModel, request_id: str, prediction: Prediction,
                            warnings: Sequence[str] = ()) -> bytes:
    """The `/predict` answer: per row its `row_id` (what `/feedback` takes), prediction and
    (classifiers) class probabilities; for two classes the decision threshold (null: the most
    probable class) and, with a threshold, the positive class it applies to.

    ```
    {"request_id": "r1", "model_name": "churn", "model_version": "3", "threshold": 0.31,
     "positive_class": "yes", "warnings": [],
     "predictions": [{"row_id": "r1:0", "prediction": "yes", "probabilities": {"no": 0.2, "yes": 0.8}}]}
    ```
    """
    labels = plain_list(prediction.labels)
    rows: list[dict[str, Any]] = [{"row_id": row_id(request_id, i), "prediction": label}
                                  for i, label in enumerate(labels)]
    if prediction.proba is not None and model.classes is not None:
        keys = [_class_key(c) for c in model.classes]
        for row, probs in zip(rows, prediction.proba.tolist(), strict=True):
            row["probabilities"] = dict(zip(keys, probs, strict=True))
    decision: dict[str, Any] = {}
    if model.classes is not None and len(model.classes) == 2:  # the label is proba[positive] >= threshold
        decision["threshold"] = model.threshold
        if model.threshold is not None and model.decision:
            decision["positive_class"] = _class_key(model.decision["positive_class"])
    return orjson.dumps({"request_id": request_id, "model_name": model.name,
                         "model_version": model.version, **decision, "warnings": list(warnings),
                         "predictions": rows})


def predict_error_body(exc: RequestError) -> bytes:
    """looml's error body (`/predict`, `/feedback`): the message, the error code and the problems."""
    return orjson.dumps({"error": exc.render(), "code": exc.code, "problems": problems_json(exc)})


def _class_key(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)
