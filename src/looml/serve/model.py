"""The model being served: a registered pipeline, its schema, and the scorer that runs it.

    load_model(tracking_uri, name, version=None) -> ServedModel   (default: the champion)

A request arrives as a `Batch`: column name -> the column's raw values, as the client sent
them (numbers, strings, None). Every protocol parses into this one shape, request validation
checks it against the schema, and `ServedModel.predict(batch)` scores it. The scorer is the
compiled fast path when it reproduces the pipeline's predictions, else the pipeline itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from looml.data.schema import Schema
from looml.serve.scoring import Batch, PipelineScorer, Prediction, Scorer, batch_rows

__all__ = ["Batch", "PipelineScorer", "Prediction", "Scorer", "ServedModel", "batch_rows", "load_model"]

@dataclass
class ServedModel:
    """One registered model version, loaded and ready to score."""

    name: str
    version: str
    run_id: str
    task: str  # classification | regression
    features: dict[str, str]  # column -> numeric | categorical | datetime, in training order
    classes: list[Any] | None
    pipeline: Any
    scorer: Scorer
    schema: Schema | None = None
    profile: dict[str, Any] | None = None
    fallback: str | None = None  # why the pipeline scores, when the compiled scorer is not used
    decision: dict[str, Any] | None = None  # calibration and threshold (see `looml.learn.decision`)
    loaded_at: float = field(default_factory=time.time)

    def predict(self, batch: Batch) -> Prediction:
        """Score every row of `batch` with the chosen scorer."""
        return self.scorer.predict(batch)

    @property
    def threshold(self) -> float | None:
        """The chosen decision threshold of a binary classifier (None: the most probable class)."""
        return self.decision["threshold"] if self.decision else None


def load_model(tracking_uri: str, name: str, version: str | None = None) -> ServedModel:
    """Load a registered version (default: the champion) with its schema and reference profile.

    Raises `RegistryError` naming the model when there is no such version or no champion.
    """
    import yaml

    from looml.learn.decision import decision_of
    from looml.serve.compiled import compile_or_reason
    from looml.store.versions import PROFILE_ARTIFACT, SCHEMA_ARTIFACT, load_pipeline, model_documents

    found, documents = model_documents(tracking_uri, name, version)
    pipeline, run_id = load_pipeline(tracking_uri, name, found)
    coercer = pipeline.steps[0][1]
    features = dict(coercer.columns_)
    classes = [_plain(c) for c in pipeline.classes_] if hasattr(pipeline, "classes_") else None
    schema = Schema.model_validate(yaml.safe_load(documents[SCHEMA_ARTIFACT])) \
        if SCHEMA_ARTIFACT in documents else None
    profile = json.loads(documents[PROFILE_ARTIFACT]) if PROFILE_ARTIFACT in documents else None
    reference = PipelineScorer(pipeline, features)
    compiled, fallback = compile_or_reason(pipeline, features, schema, profile, reference,
                                           identity=f"{tracking_uri} {name} {found} {run_id}")
    return ServedModel(name=name, version=found, run_id=run_id,
                       task="classification" if classes is not None else "regression",
                       features=features, classes=classes, pipeline=pipeline, scorer=compiled or reference,
                       schema=schema, profile=profile, fallback=fallback, decision=decision_of(pipeline))


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can carry."""
    return value.item() if isinstance(value, np.generic) else value
