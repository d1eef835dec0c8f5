"""The `looml.yaml` spec: pydantic models validated once, at the edge.

`load_spec(path)` reads the YAML, validates it and reports every problem at once, each
with its YAML location and line number, the bad value, what was expected and, for a
misspelt key, a "did you mean".
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from looml.errors import Problem, SpecError, did_you_mean
from looml.schedule import parse_duration, parse_schedule

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "Spec",
    "load_spec",
    "spec_json_schema",
    "yaml_duplicate_keys",
    "yaml_lines",
]

Task = Literal["auto", "classification", "regression"]
ModelName = Literal["linear", "ridge", "lasso", "elastic_net", "knn", "svm", "decision_tree",
                    "random_forest", "extra_trees", "hist_gradient_boosting", "lightgbm", "xgboost",
                    "mlp", "catboost"]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
ALIASES = {"logistic": "linear"}
DEFAULT_CANDIDATES = ("linear", "random_forest", "hist_gradient_boosting", "lightgbm")

CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})
_METRICS = {"classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS}


def _field_errors(title: str, errors: list[tuple[tuple, str, Any, str]]) -> None:
    """Raise one pydantic error per (loc, message, value, fix), each at its own location.

    Raised inside a validator, the locations are nested under the model's own, so every
    problem keeps its YAML path and line instead of pointing at the whole section.
    """
    if errors:
        raise ValidationError.from_exception_data(title, [
            InitErrorDetails(type=PydanticCustomError("looml", message, {"fix": fix}), loc=loc,
                             input=value)
            for loc, message, value, fix in errors
        ])


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSource(_Section):
    """One file, a glob, a folder of same-schema files, or a remote URL (s3://, gs://, https://)."""

    kind: Literal["file"] = "file"
    path: str = Field(description="A path relative to looml.yaml, a glob (data/*.parquet), a folder, "
                                  "or an fsspec URL.")
    format: Literal["auto", "csv", "parquet", "ndjson", "excel"] = Field(
        "auto", description="File format; 'auto' decides by the file extension."
    )
    file_column: str | None = Field(
        None, description="If set, a column of this name holds each row's source file name."
    )
    separator: str | None = Field(None, min_length=1, max_length=1,
                                  description="CSV field separator; default ',' ('\\t' for .tsv).")
    encoding: Literal["utf8", "utf8-lossy", "latin1", "cp1252", "utf16"] = Field(
        "utf8", description="CSV text encoding."
    )
    skip_bad_lines: bool = Field(
        False, description="Skip CSV lines with the wrong number of fields (counted and reported) "
                           "instead of stopping."
    )
    sheet: str | None = Field(None, description="Excel sheet name; default the first sheet.")
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="fsspec options for remote URLs; a value '${VAR}' is read from the environment.",
    )


class SqlSource(_Section):
    """A table or query in a SQL database (PostgreSQL, SQLite; MySQL with its driver)."""

    kind: Literal["sql"]
    url: str = Field(description="SQLAlchemy URL; '${VAR}' parts are read from the environment at "
                                 "run time and never logged.")
    table: str | None = Field(None, description="A table (or schema.table) to read whole.")
    query: str | None = Field(None, description="A SELECT query.")
    password_env: str | None = Field(None, description="Environment variable holding the password.")
    engine: Literal["auto", "adbc", "connectorx", "sqlalchemy"] = Field(
        "auto", description="How rows are fetched; 'auto' takes the fastest that works for the URL."
    )

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            _field_errors("SqlSource", [((), "give exactly one of `table` or `query`",
                                         None, "add `table: NAME` or `query: SELECT ...`")])
        return self


class Pagination(_Section):
    """How an HTTP source's pages are followed."""

    kind: Literal["none", "next_link", "cursor", "offset", "page"] = "none"
    next_path: str | None = Field(None, description="next_link / cursor: dotted path in the body to the "
                                                    "next URL or cursor (default: the Link header).")
    param: str | None = Field(None, description="cursor: query parameter for the cursor; offset: the "
                                                "offset parameter; page: the page-number parameter.")
    limit_param: str | None = Field(None, description="offset / page: the page-size parameter.")
    limit: int = Field(100, ge=1, description="offset / page: rows per page.")
    start: int | None = Field(None, ge=0, description="offset / page: the first offset or page number "
                                                      "(default 0 for offset, 1 for page).")

    @model_validator(mode="after")
    def _needed_fields(self) -> Pagination:
        needs = {"cursor": ("next_path", "param"), "offset": ("param",), "page": ("param",)}
        _field_errors("Pagination", [
            ((name,), f"pagination kind {self.kind!r} needs `{name}`", None,
             "set `next_path` to the dotted path of the next cursor in the body" if name == "next_path"
             else f"set `param` to the query parameter that carries the {self.kind}")
            for name in needs.get(self.kind, ()) if getattr(self, name) is None
        ])
        return self


