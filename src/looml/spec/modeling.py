"""The `models`, `tuning`, `evaluation`, `registry` and `tracking` sections: which models are
tried, how they are searched and judged, and where the result is recorded."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from looml.errors import did_you_mean
from looml.spec._base import (
    ALIASES,
    CLASSIFICATION_METRICS,
    DEFAULT_CANDIDATES,
    MODEL_NAMES,
    REGRESSION_METRICS,
    _field_errors,
    _Section,
)


class ParamRange(_Section):
    """One searched parameter: a range (`low`, `high`, optional `log` / `step` / `type`) or `choices`.

    A plain list is short for `{choices: [...]}`.
    """

    low: int | float | None = Field(None, description="Lowest value (with `high`).")
    high: int | float | None = Field(None, description="Highest value (with `low`).")
    log: bool = Field(False, description="Sample on a log scale (needs low > 0).")
    step: float | None = Field(None, gt=0, description="Only values low, low + step, ... (needed by "
                                                       "grid search for a range).")
    type: Literal["auto", "int", "float"] = Field(
        "auto", description="'auto' is int when low and high are both written as integers.")
    choices: list[Any] | None = Field(None, description="A categorical parameter: these values.")

    @model_validator(mode="before")
    @classmethod
    def _list_is_choices(cls, value: Any) -> Any:
        return {"choices": value} if isinstance(value, list) else value

    @model_validator(mode="after")
    def _consistent(self) -> ParamRange:
        errors = []
        if self.choices is not None:
            if not self.choices:
                errors.append((("choices",), "empty choices", None, "list at least one value"))
            if self.low is not None or self.high is not None:
                errors.append(((), "give either `choices` or `low`/`high`, not both", None,
                               "remove one of them"))
        elif self.low is None or self.high is None:
            errors.append(((), "a range needs both `low` and `high` (or give `choices`)", None,
                           "e.g. {low: 0.01, high: 0.3, log: true} or {choices: [a, b]}"))
        else:
            if self.low > self.high:
                errors.append((("low",), f"low ({self.low:g}) is greater than high ({self.high:g})",
                               self.low, "swap them"))
            if self.log and self.low <= 0:
                errors.append((("log",), f"a log scale needs low > 0; low is {self.low:g}", self.low,
                               "use a positive low, or log: false"))
            if self.log and self.step is not None:
                errors.append((("step",), "a log scale cannot have a step", self.step,
                               "remove `step` or `log`"))
        _field_errors("ParamRange", errors)
        return self

    @property
    def is_int(self) -> bool:
        """Whether the range samples integers: `type: int`, or low and high written as integers."""
        if self.type != "auto":
            return self.type == "int"
        return all(isinstance(v, int) for v in (self.low, self.high)) and (
            self.step is None or float(self.step).is_integer())

    @property
    def finite(self) -> bool:
        """Whether the parameter has finitely many values (choices, or a range with a step / ints)."""
        return self.choices is not None or self.step is not None or self.is_int


class CandidateSpec(_Section):
    """One candidate model: a zoo name (or your own estimator), fixed params and searched params."""

    name: str = Field(description=f"A zoo model ({', '.join(MODEL_NAMES)}), or any name with "
                                  "`estimator`.")
    estimator: str | None = Field(
        None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="Import path 'module:Class' of any scikit-learn-compatible estimator.")
    params: dict[str, Any] = Field(default_factory=dict, description="Fixed parameters.")
    space: dict[str, ParamRange] = Field(
        default_factory=dict, description="Searched parameters; overrides or extends the model's "
                                          "default space (a param in `params` is not searched).")
    allow_large: bool = Field(False, description="Try svm / knn even above their row limit.")

    @model_validator(mode="after")
    def _known_name(self) -> CandidateSpec:
        name = ALIASES.get(self.name, self.name)
        if self.estimator is None and name not in MODEL_NAMES:
            _field_errors("CandidateSpec", [(
                ("name",), "unknown model", self.name,
                did_you_mean(self.name, [*MODEL_NAMES, *ALIASES])
                or f"use one of {', '.join(MODEL_NAMES)}, or give `estimator: module:Class`")])
        if self.estimator is not None and name in MODEL_NAMES:
            _field_errors("CandidateSpec", [(
                ("name",), "a zoo model's name cannot name your own estimator", self.name,
                f"call it something else, e.g. my_{self.name}")])
        both = sorted(set(self.params) & set(self.space))
        _field_errors("CandidateSpec", [
            (("space", key), "this parameter is both fixed (params) and searched (space)", key,
             "keep it in one of the two") for key in both])
        return self

    @property
    def family(self) -> str:
        """The zoo family (aliases resolved), or the candidate's own name for an import path."""
        return ALIASES.get(self.name, self.name)


