"""The `serve`, `monitor`, `alerts` and `loop` sections: how the registered model is served and
watched, and when it is retrained. None of them is part of `Spec.spec_hash`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from looml.schedule import parse_duration, parse_schedule
from looml.spec._base import _field_errors, _Section


class BatchingSpec(_Section):
    """Adaptive micro-batching: concurrent requests are scored in one call."""

    enabled: bool = True
    max_batch_rows: int = Field(256, ge=1, description="Rows per scoring call at most.")
    max_wait_ms: float = Field(2.0, ge=0.0, description="How long a request may wait for others "
                                                       "while a scoring call is already running.")


class PredictionLogSpec(_Section):
    """The prediction log: every served row, appended in batches to Parquet under .looml/logs/."""

    enabled: bool = True
    flush_rows: int = Field(10_000, ge=1, description="Write a file when this many rows are buffered.")
    flush_seconds: float = Field(1.0, gt=0, description="... or when the oldest buffered row is this old "
                                 "(short: each file's build holds the server's GIL for less time).")
    max_buffer_rows: int = Field(200_000, ge=1, description="Rows held in memory at most; beyond, rows "
                                                            "are dropped and counted, never blocking.")


class ServeSpec(_Section):
    """`looml serve`: the REST server of the registered model."""

    host: str = Field("127.0.0.1", description="Bind address; the default serves this machine only.")
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")
    version: str | None = Field(None, description="Serve this version; default: the champion, followed "
                                                  "when the alias moves.")
    reload_seconds: float = Field(5.0, gt=0, description="How often the champion alias is checked.")
    max_rows: int = Field(100_000, ge=1, description="Rows per request at most (413 beyond).")
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Request body size at most.")
    auth_token_env: str | None = Field(None, description="If set, every endpoint that scores, describes the "
                                                         "model or takes feedback requires 'Authorization: "
                                                         "Bearer <the value of this environment variable>'.")
    open_endpoints: list[Literal["health", "metrics", "docs"]] = Field(
        default_factory=lambda: ["health", "metrics"],
        description="With auth_token_env: the endpoint groups that answer without the token. health: "
                    "/v2/health/*, /v2/models/{name}[/versions/{v}]/ready, /v2, /ping, /health, /version; "
                    "metrics: /metrics; docs: /docs, /openapi.json. [] protects them all.")
    batching: BatchingSpec = BatchingSpec()
    log: PredictionLogSpec = PredictionLogSpec()


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; YAML may say 90, '30m', '6h', '7d' or '2w'."""


class PerformanceSpec(_Section):
    """Live performance: served predictions joined to their feedback labels."""

    metric: str = Field("auto", description="The metric watched; 'auto' is the evaluation's primary metric.")
    window: Duration = Field(86400.0, description="Metrics are also reported per window of this length.")
    min_labels: int = Field(100, ge=1, description="Fewer labelled rows than this: no verdict, only the "
                            "numbers.")
    max_drop: float = Field(0.05, ge=0.0, description="A drop beyond this (in metric units, or a share of "
                            "the champion's holdout value when relative) is flagged ...")
    relative: bool = Field(False, description="Read max_drop as a share of the holdout value.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="... only when the whole bootstrap "
                              "confidence interval of the live metric lies beyond it.")
    resamples: int = Field(1000, ge=100, le=100_000, description="Bootstrap resamples.")


class AlertsSpec(_Section):
    """Where alerts go: always the log and the exit code; a webhook when a URL is set."""

    webhook_url: str | None = Field(None, pattern=r"^(https?://|\$\{)", description="POSTed a JSON "
                                    "payload per alert; '${VAR}' parts are read from the environment.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra webhook headers; '${VAR}' "
                                    "is read from the environment.")
    retries: int = Field(3, ge=0, le=20, description="Retries on errors, 429 and 5xx, with backoff.")
    timeout: float = Field(5.0, gt=0, description="Seconds per webhook attempt.")
    cooldown: Duration = Field(21600.0, description="The same alert (kind and subject) is sent at most "
                               "once per cooldown.")
    on: list[Literal["drift", "performance_drop", "validation_errors", "retrain_failed"]] = Field(
        default_factory=lambda: ["drift", "performance_drop", "validation_errors", "retrain_failed"],
        description="Which kinds of alert are sent.")


class TriggersSpec(_Section):
    """What makes `looml loop` retrain."""

    drift: bool = Field(True, description="Dataset drift in the monitored window.")
    performance_drop: bool = Field(True, description="A live performance drop (see monitor.performance).")
    schedule: str | None = Field(None, description="'every 24h', or a cron expression in UTC "
                                 "('0 3 * * 1' = Mondays 03:00).")
    new_labels: int | None = Field(None, ge=1, description="Retrain once this many labelled rows arrived "
                                   "since the last retrain.")

    @field_validator("schedule", mode="before")
    @classmethod
    def _valid_schedule(cls, value: Any) -> Any:
        if value is not None:
            parse_schedule(str(value))  # raises ValueError naming the bad field
        return value


class PromotionSpec(_Section):
    """Champion vs challenger on fresh labelled traffic that neither trained on."""

    fresh_share: float = Field(0.3, gt=0.0, lt=1.0, description="The latest share of labelled traffic, "
                               "kept out of retraining and used to compare the two.")
    min_rows: int = Field(100, ge=10, description="Fewer fresh labelled rows: keep the champion.")
    margin: float = Field(0.0, ge=0.0, description="The challenger must beat the champion by more than "
                          "this, in the primary metric's units ...")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="... at this one-sided confidence (paired "
                              "bootstrap over the fresh rows).")
    resamples: int = Field(1000, ge=100, le=100_000)