class HttpSource(_Section):
    """A JSON or CSV HTTP API, followed page by page."""

    kind: Literal["http"]
    url: str = Field(pattern=r"^https?://", description="The first page's URL.")
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    body: dict[str, Any] | None = Field(None, description="JSON body for POST.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers; '${VAR}' is read "
                                                                      "from the environment.")
    format: Literal["json", "csv"] = "json"
    records_path: str | None = Field(None, description="Dotted path to the list of records in each "
                                                       "JSON body (default: the body is the list).")
    pagination: Pagination = Pagination()
    auth_env: str | None = Field(None, description="Environment variable with the token sent as "
                                                   "'Authorization: Bearer <token>'.")
    timeout: float = Field(30.0, gt=0, description="Seconds per request.")
    retries: int = Field(4, ge=0, le=20, description="Retries on 429, 5xx and timeouts, with backoff.")
    max_pages: int = Field(10_000, ge=1)
    max_rows: int = Field(10_000_000, ge=1)
    max_seconds: float = Field(600.0, gt=0, description="Bound on the whole fetch.")

    @model_validator(mode="after")
    def _consistent(self) -> HttpSource:
        errors: list[tuple[tuple, str, Any, str]] = []
        if self.body is not None and self.method != "POST":
            errors.append((("body",), "a body is sent only with method POST", None,
                           "add `method: POST`, or move the fields to `params`"))
        if self.format == "csv" and self.records_path is not None:
            errors.append((("records_path",), "records_path applies to JSON bodies, not CSV",
                           self.records_path, "remove records_path, or set format: json"))
        if self.format == "csv" and self.pagination.next_path is not None:
            errors.append((("pagination", "next_path"), "a CSV body has no path to read the next page "
                           "from", self.pagination.next_path,
                           "use pagination kind next_link without next_path (the Link header), "
                           "offset or page"))
        _field_errors("HttpSource", errors)
        return self


class PythonSource(_Section):
    """Any other source: a function returning a DataFrame (Polars or pandas)."""

    kind: Literal["python"]
    function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
                          description="'module:function'; the module is looked up beside looml.yaml "
                                      "first.")
    kwargs: dict[str, Any] = Field(default_factory=dict)


Source = Annotated[FileSource | SqlSource | HttpSource | PythonSource, Field(discriminator="kind")]


class DataSpec(_Section):
    """Where the data is and what the columns mean."""

    source: Source = Field(description="A file path (shorthand for {kind: file, path: ...}) or a "
                                       "mapping with kind: file | sql | http | python.")
    target: str = Field(description="The column to predict.")
    task: Task = Field("auto", description="'auto' infers it from the target column.")
    id_columns: list[str] = Field(
        default_factory=list, description="Row identifiers: kept in the data, never used as features."
    )
    drop_columns: list[str] = Field(default_factory=list, description="Columns never used as features.")

    @field_validator("source", mode="before")
    @classmethod
    def _path_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"kind": "file", "path": value}
        if isinstance(value, dict) and "kind" not in value:
            return {"kind": "file", **value}
        return value


class CheckSpec(_Section):
    """One data check: how serious a finding is, and from which level it counts."""

    severity: Literal["error", "warning", "off"]
    threshold: float = Field(ge=0.0, description="The level above which the check fires (its meaning "
                                                 "is the check's; see docs/spec.md).")


def _check(severity: str, threshold: float, meaning: str) -> Any:
    return Field(default_factory=lambda: CheckSpec(severity=severity, threshold=threshold),
                 description=f"Default {severity}, threshold {threshold}: {meaning}.")


