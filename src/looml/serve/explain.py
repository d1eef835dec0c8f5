"""`POST /explain` and `explain: true` on `/predict`: per-row contributions of the served model.

    explaining(loader) -> loader                 the holder's loader, attaching the model's explainer
    build_explainer(pipeline, features, scorer) -> (ServedExplainer | None, reason)
    explain_rows(model, batch) -> Contributions
    encode_explain_response(model, request_id, contributions) -> bytes

The explainer is `learn.explain`'s, built once when a model version is loaded (never per request).
The rows reach the model step through the compiled scorer's numpy preprocessing when the
server scores with it (checked at load against the pipeline's own on the validation rows), else
through the pipeline's preprocessing; LightGBM explains on one thread, as it scores.

```
{"request_id": "r1", "model_name": "churn", "model_version": "3", "output": ["log-odds of 'yes'"],
 "explanations": [{"row_id": "r1:0", "base": [-0.4], "contributions": [{"tenure": 0.9, "plan": -0.2}],
                   "total": [0.3]}]}
```
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from looml.errors import Problem, RequestError
from looml.learn.explain import Contributions, Explainer, NoExplanation, explainer_for
from looml.serve.scoring import Batch, batch_rows

__all__ = [
    "ServedExplainer",
    "build_explainer",
    "check_explainable",
    "encode_explain_response",
    "explain_rows",
    "explaining",
    "wants_explain",
    "with_explanations",
]


@dataclass
class ServedExplainer:
    """The served model's explainer and how a batch reaches its model step."""

    explainer: Explainer
    features: list[str]  # the pipeline's input columns
    encode: Callable[[Batch], np.ndarray] | None = None  # the compiled preprocessing, when it matches
    # Made once: `threadpool_limits(...)` looks up every loaded library per call (24 ms on a busy
    # machine); the controller's `limit` only sets the thread counts (0.3 ms).
    threads: Any = field(default_factory=lambda: _controller())

    def explain(self, batch: Batch) -> Contributions:
        """Contributions for every row of `batch` (raw values, as validated for scoring)."""
        with self.threads.limit(limits=1, user_api="openmp"):
            if self.encode is not None:
                return self.explainer.explain_encoded(self.encode(batch))
            import pandas as pd

            n = batch_rows(batch)
            frame = pd.DataFrame({c: batch[c] if c in batch else [None] * n for c in self.features})
            return self.explainer.explain(frame)


def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def build_explainer(pipeline: Any, features: dict[str, str], scorer: Any,
                    check: Batch | None = None) -> tuple[ServedExplainer | None, str | None]:
    """The served explainer of a loaded pipeline, or None and why the model has none."""
    try:
        explainer = explainer_for(pipeline, threads=1)
    except NoExplanation as exc:
        return None, str(exc)
    served = ServedExplainer(explainer, list(features))
    encode = _compiled_encoding(scorer, explainer)
    if encode is not None and check is not None and _same_rows(encode, explainer, features, check):
        served.encode = encode
    return served, None


def _compiled_encoding(scorer: Any, explainer: Explainer) -> Callable[[Batch], np.ndarray] | None:
    """The compiled scorer's preprocessing (coerce, branches, selection) as a function of a batch."""
    if explainer.kind == "voting" or not hasattr(scorer, "branches") or not hasattr(scorer, "reductions"):
        return None

    def encode(batch: Batch) -> np.ndarray:
        coerced = scorer.coerce(batch, batch_rows(batch))
        X = np.hstack([branch.transform(coerced) for branch in scorer.branches])
        for reduce in scorer.reductions:
            X = reduce(X)
        return np.ascontiguousarray(X, dtype=np.float64)

    return encode


def _same_rows(encode: Callable[[Batch], np.ndarray], explainer: Explainer, features: dict[str, str],
               batch: Batch) -> bool:
    import pandas as pd

    try:
        n = batch_rows(batch)
        frame = pd.DataFrame({c: batch[c] if c in batch else [None] * n for c in features})
        return bool(np.allclose(encode(batch), explainer.encode(frame), rtol=1e-9, atol=1e-9, equal_nan=True))
    except Exception:  # a row the compiled path cannot take: explain through the pipeline
        return False


