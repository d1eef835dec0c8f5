"""The `data`, `validation` and `split` sections: where the rows come from, the checks they
must pass, and how they are split."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from looml.spec._base import Task, _field_errors, _Section


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
    table: str | None = Field(None, min_length=1, description="A table (or schema.table) to read whole.")
    query: str | None = Field(None, min_length=1, description="A SELECT query.")
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
    positive_class: str | int | bool | None = Field(
        None, description="Binary classification: the class whose probability roc_auc, average_precision, "
                          "precision / recall / f1 and the ROC curve are about; default the second in "
                          "sorted order.")
    sample_weight: str | None = Field(
        None, description="A numeric column (>= 0) of row weights: used in fitting where the estimator "
                          "takes sample_weight, in CV scores and in the holdout metrics; never a feature.")

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
        # YAML 1.1 reads a bare `off` (and `no`) as false: it is the documented `off`.
        field = cls.model_fields[info.field_name]
        if value is False and field.annotation is CheckSpec:
            value = "off"
        if isinstance(value, dict) and value.get("severity") is False:
            value = {**value, "severity": "off"}
        if isinstance(value, str) and field.annotation is CheckSpec:
            return {"severity": value, "threshold": field.default_factory().threshold}
        if isinstance(value, dict) and field.annotation is CheckSpec:
            default = field.default_factory()
            return {"severity": default.severity, "threshold": default.threshold, **value}
        return value

    def checks(self) -> dict[str, CheckSpec]:
        """Every check by name."""
        return {n: getattr(self, n) for n, f in type(self).model_fields.items() if f.annotation is CheckSpec}


class SplitBy(_Section):
    """What keeps rows together or in order: a time column or a group column (one of the two)."""

    time: str | None = Field(None, min_length=1, description="A date, datetime or numeric column: the "
                             "holdout is the latest period and the CV folds chain forward (train on the "
                             "past, score the next block). It need not be a feature.")
    group: str | None = Field(None, min_length=1, description="A column of group ids (customer, patient, "
                              "store): the rows of one group stay on one side, in the holdout and in every "
                              "CV fold.")

    @model_validator(mode="after")
    def _one_of(self) -> SplitBy:
        if (self.time is None) == (self.group is None):
            both = self.time is not None
            _field_errors("SplitBy", [((), "time and group together are not supported" if both
                                       else "give `time: COLUMN` or `group: COLUMN`", None,
                                       "keep one: a time split already keeps the future out; for groups "
                                       "over time, split by time" if both
                                       else "e.g. `by: {time: signup_date}` or `by: {group: customer_id}`")])
        return self

    @property
    def column(self) -> str:
        """The split column."""
        return self.time or self.group or ""

    @property
    def kind(self) -> str:
        """'time' or 'group'."""
        return "time" if self.time is not None else "group"


class SplitSpec(_Section):
    """How the training and holdout test splits and the CV folds are made."""

    by: SplitBy | None = Field(None, description="Split by time ({time: COLUMN}) or by group "
                               "({group: COLUMN}); default a random split, stratified for classification.")

    test_size: float = Field(0.2, gt=0.0, lt=1.0, description="Share of rows held out for evaluate.")
    folds: int = Field(5, ge=2, le=50, description="Cross-validation folds on the training split.")
    refit_all: bool = Field(True, description="After the holdout evaluation, refit the chosen configuration "
                            "on every row (training and holdout) and register that; the holdout metrics "
                            "are those of the same configuration fitted on the training split. false: "
                            "register the very pipeline that was evaluated.")