class ValidationSpec(_Section):
    """Data checks against the schema and on the data itself. A finding of severity error stops
    the run (nothing is trained or registered); a warning goes to the report."""

    schema_file: str = Field("looml.schema.yaml", description="The editable schema, beside looml.yaml; "
                             "inferred from the data on the first run.")
    range_margin: float = Field(0.1, ge=0.0, description="Numeric ranges inferred from the data are "
                                "widened by this share of their span on each side.")
    missing_column: CheckSpec = _check("error", 0, "a required schema column is absent")
    extra_column: CheckSpec = _check("warning", 0, "a column the schema does not know")
    type_change: CheckSpec = _check("error", 0, "a column's type differs from the schema's")
    new_category: CheckSpec = _check("error", 0.0, "share of rows with a category outside the schema's "
                                     "domain")
    out_of_range: CheckSpec = _check("error", 0.001, "share of rows outside the schema's min / max (a "
                                     "heavy tail may pass the widened training range now and then)")
    unexpected_nulls: CheckSpec = _check("error", 0.0, "share of missing values in a column the schema "
                                         "marks nullable: false")
    missing_rate: CheckSpec = _check("warning", 0.1, "rise of a column's missing rate over the "
                                     "schema's reference rate")
    constant_column: CheckSpec = _check("warning", 0, "a column with one value, or none")
    duplicate_rows: CheckSpec = _check("warning", 0.05, "share of rows that repeat an earlier row")
    id_like: CheckSpec = _check("warning", 0, "a column that looks like a row identifier")
    target_leakage: CheckSpec = _check("error", 0.98, "how well one feature alone predicts the target "
                                       "(0: not at all, 1: perfectly)")
    class_imbalance: CheckSpec = _check("warning", 0.02, "share of the rarest class, below which it "
                                        "fires")
    train_test_skew: CheckSpec = _check("warning", 0.1, "population stability index between the "
                                        "training and holdout rows of a feature")

    @field_validator("*", mode="before")
    @classmethod
    def _severity_shorthand(cls, value: Any, info: Any) -> Any:
        # `new_category: warning` is short for {severity: warning} with the check's own threshold.
        field = cls.model_fields[info.field_name]
        if isinstance(value, str) and field.annotation is CheckSpec:
            return {"severity": value, "threshold": field.default_factory().threshold}
        if isinstance(value, dict) and field.annotation is CheckSpec:
            default = field.default_factory()
            return {"severity": default.severity, "threshold": default.threshold, **value}
        return value

    def checks(self) -> dict[str, CheckSpec]:
        """Every check by name."""
        return {n: getattr(self, n) for n, f in type(self).model_fields.items() if f.annotation is CheckSpec}


class SplitSpec(_Section):
    """How the training and holdout test splits and the CV folds are made."""

    test_size: float = Field(0.2, gt=0.0, lt=1.0, description="Share of rows held out for evaluate.")
    folds: int = Field(5, ge=2, le=50, description="Cross-validation folds on the training split.")


class NumericSpec(_Section):
    """Numeric columns: outlier clipping, imputation, power transform and scaling (in that order)."""

    impute: Literal["median", "mean", "most_frequent", "constant", "iterative", "knn"] = Field(
        "median", description="How gaps are filled: a column statistic, `fill_value` (constant), "
                              "a model of the other columns (iterative) or the nearest rows (knn).")
    fill_value: float = Field(0.0, description="The value that fills gaps when impute is 'constant'.")
    missing_indicator: bool = Field(True, description="Add a 0/1 column for each column with gaps.")
    scale: Literal["standard", "robust", "minmax", "none"] = Field(
        "standard", description="Scaler applied after imputation (and the power transform).")
    power: Literal["none", "yeo-johnson"] = Field(
        "none", description="Yeo-Johnson power transform to make skewed columns more Gaussian.")
    clip: Literal["none", "iqr", "zscore"] = Field(
        "none", description="Clip outlying values to bounds learned on the training rows: "
                            "quartiles +- threshold x IQR, or mean +- threshold x std.")
    clip_threshold: float | None = Field(
        None, gt=0.0, description="The clip bound's multiplier; default 1.5 for iqr, 3.0 for zscore.")