def explaining(loader: Callable[[str, str, str | None], Any]) -> Callable[[str, str, str | None], Any]:
    """`loader` (tracking URI, name, version -> ServedModel), with the loaded model's explainer built
    and attached (`explainer`, `explain_reason`): the holder loads through it at start and at every
    swap, so no request builds one."""

    def load(tracking_uri: str, name: str, version: str | None) -> Any:
        from looml.serve.compiled.checks import validation_batches

        model = loader(tracking_uri, name, version)
        check = next(iter(validation_batches(model.features, model.schema, model.profile)), None)
        model.explainer, model.explain_reason = build_explainer(model.pipeline, model.features, model.scorer,
                                                                check[1] if check else None)
        return model

    return load


def explain_rows(model: Any, batch: Batch) -> Contributions:
    """The served model's contributions for `batch`; a 422 naming why when the model has none."""
    check_explainable(model)
    return model.explainer.explain(batch)


def check_explainable(model: Any) -> None:
    """A 422 naming why, when the served model has no per-row explanations."""
    if getattr(model, "explainer", None) is None:
        raise RequestError(Problem(loc="model", value=f"{model.name} version {model.version}",
                                   message="this model has no per-row explanations: "
                                           f"{getattr(model, 'explain_reason', None) or 'none were built'}",
                                   fix="serve a tree model (lightgbm, xgboost, random_forest, ...) or a "
                                       "linear one, or read the explanations logged with the version "
                                       "(explain/explanations.json)"), status=422)


def wants_explain(body: bytes) -> tuple[bytes, bool]:
    """Whether a `/predict` body asks for explanations (`"explain": true` beside `records`)."""
    if b'"explain"' not in body:
        return body, False
    doc = orjson.loads(body)
    if not isinstance(doc, dict) or "explain" not in doc:
        return body, False
    flag = doc.pop("explain")
    if not isinstance(flag, bool):
        raise RequestError(Problem(loc="explain", value=flag, message="expected true or false",
                                   fix='send "explain": true to get each row\'s contributions'))
    return orjson.dumps(doc), flag


def explanation_rows(contributions: Contributions, request_id: str) -> list[dict[str, Any]]:
    """Per row: its id, the base value(s), each column's contribution per output, and their total."""
    from looml.store.predictions import row_id

    columns = contributions.columns
    base = contributions.base.tolist()
    totals = contributions.totals().tolist()
    rows = []
    for i, values in enumerate(contributions.values.tolist()):
        rows.append({"row_id": row_id(request_id, i), "base": base,
                     "contributions": [dict(zip(columns, per_output, strict=True)) for per_output in values],
                     "total": totals[i]})
    return rows


def with_explanations(body: bytes, contributions: Contributions, request_id: str) -> bytes:
    """A `/predict` answer with each prediction's `explanation` (as `/explain` gives it) and the `output`."""
    doc = orjson.loads(body)
    for row, explained in zip(doc["predictions"], explanation_rows(contributions, request_id), strict=True):
        row["explanation"] = {k: v for k, v in explained.items() if k != "row_id"}
    doc["output"] = contributions.outputs
    return orjson.dumps(doc)


def encode_explain_response(model: Any, request_id: str, contributions: Contributions) -> bytes:
    """The `/explain` answer (see the module docstring)."""
    return orjson.dumps({"request_id": request_id, "model_name": model.name, "model_version": model.version,
                         "output": contributions.outputs,
                         "explanations": explanation_rows(contributions, request_id)})


def explain_schemas() -> dict[str, Any]:
    """The OpenAPI schemas of `/explain` (merged into the document's by `serve.app`)."""
    per_column = {"type": "object", "additionalProperties": {"type": "number"},
                  "description": "each of the model's input columns and its contribution"}
    numbers = {"type": "array", "items": {"type": "number"}, "description": "one per output"}
    row = {"type": "object", "required": ["row_id", "base", "contributions", "total"], "properties": {
        "row_id": {"type": "string"}, "base": numbers,
        "contributions": {"type": "array", "items": per_column, "description": "one per output"},
        "total": {**numbers, "description": "base + contributions: the model's raw output, one per output"}}}
    return {
        "ExplainRequest": {"type": "object", "required": ["records"], "properties": {
            "records": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Record"}}}},
        "ExplainResponse": {"type": "object", "required": [
            "request_id", "model_name", "model_version", "output", "explanations"], "properties": {
            "request_id": {"type": "string"}, "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "output": {"type": "array", "items": {"type": "string"},
                       "description": "what each output is: value, log-odds or probability of a class"},
            "explanations": {"type": "array", "items": row}}},
    }
