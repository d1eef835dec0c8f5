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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from looml.data.schema import Schema

__all__ = ["Batch", "PipelineScorer", "Prediction", "Scorer", "ServedModel", "batch_rows", "load_model"]

Batch = dict[str, Sequence[Any] | np.ndarray]


def batch_rows(batch: Batch) -> int:
    """The number of rows in a batch (0 for no columns)."""
    return len(next(iter(batch.values()))) if batch else 0


@dataclass(frozen=True)
class Prediction:
    """What a scorer returns for n rows."""

    labels: np.ndarray  # (n,) predicted class labels, or regression values
    proba: np.ndarray | None = None  # (n, k) class probabilities, columns in `classes` order


class Scorer(Protocol):
    """Anything that scores a batch of raw rows."""

    name: str

    def predict(self, batch: Batch) -> Prediction:
        """Score every row of `batch`."""
        ...


@dataclass
class PipelineScorer:
    """The fitted scikit-learn pipeline itself, through a pandas DataFrame (the reference path)."""

    pipeline: Any
    features: dict[str, str]
    name: str = "pipeline"

    def predict(self, batch: Batch) -> Prediction:
        """Score through `pipeline.predict` / `predict_proba`."""
        import pandas as pd

        n = batch_rows(batch)
        frame = pd.DataFrame({c: batch[c] if c in batch else [None] * n for c in self.features})
        if hasattr(self.pipeline, "predict_proba"):
            proba = self.pipeline.predict_proba(frame)
            classes = self.pipeline.classes_
            return Prediction(labels=classes[np.argmax(proba, axis=1)], proba=proba)
        return Prediction(labels=np.asarray(self.pipeline.predict(frame), dtype=np.float64))


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
    loaded_at: float = field(default_factory=time.time)

    def predict(self, batch: Batch) -> Prediction:
        """Score every row of `batch` with the chosen scorer."""
        return self.scorer.predict(batch)


def load_model(tracking_uri: str, name: str, version: str | None = None) -> ServedModel:
    """Load a registered version (default: the champion) with its schema and reference profile.

    Raises `RegistryError` naming the model when there is no such version or no champion.
    """
    import yaml

    from looml.serve.fastpath import compile_scorer
    from looml.store.tracking import PROFILE_ARTIFACT, SCHEMA_ARTIFACT, load_pipeline, model_documents

    found, documents = model_documents(tracking_uri, name, version)
    pipeline, run_id = load_pipeline(tracking_uri, name, found)
    coercer = pipeline.steps[0][1]
    features = dict(coercer.columns_)
    classes = [_plain(c) for c in pipeline.classes_] if hasattr(pipeline, "classes_") else None
    schema = Schema.model_validate(yaml.safe_load(documents[SCHEMA_ARTIFACT])) \
        if SCHEMA_ARTIFACT in documents else None
    profile = json.loads(documents[PROFILE_ARTIFACT]) if PROFILE_ARTIFACT in documents else None
    reference = PipelineScorer(pipeline, features)
    scorer = compile_scorer(pipeline, features, schema, profile, reference) or reference
    return ServedModel(name=name, version=found, run_id=run_id,
                       task="classification" if classes is not None else "regression",
                       features=features, classes=classes, pipeline=pipeline, scorer=scorer,
                       schema=schema, profile=profile)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can carry."""
    return value.item() if isinstance(value, np.generic) else value
