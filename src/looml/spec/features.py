"""The `preprocessing` and `features` sections: how the columns become the model's input."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from looml.spec._base import _field_errors, _Section


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
    components: int = Field(50, ge=0, description="Project each column's term weights on at most this "
                            "many singular directions (latent semantic analysis); 0 keeps the terms.")


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
