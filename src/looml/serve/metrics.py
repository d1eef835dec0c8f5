"""Prometheus metrics of the server, on a registry of its own (so tests can build many apps).

With several uvicorn workers, `looml serve` sets `PROMETHEUS_MULTIPROC_DIR` before they start
and /metrics aggregates every worker's values.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from looml.serve.model import Prediction, ServedModel

__all__ = ["ServerMetrics"]

_LATENCY = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 10_000, 100_000)


class ServerMetrics:
    """Requests by endpoint and status, latency, rows, batch sizes, model version, predictions."""

    def __init__(self, prediction_log: Any = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("looml_requests", "Requests by endpoint and HTTP status.",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("looml_request_duration_seconds", "Request latency by endpoint.",
                                 ["endpoint"], buckets=_LATENCY, registry=r)
        self.rows = Counter("looml_rows_predicted", "Rows scored.", ["model", "version"], registry=r)
        self.batch_rows = Histogram("looml_request_rows", "Rows per request.", buckets=_ROWS, registry=r)
        self.batch_requests = Histogram("looml_batch_requests", "Requests gathered per scoring call.",
                                        buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.model_info = Gauge("looml_model_info", "The model version being served (value 1).",
                                ["model", "version"], registry=r, multiprocess_mode="liveall")
        self.scorer_info = Gauge("looml_scorer_info", "The scorer of the version being served (value 1): "
                                 "compiled:<form>, or pipeline when the compiled path is not used.",
                                 ["model", "version", "kind"], registry=r, multiprocess_mode="liveall")
        self.classes = Counter("looml_predictions", "Predicted classes (classifiers).",
                               ["model", "version", "label"], registry=r)
        self.values = Histogram("looml_prediction_value", "Predicted values (regressors).",
                                ["model", "version"], registry=r)
        self.log_rows = Gauge("looml_prediction_log_rows", "Rows written to / dropped from the "
                              "prediction log by this process.", ["outcome"], registry=r,
                              multiprocess_mode="livesum")
        self._log = prediction_log
        self._serving: tuple[str, str, str] | None = None

    def serving(self, model: ServedModel | None) -> None:
        """Mark `model` (and its scorer) as the version served now."""
        if model is None:
            return
        key = (model.name, model.version, model.scorer.name)
        if key != self._serving:
            if self._serving is not None:
                self.model_info.labels(*self._serving[:2]).set(0)
                self.scorer_info.labels(*self._serving).set(0)
            self.model_info.labels(*key[:2]).set(1)
            self.scorer_info.labels(*key).set(1)
            self._serving = key

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def scored(self, model: ServedModel, prediction: Prediction, request_rows: list[int]) -> None:
        """Count one scoring call: the rows of each request it served, and its predictions."""
        self.serving(model)
        self.rows.labels(model.name, model.version).inc(len(prediction.labels))
        for rows in request_rows:
            self.batch_rows.observe(rows)
        self.batch_requests.observe(len(request_rows))
        if model.task == "classification" and len(prediction.labels) == 1:
            self.classes.labels(model.name, model.version, str(prediction.labels[0])).inc()
        elif model.task == "classification":
            labels, counts = np.unique(np.asarray(prediction.labels).astype(str), return_counts=True)
            for label, count in zip(labels, counts, strict=True):
                self.classes.labels(model.name, model.version, label).inc(int(count))
        else:
            child = self.values.labels(model.name, model.version)
            for value in np.asarray(prediction.labels, dtype=np.float64)[:1000]:
                child.observe(float(value))

    def exposition(self) -> tuple[bytes, str]:
        """The text format, every worker's values included in multi-process mode."""
        if self._log is not None:
            self.log_rows.labels("written").set(self._log.written)
            self.log_rows.labels("dropped").set(self._log.dropped)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