class LoopSpec(_Section):
    """`looml loop`: watch the served champion; retrain and promote only a better model."""

    interval: Duration = Field(3600.0, description="`looml loop --watch`: time between cycles.")
    window: Duration = Field(604800.0, description="The served traffic a cycle looks at: the last ... .")
    triggers: TriggersSpec = TriggersSpec()
    retrain_data: Literal["source", "labelled_traffic", "source_and_labelled_traffic"] = Field(
        "source_and_labelled_traffic", description="What the challenger trains on: the spec's source "
        "read afresh, the labelled served rows (except the fresh share), or both.")
    promotion: PromotionSpec = PromotionSpec()


DriftMethod = Literal["auto", "ks", "wasserstein", "psi", "chisquare", "jensenshannon"]
P_VALUE_METHODS = ("ks", "chisquare")
DRIFT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.1}


class DriftTestSpec(_Section):
    """The statistic that decides drift for one type of column, and its threshold."""

    method: DriftMethod = Field(
        "auto", description="auto: a p-value test (ks for numbers, chisquare for categories) when either "
                            "side has at most small_sample_rows values, else a distance (wasserstein for "
                            "numbers, jensenshannon for categories).")
    threshold: float | None = Field(
        None, gt=0.0, description="Default by method: ks and chisquare 0.05 (drift when the p-value is "
                                  "below, after a Bonferroni correction over the columns); wasserstein "
                                  "(normed by the reference's std), jensenshannon and psi 0.1 (drift at "
                                  "or above).")

    @model_validator(mode="after")
    def _threshold_fits_method(self) -> DriftTestSpec:
        if self.threshold is None:
            return self
        _field_errors("DriftTestSpec", [
            (("threshold",), "'auto' switches between a p-value and a distance, so one threshold cannot "
             "fit both", self.threshold, "name the method too (e.g. method: wasserstein)")
        ] if self.method == "auto" else [
            (("threshold",), f"a p-value threshold of {self.method} must be below 1", self.threshold,
             "e.g. 0.05, or 0.01 for fewer alarms")
        ] if self.method in P_VALUE_METHODS and self.threshold >= 1 else [])
        return self


class ColumnDriftSpec(DriftTestSpec):
    """Drift settings for one column (by name), over the defaults of its type."""

    kind: Literal["auto", "continuous", "discrete"] = Field(
        "auto", description="auto: a numeric column with at most 10 distinct values in the reference is "
                            "discrete (compared value by value, like a category).")
    skip: bool = Field(False, description="Leave this column out of drift detection.")


class DriftSpec(_Section):
    """`looml monitor`: drift between the champion's training data and new data."""

    numeric: DriftTestSpec = Field(DriftTestSpec(), description="Numeric (and text length, date) columns.")
    categorical: DriftTestSpec = Field(DriftTestSpec(), description="Categorical and discrete columns.")
    columns: dict[str, ColumnDriftSpec] = Field(
        default_factory=dict, description="Per-column method, threshold, kind or skip, by column name.")
    small_sample_rows: int = Field(1000, ge=1, description="Up to this many values on either side, "
                                                           "'auto' uses p-value tests; above, distances.")
    drift_share: float = Field(0.5, gt=0.0, le=1.0, description="Dataset drift when the share of drifted "
                                                                "columns reaches this.")
    weight_by_importance: bool = Field(False, description="Weigh each column's vote in drift_share by its "
                                                          "permutation importance (measured at training).")
    min_rows: int = Field(100, ge=1, description="Fewer current rows (or non-missing values in a column) "
                                                 "than this are reported, not judged.")
    missing_rate_change: float = Field(0.05, gt=0.0, le=1.0, description="A change of a column's missing "
                                       "rate by at least this (and beyond chance) is drift.")
    new_category_share: float = Field(0.05, gt=0.0, le=1.0, description="A share of values never seen in "
                                      "training at least this much above the expected share is drift.")
    datetime: bool = Field(False, description="Check date columns too (off: dates move forward by nature).")
    prediction: bool = Field(True, description="Check the model's predictions and probabilities too.")
    fail_on: Literal["dataset", "any", "never"] = Field(
        "dataset", description="Which drift gives exit_code: dataset (dataset or prediction drift), any "
                               "(any drifted column), never (report only).")
    exit_code: int = Field(6, ge=6, le=125, description="Exit status of `looml monitor` on drift (1-5 are "
                                                        "looml's error codes).")

    @model_validator(mode="after")
    def _categorical_methods(self) -> DriftSpec:
        _field_errors("DriftSpec", [
            (("categorical", "method"), "ks and wasserstein compare numbers, not categories",
             self.categorical.method, "use chisquare, jensenshannon, psi or auto")
        ] if self.categorical.method in ("ks", "wasserstein") else [])
        return self

    def test_for(self, column: str, discrete: bool) -> tuple[str, float | None]:
        """The method and threshold set for a column (either may still be 'auto' / None)."""
        own = self.columns.get(column)
        base = self.categorical if discrete else self.numeric
        if own is not None and own.method != "auto":
            return own.method, own.threshold
        return base.method, base.threshold


class MonitorSpec(_Section):
    """Monitoring of the served model."""

    drift: DriftSpec = DriftSpec()
    performance: PerformanceSpec = PerformanceSpec()