class CategoricalSpec(_Section):
    """Categorical columns: imputation and encoding."""

    encoding: Literal["auto", "onehot", "ordinal", "target"] = Field(
        "auto", description="auto: one-hot for columns with at most max_categories distinct values in "
                            "the training rows, cross-fitted target encoding for the others.")
    min_frequency: float = Field(
        0.01, gt=0.0, lt=1.0,
        description="Categories rarer than this share of rows are grouped into one 'infrequent' column.",
    )
    max_categories: int = Field(50, ge=2, description="At most this many one-hot columns per column.")
    high_cardinality: int = Field(
        50, ge=2, description="encoding auto: columns with more distinct values than this (in the training "
                              "rows) are target encoded, the others one-hot encoded.")


class TextSpec(_Section):
    """Free-text columns: one TF-IDF of word n-grams per column, of bounded width."""

    max_features: int = Field(2000, ge=1, description="At most this many terms per text column.")
    ngram_max: int = Field(2, ge=1, le=3, description="Longest word n-gram (1: single words).")
    min_df: int = Field(2, ge=1, description="A term must appear in at least this many training rows.")


class DatetimeSpec(_Section):
    """Datetime columns become numeric parts."""

    parts: list[Literal["year", "month", "day", "dayofweek", "dayofyear", "hour", "minute"]] = Field(
        default_factory=lambda: ["year", "month", "day", "dayofweek", "hour"],
        description="Calendar parts, one numeric column each.",
    )
    cyclic: bool = Field(False, description="Also add sin/cos columns for the cyclic parts (month, "
                                            "dayofweek, dayofyear, hour, minute).")


class ColumnSpec(_Section):
    """Per-column overrides: the column's kind and any numeric / categorical option."""

    kind: Literal["numeric", "categorical", "datetime", "text", "drop"] | None = Field(
        None, description="Treat the column as this kind (drop: never use it); default: as inferred.")
    impute: Literal["median", "mean", "most_frequent", "constant", "iterative", "knn"] | None = Field(
        None, description="numeric.impute for this column.")
    fill_value: float | None = Field(None, description="numeric.fill_value for this column.")
    missing_indicator: bool | None = Field(None, description="numeric.missing_indicator for this column.")
    scale: Literal["standard", "robust", "minmax", "none"] | None = Field(
        None, description="numeric.scale for this column.")
    power: Literal["none", "yeo-johnson"] | None = Field(None, description="numeric.power for this column.")
    clip: Literal["none", "iqr", "zscore"] | None = Field(None, description="numeric.clip for this column.")
    clip_threshold: float | None = Field(None, gt=0.0, description="numeric.clip_threshold for this column.")
    encoding: Literal["auto", "onehot", "ordinal", "target"] | None = Field(
        None, description="categorical.encoding for this column.")
    min_frequency: float | None = Field(None, gt=0.0, lt=1.0,
                                        description="categorical.min_frequency for this column.")
    max_categories: int | None = Field(None, ge=2, description="categorical.max_categories for this column.")

    def options(self, kind: str) -> dict[str, Any]:
        """The options set here that apply to a column of `kind` (numeric or categorical)."""
        section = {"numeric": NumericSpec, "categorical": CategoricalSpec}.get(kind)
        if section is None:
            return {}
        return {k: v for k, v in self.model_dump(exclude={"kind"}).items()
                if v is not None and k in section.model_fields}


class PreprocessingSpec(_Section):
    """One ColumnTransformer by column kind (and per overridden column), plus row-level training work."""

    numeric: NumericSpec = NumericSpec()
    categorical: CategoricalSpec = CategoricalSpec()
    text: TextSpec = TextSpec()
    datetime: DatetimeSpec = DatetimeSpec()
    columns: dict[str, ColumnSpec] = Field(
        default_factory=dict, description="Per-column overrides, by column name.")
    drop_id_like: bool = Field(True, description="Drop columns that look like row identifiers.")
    drop_duplicates: bool = Field(False, description="Drop duplicate rows from the rows a model is fitted "
                                                     "on (training folds only; never from scoring).")
    outlier_rows: Literal["none", "isolation_forest"] = Field(
        "none", description="Remove outlying rows (an isolation forest) from the rows a model is fitted "
                            "on (training folds only).")
    imbalance: Literal["none", "class_weight", "oversample", "undersample"] = Field(
        "none", description="Class imbalance: balanced class weights, or random over / under sampling "
                            "of the training folds (classification only).")
    target_transform: Literal["none", "log", "yeo-johnson", "auto"] = Field(
        "none", description="Regression only: fit on a transformed target (log1p, Yeo-Johnson, or auto: "
                            "either when the training target is skewed) and predict on the original scale.")

    @model_validator(mode="after")
    def _column_options_fit_kind(self) -> PreprocessingSpec:
        numeric = set(NumericSpec.model_fields)
        categorical = set(CategoricalSpec.model_fields)
        errors = []
        for name, column in self.columns.items():
            given = {k for k, v in column.model_dump(exclude={"kind"}).items() if v is not None}
            wrong = (given - numeric if column.kind == "numeric" else
                     given - categorical if column.kind == "categorical" else
                     given if column.kind in ("datetime", "text", "drop") else set())
            if wrong:
                errors.append((("columns", name), f"option(s) {', '.join(sorted(wrong))} do not apply "
                               f"to a {column.kind} column", sorted(wrong),
                               "remove them, or set kind to the kind they belong to"))
        _field_errors("PreprocessingSpec", errors)
        return self