class ModelsSpec(_Section):
    """The candidate models compared in cross-validation."""

    candidates: list[CandidateSpec] = Field(
        default_factory=lambda: [CandidateSpec(name=n) for n in DEFAULT_CANDIDATES],
        min_length=1,
        description="Each item is a model name or {name: ..., params: {...}, space: {...}}.",
    )
    n_jobs: int = Field(-1, description="Threads per model fit (-1: all cores).")

    @property
    def listed(self) -> bool:
        """True when the spec lists its candidates (False: the defaults are in effect)."""
        return "candidates" in self.model_fields_set

    @field_validator("candidates", mode="before")
    @classmethod
    def _names_to_objects(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> ModelsSpec:
        names = [c.name for c in self.candidates]
        _field_errors("ModelsSpec", [
            (("candidates", i), f"this candidate is listed more than once (first at "
             f"models.candidates.{names.index(name)})", name,
             "list each model once; to compare settings, keep the one you want")
            for i, name in enumerate(names) if names.index(name) != i
        ])
        return self


_RAY_ADDRESS = r"^(auto|ray://[^\s/:]+:\d{1,5}|[^\s/:]+:\d{1,5})$"


class ExecutorSpec(_Section):
    """Where trials run: this machine's process pool, or a Ray cluster the user started."""

    kind: Literal["local", "ray"] = Field("local", description="'local': a process pool on this "
                                                               "machine; 'ray': Ray tasks on a cluster.")
    address: str | None = Field(
        None, description="kind ray only: 'auto' (the cluster `ray start` started on this machine, or "
                          "$RAY_ADDRESS), 'host:6379' (the head's GCS port) or 'ray://host:10001' (Ray "
                          "Client). Default 'auto'.")

    @model_validator(mode="after")
    def _address(self) -> ExecutorSpec:
        errors = []
        if self.kind == "local" and self.address is not None:
            errors.append((("address",), "an address is for kind: ray", self.address,
                           "remove it, or set kind: ray"))
        if self.address is not None and not re.match(_RAY_ADDRESS, self.address):
            errors.append((("address",), "not a Ray address", self.address,
                           "use auto, host:port (the head's GCS port, 6379 by default) or "
                           "ray://host:port (Ray Client, 10001 by default)"))
        _field_errors("ExecutorSpec", errors)
        return self

    @property
    def resolved_address(self) -> str:
        """The Ray address after the default is decided."""
        return self.address or "auto"


class TuningSpec(_Section):
    """The search over models, their parameters and preprocessing choices, and its budgets."""

    method: Literal["auto", "grid", "random", "bayesian", "none"] = Field(
        "auto", description="'bayesian' is Optuna's TPE; 'none' tries each candidate with its params; "
                            "'auto' is 'none' when neither trials nor time_budget is set, else 'bayesian'.")
    trials: int | None = Field(None, ge=1, description="Trials at most; default 30, or unlimited under "
                                                      "a time_budget.")
    time_budget: float | None = Field(None, gt=0, description="Seconds for the whole search and the "
                                                               "final refit, enforced: late trials are "
                                                               "stopped and discarded.")
    n_jobs: int = Field(1, ge=1, description="Trials in parallel; threads per fit = cores // n_jobs.")
    pruning: bool = Field(True, description="Stop poor trials after early folds (median pruner).")
    warm_start: bool = Field(True, description="Try known-good configurations per family first.")
    space: dict[str, list[Any]] = Field(
        default_factory=dict, description="Preprocessing choices searched with the models: dotted "
                                          "path -> values, e.g. preprocessing.numeric.scale: "
                                          "[standard, robust].")
    ensemble: Literal["auto", "none", "voting", "stacking"] = Field(
        "auto", description="Combine the best models: 'voting' is a weighted soft vote chosen on "
                            "out-of-fold predictions, 'stacking' a meta-model; kept only if it beats "
                            "the best single model in CV. 'auto' is 'voting'.")
    ensemble_top_k: int = Field(5, ge=2, le=10, description="Models an ensemble combines at most.")
    top_k: int = Field(10, ge=1, description="Leaderboard rows shown in the report.")
    memory_limit_mb: float | None = Field(None, gt=0, description="Skip configurations estimated to "
                                                                  "need more; default 80% of available "
                                                                  "memory.")
    executor: ExecutorSpec = Field(
        default_factory=lambda: ExecutorSpec(), description="Where trials run: `local` (this machine's "
        "process pool) or `{kind: ray, address: ...}` (a Ray cluster).")

    @field_validator("executor", mode="before")
    @classmethod
    def _kind_alone(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("space")
    @classmethod
    def _paths(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        _field_errors("TuningSpec", [
            ((path,), "empty choices", None, "list at least one value") for path, v in value.items() if not v
        ] + [
            ((path,), "a searched path starts with 'preprocessing.' (or 'features.')", path,
             f"e.g. preprocessing.{path}") for path in value
            if path.split(".")[0] not in ("preprocessing", "features")
        ])
        return value

    @property
    def resolved_method(self) -> str:
        """The method after 'auto' is decided."""
        if self.method != "auto":
            return self.method
        return "none" if self.trials is None and self.time_budget is None else "bayesian"

    @property
    def resolved_ensemble(self) -> str:
        """The ensemble after 'auto' is decided: a weighted vote, searched or not. Without a
        search it votes among the candidates with their own params: on small tables the pick
        between two families is noise, and a vote of both is what held up on the corpus."""
        return "voting" if self.ensemble == "auto" else self.ensemble


# Disparity measures a gate can bound (evaluation.gate.min / max), per task. Each is computed
# for every sensitive column over its groups with enough rows; the gate takes the worst column.
FAIRNESS_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
               "equalized_odds_ratio", "accuracy_difference"),
    "multiclass": ("accuracy_difference",),
    "regression": ("mae_difference", "rmse_difference"),
}
FAIRNESS_METRIC_NAMES: tuple[str, ...] = tuple(dict.fromkeys(
    m for names in FAIRNESS_METRICS.values() for m in names))
# Ratios are 1 when every group is treated alike: a gate bounds them from below.
FAIRNESS_HIGHER_IS_FAIRER = frozenset({"demographic_parity_ratio", "equalized_odds_ratio"})


class GateSpec(_Section):
    """Thresholds a model must reach on the holdout split to be registered: holdout metrics and
    fairness disparity measures (these need `evaluation.sensitive_columns`)."""

    min: dict[str, float] = Field(default_factory=dict, description="metric -> lowest allowed value")
    max: dict[str, float] = Field(default_factory=dict, description="metric -> highest allowed value")


THRESHOLD_OBJECTIVES = ("f1", "balanced_accuracy", "accuracy", "mcc", "precision", "recall")


class ThresholdSpec(_Section):
    """A binary task's decision threshold, chosen on out-of-fold predictions: for an objective
    (`optimize`) or for the least total cost (`costs`)."""

    optimize: str | None = Field(
        None, description="Maximise this on the out-of-fold predictions: f1, balanced_accuracy, "
                          "accuracy, mcc, precision (with min_recall) or recall (with min_precision).")
    min_recall: float | None = Field(None, gt=0, le=1, description="optimize: precision only: the "
                                                                    "recall the threshold must keep.")
    min_precision: float | None = Field(None, gt=0, le=1, description="optimize: recall only: the "
                                                                      "precision it must keep.")
    costs: list[list[float]] | None = Field(
        None, description="Cost matrix, rows the true class and columns the predicted one, the "
                          "negative class first and data.positive_class second: [[0, 1], [5, 0]] makes "
                          "a missed positive cost 5 false alarms.")

    @model_validator(mode="after")
    def _one_rule(self) -> ThresholdSpec:
        errors: list[tuple[tuple, str, Any, str]] = []
        if (self.optimize is None) == (self.costs is None):
            errors.append(((), "give either optimize or costs", None,
                           "e.g. threshold: {optimize: f1} or threshold: {costs: [[0, 1], [5, 0]]}"))
        if self.optimize is not None and self.optimize not in THRESHOLD_OBJECTIVES:
            errors.append((("optimize",), "unknown threshold objective", self.optimize,
                           did_you_mean(self.optimize, THRESHOLD_OBJECTIVES)
                           or f"use one of: {', '.join(THRESHOLD_OBJECTIVES)}"))
        for key, needs in (("min_recall", "precision"), ("min_precision", "recall")):
            if getattr(self, key) is not None and self.optimize != needs:
                errors.append(((key,), f"{key} goes with optimize: {needs}", getattr(self, key),
                               f"set optimize: {needs}, or remove {key}"))
        if self.optimize == "precision" and self.min_recall is None:
            errors.append((("optimize",), "precision alone is maximised by predicting almost nothing",
                           "precision", "add min_recall, e.g. min_recall: 0.8"))
        if self.optimize == "recall" and self.min_precision is None:
            errors.append((("optimize",), "recall alone is maximised by predicting every row positive",
                           "recall", "add min_precision, e.g. min_precision: 0.5"))
        if self.costs is not None:
            if len(self.costs) != 2 or any(len(row) != 2 for row in self.costs):
                errors.append((("costs",), f"a binary cost matrix is 2 x 2; got "
                               f"{' x '.join(map(str, [len(self.costs), *{len(r) for r in self.costs}]))}",
                               self.costs, "write [[cost of TN, cost of FP], [cost of FN, cost of TP]], "
                                           "e.g. [[0, 1], [5, 0]]"))
            if any(v < 0 for row in self.costs for v in row):
                errors.append((("costs",), "costs cannot be negative", self.costs,
                               "write a gain as 0 and raise the other costs instead"))
            elif len(self.costs) == 2 and all(len(r) == 2 for r in self.costs) and \
                    self.costs[0][1] <= self.costs[0][0] and self.costs[1][0] <= self.costs[1][1]:
                errors.append((("costs",), "no error costs more than a right answer: every threshold "
                               "is as good", self.costs, "give a false positive (row 1, column 2) or "
                                                          "a false negative (row 2, column 1) a cost"))
        _field_errors("ThresholdSpec", errors)
        return self


def _import_path(text: str) -> bool:
    """Whether `text` reads 'package.module:function'."""
    module, colon, name = text.partition(":")
    return bool(colon) and name.isidentifier() and all(part.isidentifier() for part in module.split("."))


class EvaluationSpec(_Section):
    """How candidates are ranked, how the holdout is analysed, and which results let a model be
    registered."""

    primary_metric: str = Field(
        "auto", description="Ranks the candidates; 'auto' is roc_auc (classification) or rmse (regression)."
    )
    gate: GateSpec = GateSpec()
    custom_metrics: list[str] = Field(
        default_factory=list, description="Your own metrics, 'module:function' each: function(y_true, "
        "y_pred) -> float, or of probabilities when it has needs_proba = True; greater_is_better = False "
        "when lower is better. Named by the function's name (in gates too); primary_metric may be one.")
    analysis: bool = Field(True, description="Intervals, fairness, slices and the explanations on the "
                                             "holdout; false leaves the holdout metrics alone (no gate "
                                             "on fairness, no explanations logged; /explain still "
                                             "answers).")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Level of the seeded bootstrap "
                                                               "interval of every holdout metric.")
    sensitive_columns: list[str] = Field(
        default_factory=list, description="Columns whose groups are compared (fairlearn's MetricFrame): "
                                          "per-group metrics and disparity measures. Not features unless "
                                          "`sensitive_as_features`.")
    sensitive_as_features: bool = Field(
        False, description="Let the model also learn from the sensitive columns (default: they are "
                           "analysed only, kept out of the features).")
    slices: list[str] = Field(default_factory=list, description="Columns whose values (numeric: quantile "
                                                                "bins) get their own holdout metrics; "
                                                                "any column, feature or not.")
    calibration: Literal["none", "auto", "sigmoid", "isotonic"] = Field(
        "none", description="Classification: recalibrate the chosen model's probabilities on out-of-fold "
                            "predictions of the training split. 'auto': sigmoid or isotonic, whichever "
                            "lowers the cross-validated log loss most, and only when by 1% or more.")
    threshold: ThresholdSpec | None = Field(
        None, description="Binary classification: the decision threshold, chosen on out-of-fold "
                          "predictions, {optimize: f1} or {costs: [[0, 1], [5, 0]]}; default: 0.5 "
                          "(the most probable class).")
    min_slice_rows: int = Field(30, ge=1, description="Rows a slice or group needs to count as a worst "
                                                      "slice or in a disparity measure (smaller ones "
                                                      "are shown, flagged).")

    def metric_locations(self) -> list[tuple[tuple, str]]:
        """Every metric named in this section, with its location: (loc, metric)."""
        primary = self.primary_metric
        named = [(("primary_metric",), primary)] if primary != "auto" else []
        named += [(("gate", "min", n), n) for n in self.gate.min]
        return named + [(("gate", "max", n), n) for n in self.gate.max]

    @property
    def analysed_columns(self) -> list[str]:
        """The sensitive and slice columns, each once, in the spec's order."""
        return list(dict.fromkeys([*self.sensitive_columns, *self.slices]))

    @property
    def custom_paths(self) -> list[str]:
        """The custom metrics' import paths: `custom_metrics` and a primary metric given as one."""
        primary = [self.primary_metric] if ":" in self.primary_metric else []
        return list(dict.fromkeys([*self.custom_metrics, *primary]))

    @model_validator(mode="after")
    def _known_metrics(self) -> EvaluationSpec:
        custom = [p.rpartition(":")[2] for p in self.custom_paths]
        known = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS, *FAIRNESS_METRIC_NAMES, *custom,
                 *self.custom_paths)
        listing = (f"classification: {', '.join(CLASSIFICATION_METRICS)}; "
                   f"regression: {', '.join(REGRESSION_METRICS)}; "
                   f"fairness: {', '.join(FAIRNESS_METRIC_NAMES)}")
        errors = [
            (loc, "unknown metric", name, did_you_mean(name, known) or f"known metrics: {listing}")
            for loc, name in self.metric_locations() if name not in known
        ]
        if self.primary_metric in FAIRNESS_METRIC_NAMES:
            errors.append((("primary_metric",), "a fairness measure cannot rank the candidates",
                           self.primary_metric, "bound it in evaluation.gate instead"))
        for loc, name in self.metric_locations()[1 if self.primary_metric != "auto" else 0:]:
            if name not in FAIRNESS_METRIC_NAMES:
                continue
            if not self.sensitive_columns:
                errors.append((loc, "a gate on a fairness measure needs evaluation.sensitive_columns",
                               name, "list the columns whose groups are compared, e.g. "
                                     "sensitive_columns: [sex]"))
            elif not self.analysis:
                errors.append((loc, "a gate on a fairness measure needs evaluation.analysis: true",
                               name, "remove analysis: false, or the gate"))
        errors += [(("custom_metrics", i), "expected an import path 'module:function'", p,
                    "e.g. 'mypkg.metrics:my_score'") for i, p in enumerate(self.custom_metrics)
                   if not _import_path(p)]
        errors += [((("custom_metrics", self.custom_metrics.index(p)) if p in self.custom_metrics
                     else ("primary_metric",)), "a custom metric cannot take a built-in metric's name", p,
                    "rename the function") for p in self.custom_paths
                   if p.rpartition(":")[2] in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)]
        for key in ("sensitive_columns", "slices"):
            names = getattr(self, key)
            errors += [((key, i), f"listed more than once (first at evaluation.{key}[{names.index(n)}])",
                        n, "list each column once") for i, n in enumerate(names) if names.index(n) != i]
        _field_errors("EvaluationSpec", errors)
        return self


