"""The OpenAPI document's request and response schemas; a record names the served model's columns.

The endpoints read their bodies themselves (one parser per protocol, every problem reported at
once), so these schemas document the formats rather than validate them.
"""

from __future__ import annotations

from typing import Any

from looml.serve import protocols
from looml.serve.model import ServedModel

__all__ = ["answers", "raw_body", "schemas"]

_JSON = "application/json"


def raw_body(name: str) -> dict[str, Any]:
    """OpenAPI text for an endpoint that reads its body itself (the schema, from `_schemas`, is a guide)."""
    return {"requestBody": {"required": True, "content": {_JSON: {"schema": _ref(name)}}}}


def answers(ok: str, error: str) -> dict[int | str, Any]:
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


def schemas(model: ServedModel | None) -> dict[str, Any]:
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
    feedback = _object([], extra=False, row_id={**_STR, "minLength": 1},
                       request_id={**_STR, "minLength": 1}, row=_INT,
                       label={"type": ["string", "number", "boolean"]}, retract={"type": "boolean"},
                       timestamp={"anyOf": [{**_STR, "format": "date-time"}, {"type": "number"}]})
    feedback["allOf"] = [{"anyOf": [{"required": ["row_id"]}, {"required": ["request_id"]}]},
                         {"anyOf": [{"required": ["label"]}, {"required": ["retract"]}]}]
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
            threshold={"type": ["number", "null"], "description": "binary: the label is positive_class "
                       "where its probability is at least this (null: the most probable class)"},
            positive_class=_STR,
            predictions={"type": "array", "items": _object(
                ["row_id", "prediction"], row_id={**_STR, "description": "the row's id: what /feedback "
                                                  "takes as row_id"}, prediction={},
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
                                 outputs={"type": "array", "items": tensor},
                                 parameters=_object([], scorer=_STR, scorer_fallback=_STR)),
        "ServerMetadata": _object(["name", "version", "extensions"], name=_STR, version=_STR,
                                  extensions={"type": "array", "items": _STR}),
        "FeedbackRequest": {"anyOf": [_ref("FeedbackRecord"),
                                      {"type": "array", "minItems": 1, "items": _ref("FeedbackRecord")}]},
        "FeedbackRecord": feedback,
        "FeedbackResponse": _object(["stored"], stored=_INT),
    }