class DerivedSpec(_Section):
    """One derived column, computed from an expression over the feature columns.

    The expression is parsed and checked by validation (`looml.learn.expressions`), with the
    columns it names, so that the spec module imports nothing but the core.
    """

    name: str = Field(description="The new column's name.", min_length=1)
    expr: str = Field(description="Arithmetic (+ - * / ** %), comparisons, and / or / not, numbers, "
                                  "column names (`back ticks` for names with spaces) and the functions "
                                  "log, log1p, exp, sqrt, abs, min, max, clip, where.", min_length=1)


class PolynomialSpec(_Section):
    """Polynomial and interaction features of chosen numeric columns."""

    columns: list[str] = Field(min_length=1, description="Numeric (or derived) columns to combine.")
    degree: int = Field(2, ge=2, le=4, description="Highest total degree of the products.")
    interaction_only: bool = Field(False, description="Only products of distinct columns (no squares).")


class BinningSpec(_Section):
    """Numeric columns cut into bins, one-hot encoded (added next to the column itself)."""

    columns: list[str] = Field(min_length=1, description="Numeric (or derived) columns to bin.")
    bins: int = Field(5, ge=2, le=100, description="Bins per column.")
    strategy: Literal["quantile", "uniform", "kmeans"] = Field(
        "quantile", description="Equal-count, equal-width or 1-D k-means bins.")


class RfeSpec(_Section):
    """Recursive feature elimination with a linear model."""

    n_features: int = Field(ge=1, description="Features to keep (the least with RFECV).")
    cv: bool = Field(False, description="Choose the number by 3-fold cross-validation (RFECV).")


class ImportanceSpec(_Section):
    """Keep the features a tree ensemble finds important."""

    threshold: Literal["median", "mean"] | float = Field(
        "median", description="Keep features whose importance is at least this (or the median / mean).")


class SelectionSpec(_Section):
    """Feature selection after encoding, in this order; each step is off when null."""

    variance_threshold: float | None = Field(None, ge=0.0, description="Drop features of lower variance.")
    correlation_threshold: float | None = Field(
        None, gt=0.0, le=1.0, description="Drop the later feature of each pair with |Pearson r| above this.")
    mutual_info_k: int | None = Field(None, ge=1, description="Keep the k features of highest mutual "
                                                               "information with the target.")
    rfe: RfeSpec | None = Field(None, description="Recursive feature elimination.")
    model_importance: ImportanceSpec | None = Field(None, description="Tree-importance selection.")


class PcaSpec(_Section):
    """Principal components of the selected features."""

    components: int | float = Field(description="A number of components, or a share (0..1) of the "
                                                "variance to keep.")

    @field_validator("components")
    @classmethod
    def _positive(cls, value: int | float) -> int | float:
        if (isinstance(value, float) and not 0.0 < value < 1.0) or (isinstance(value, int) and value < 1):
            raise PydanticCustomError("looml", "must be an integer >= 1 or a share between 0 and 1",
                                      {"fix": "e.g. components: 10, or components: 0.95"})
        return value