class RegistrySpec(_Section):
    """The registered model name in the MLflow registry, and when `looml run` moves its champion."""

    model_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    promote: Literal["auto", "never", "if_better"] = Field("auto", description=(
        "When `looml run` makes its new version the champion. 'auto': when there is no champion "
        "yet (a later version is compared with the champion and reported; the alias stays). "
        "'if_better': also when the paired bootstrap on the holdout shows it better than the "
        "champion by `loop.promotion.margin` at `loop.promotion.confidence` (the loop's rule). "
        "'never': the alias is moved only by `looml models promote` or the loop."))


class TrackingSpec(_Section):
    """The MLflow tracking store. The default is an embedded SQLite file under .looml/."""

    uri: str = Field("sqlite:///.looml/mlflow.db", description=(
        "Any MLflow tracking URI; `http(s)://host:port` for a team's `mlflow server` (docs/team.md). "
        "No credentials in it: they come from MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD "
        "or MLFLOW_TRACKING_TOKEN."))
    experiment: str = Field("looml", min_length=1)

    @model_validator(mode="after")
    def _no_credentials(self) -> TrackingSpec:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(self.uri)
            password = parts.password
        except ValueError:
            return self
        if password is not None:
            shown = self.uri.replace(f":{password}@", ":***@", 1)
            _field_errors("TrackingSpec", [(
                ("uri",), "a password in the tracking URI would be stored in the spec, the logs and MLflow",
                shown, "remove 'user:password@' from the URI and set MLFLOW_TRACKING_USERNAME and "
                       "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment")])
        return self