class FeaturesSpec(_Section):
    """Feature engineering: derived columns, polynomial terms, bins, selection and PCA."""

    derived: list[DerivedSpec] = Field(default_factory=list, description="Columns computed from "
                                                                         "expressions, in order.")
    polynomial: PolynomialSpec | None = Field(None, description="Polynomial / interaction features.")
    binning: BinningSpec | None = Field(None, description="Binned copies of numeric columns.")
    selection: SelectionSpec = SelectionSpec()
    pca: PcaSpec | None = Field(None, description="Principal components as the model's input.")

    @model_validator(mode="after")
    def _unique_names(self) -> FeaturesSpec:
        seen: set[str] = set()
        errors = []
        for i, derived in enumerate(self.derived):
            if derived.name in seen:
                errors.append((("derived", i, "name"), "a derived column of this name already exists",
                               derived.name, "give each derived column its own name"))
            seen.add(derived.name)
        _field_errors("FeaturesSpec", errors)
        return self


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
    ensemble: Literal["none", "voting", "stacking"] = Field(
        "none", description="Combine the top models; kept only if it beats the best single one in CV.")
    ensemble_top_k: int = Field(3, ge=2, le=10, description="How many top models the ensemble combines.")
    top_k: int = Field(10, ge=1, description="Leaderboard rows shown in the report.")
    memory_limit_mb: float | None = Field(None, gt=0, description="Skip configurations estimated to "
                                                                  "need more; default 80% of available "
                                                                  "memory.")
    executor: Literal["local"] = Field("local", description="Where trials run (local process pool).")

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


class GateSpec(_Section):
    """Thresholds a model must reach on the holdout split to be registered."""

    min: dict[str, float] = Field(default_factory=dict, description="metric -> lowest allowed value")
    max: dict[str, float] = Field(default_factory=dict, description="metric -> highest allowed value")


class EvaluationSpec(_Section):
    """How candidates are ranked and which results let a model be registered."""

    primary_metric: str = Field(
        "auto", description="Ranks the candidates; 'auto' is roc_auc (classification) or rmse (regression)."
    )
    gate: GateSpec = GateSpec()

    def metric_locations(self) -> list[tuple[tuple, str]]:
        """Every metric named in this section, with its location: (loc, metric)."""
        primary = self.primary_metric
        named = [(("primary_metric",), primary)] if primary != "auto" else []
        named += [(("gate", "min", n), n) for n in self.gate.min]
        return named + [(("gate", "max", n), n) for n in self.gate.max]

    @model_validator(mode="after")
    def _known_metrics(self) -> EvaluationSpec:
        known = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
        listing = (f"classification: {', '.join(CLASSIFICATION_METRICS)}; "
                   f"regression: {', '.join(REGRESSION_METRICS)}")
        _field_errors("EvaluationSpec", [
            (loc, "unknown metric", name, did_you_mean(name, known) or f"known metrics: {listing}")
            for loc, name in self.metric_locations() if name not in known
        ])
        return self


class RegistrySpec(_Section):
    """The registered model name in the MLflow registry."""

    model_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class TrackingSpec(_Section):
    """The MLflow tracking store. The default is an embedded SQLite file under .looml/."""

    uri: str = Field("sqlite:///.looml/mlflow.db", description="Any MLflow tracking URI.")
    experiment: str = Field("looml", min_length=1)


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
    flush_seconds: float = Field(5.0, gt=0, description="... or when the oldest buffered row is this old.")
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
    auth_token_env: str | None = Field(None, description="If set, predict, feedback and admin endpoints "
                                                         "require 'Authorization: Bearer <the value of "
                                                         "this environment variable>'.")
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


_OPERATIONAL = frozenset({"project_dir", "serve", "monitor", "alerts", "loop"})


class Spec(_Section):
    """The whole looml.yaml."""

    seed: int = Field(42, ge=0, description="The one seed for splits, folds and models.")
    data: DataSpec
    validation: ValidationSpec = ValidationSpec()
    split: SplitSpec = SplitSpec()
    preprocessing: PreprocessingSpec = PreprocessingSpec()
    features: FeaturesSpec = FeaturesSpec()
    models: ModelsSpec = ModelsSpec()
    tuning: TuningSpec = TuningSpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    registry: RegistrySpec
    tracking: TrackingSpec = TrackingSpec()
    serve: ServeSpec = ServeSpec()
    monitor: MonitorSpec = MonitorSpec()
    alerts: AlertsSpec = AlertsSpec()
    loop: LoopSpec = LoopSpec()
    project_dir: Path = Field(Path("."), exclude=True, description="Set by load_spec; not a YAML key.")

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> Spec:
        # Caught here rather than after training: a metric of the other task cannot rank or gate.
        named = [(("evaluation", *loc), name) for loc, name in self.evaluation.metric_locations()]
        task = self.data.task
        if task != "auto":
            _field_errors("Spec", [
                (loc, f"not a {task} metric, and data.task is {task!r}", name,
                 f"use one of {', '.join(_METRICS[task])}")
                for loc, name in named if name not in _METRICS[task]
            ])
        tasks = {t for _, name in named for t, metrics in _METRICS.items() if name in metrics}
        if len(tasks) > 1:
            _field_errors("Spec", [(
                ("evaluation",),
                "mixes classification and regression metrics: "
                + ", ".join(f"{'.'.join(loc[1:])}: {name}" for loc, name in named),
                None, "name metrics of one task only (classification: roc_auc, accuracy, ...; "
                      "regression: rmse, mae, r2)",
            )])
        return self

    def section_hash(self, *names: str) -> str:
        """A stable hash of the named sections (used in cache keys and lineage)."""
        payload = {n: getattr(self, n) for n in names}
        blob = json.dumps(
            {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in payload.items()},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def spec_hash(self) -> str:
        """Hash of the sections that make the model: everything but where the spec lives and how
        the model is served and watched (`serve`, `monitor`, `alerts`, `loop`), so changing those
        never registers a new version."""
        return self.section_hash(*[n for n in type(self).model_fields if n not in _OPERATIONAL])

    def resolve(self, path: str) -> Path:
        """A path from the spec, relative to the spec file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.project_dir / p


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of looml.yaml, for editors and `looml schema`."""
    schema = Spec.model_json_schema()
    schema["properties"].pop("project_dir", None)
    schema["title"] = "looml.yaml"
    return schema


def load_spec(path: str | Path) -> Spec:
    """Read and validate a looml.yaml; raise `SpecError` listing every problem at once."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(Problem(
            loc=str(path), message="spec file not found",
            fix="pass the path to looml.yaml, or create one with `looml init --data FILE --target COL`",
        ))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(Problem(loc=str(path), message=f"cannot read the spec file: {exc}",
                                fix="save looml.yaml as UTF-8 text")) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            reason += f" ({context} that starts on line {context_mark.line + 1})"
        raise SpecError(Problem(
            loc=str(path), line=line, message=f"malformed YAML: {reason}",
            fix="check indentation and quoting near that line",
        )) from exc
    if not isinstance(raw, dict):
        raise SpecError(Problem(
            loc=str(path),
            message=("the spec file is empty" if raw is None else
                     "expected a YAML mapping of sections (data:, registry:, ...)"),
            value=None if raw is None else type(raw).__name__,
            fix="see `looml init` for a starter spec",
        ))
    duplicates = yaml_duplicate_keys(node)
    try:
        spec = validate_spec(raw, project_dir=path.parent.resolve(), lines=yaml_lines(node))
    except SpecError as exc:
        raise SpecError([*duplicates, *exc.problems]) from exc.__cause__
    if duplicates:
        raise SpecError(duplicates)
    return spec


def validate_spec(raw: dict[str, Any], project_dir: Path, lines: dict[tuple, int] | None = None) -> Spec:
    """Validate a spec already parsed into a dict; raise `SpecError` with every problem."""
    if "project_dir" in raw:
        raise SpecError(Problem(loc="project_dir", message="not a spec key; it is set by looml",
                                fix="remove it"))
    try:
        return Spec.model_validate({**raw, "project_dir": project_dir})
    except ValidationError as exc:
        raise SpecError([_problem(err, lines or {}) for err in exc.errors()]) from exc


_SOURCE_KINDS = ("file", "sql", "http", "python")
_PATTERN_FIXES = {
    r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$":
        "use letters, digits, '_', '.' and '-' only, starting with a letter or digit",
    r"^https?://": "give a full URL starting with http:// or https://",
    r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$": "write it as 'module:function', e.g. 'loaders:load_orders'",
}


def _problem(err: Any, lines: dict[tuple, int]) -> Problem:
    tagged = tuple(err["loc"])
    # pydantic puts a union's tag in the location (data.source.sql.url); the YAML has no such key.
    loc = tuple(p for i, p in enumerate(tagged)
                if not (i and tagged[i - 1] == "source" and p in _SOURCE_KINDS))
    dotted = ".".join(str(part) for part in loc) or "(root)"
    line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _fields_at(Spec, tagged[:-1])
        hint = did_you_mean(str(loc[-1]), allowed)
        fix = hint or f"allowed keys here: {', '.join(allowed)}"
        return Problem(loc=dotted, line=line, message="unknown key", fix=fix)
    if kind == "missing":
        parent = ".".join(str(part) for part in loc[:-1])
        where = f"under `{parent}:`" if parent else "at the top level"
        return Problem(loc=dotted, line=line, message="required key is missing",
                       fix=f"add `{loc[-1]}:` {where}")
    message = err["msg"]
    if kind == "union_tag_invalid":
        tag = str(err.get("ctx", {}).get("tag", ""))
        return Problem(loc=f"{dotted}.kind", line=lines.get((*loc, "kind"), line),
                       message="unknown source kind", value=tag,
                       fix=did_you_mean(tag, _SOURCE_KINDS) or f"use one of {', '.join(_SOURCE_KINDS)}")
    if kind in ("model_type", "model_attributes_type") and loc[-1:] == ("source",):
        return Problem(loc=dotted, line=line, message="expected a file path, or a mapping with "
                       f"kind: {' | '.join(_SOURCE_KINDS)}", value=err.get("input"),
                       fix="e.g. `source: data.csv`, or `source: {kind: sql, url: ..., table: ...}`")
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        choices = re.findall(r"'([^']*)'", expected)
        suggestion = did_you_mean(str(err.get("input")), choices)
        return Problem(loc=dotted, line=line, message=f"expected one of {expected}",
                       value=err.get("input"), fix=suggestion or f"use one of {', '.join(choices)}")
    value = err.get("input")
    if isinstance(value, dict | list):
        value = None
    fix = err.get("ctx", {}).get("fix", "") if kind == "looml" else ""
    if kind == "string_pattern_mismatch":
        fix = _PATTERN_FIXES.get(err.get("ctx", {}).get("pattern", ""), "")
    return Problem(loc=dotted, line=line, message=message.removeprefix("Value error, "),
                   value=value, fix=fix)


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of the model found by walking `loc` (union tags included) down from `model`."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not _is_model(current) and isinstance(current, tuple):  # a tagged union: pick by tag
            current = next((m for m in current if m.model_fields["kind"].default == part
                            or get_args(m.model_fields["kind"].annotation) == (part,)), None)
            continue
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:
            return []
        members = _union_models(field.annotation)
        current = members if len(members) > 1 else _inner_model(field.annotation)
    return [n for n in current.model_fields if n != "project_dir"] if _is_model(current) else []


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _union_models(annotation: Any) -> tuple:
    """The models of a (possibly Annotated) union of models, or ()."""
    args = get_args(annotation)
    if args and get_origin(annotation) is Annotated:
        return _union_models(args[0])
    return tuple(a for a in args if _is_model(a))


def _inner_model(annotation: Any) -> Any:
    if _is_model(annotation):
        return annotation
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def yaml_duplicate_keys(node: yaml.Node | None, prefix: str = "") -> list[Problem]:
    """A key given twice in one mapping: YAML keeps the last silently, looml refuses.

    `prefix` starts each location (a file name, say)."""
    problems: list[Problem] = []

    def walk(n: yaml.Node, path: tuple) -> None:
        if isinstance(n, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in n.value:
                line = key.start_mark.line + 1
                if key.value in first:
                    problems.append(Problem(
                        loc=prefix + ".".join(str(p) for p in (*path, key.value)), line=line,
                        message=f"duplicate key (first on line {first[key.value]}); YAML would "
                                "silently keep only the last one",
                        fix="merge the two into one key"))
                first.setdefault(key.value, line)
                walk(value, (*path, key.value))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return problems


def yaml_lines(node: yaml.Node | None) -> dict[tuple, int]:
    """Map each YAML path (keys and list indexes) to its 1-based line number."""
    index: dict[tuple, int] = {}

    def walk(n: yaml.Node, path: tuple) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                p = (*path, key.value)
                index[p] = key.start_mark.line + 1
                walk(value, p)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                index[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return index
