"""Validate: check the data against the spec, infer the task and each column's role.

Every problem is collected and raised once as a `DataError`.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from looml.data.profile import ColumnProfile, Profile
from looml.data.split_checks import split_problems
from looml.errors import DataError, Problem, did_you_mean
from looml.spec import DataSpec, FeaturesSpec, PreprocessingSpec, SplitSpec

__all__ = ["ValidationReport", "validate"]

_MAX_CLASSES_FOR_INTEGER_TARGET = 20
_TEXT_MIN_DISTINCT = 20  # a free-text column: many distinct values ...
_TEXT_MIN_WORDS = 3.0  # ... of several words on average (among its most frequent values) ...
_TEXT_MIN_LENGTH = 15.0  # ... and this many characters on average ...
_TEXT_MIN_VOCABULARY = 8  # ... using this many different words (a template such as "order 123" does not)
_ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key)$|^(id|uuid|guid)([_\W]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class ValidationReport:
    """What validation decided: the task, each feature's kind, what was dropped and why."""

    task: str  # classification | regression
    task_reason: str
    target: str
    features: dict[str, str]  # column -> numeric | categorical | datetime | text
    dropped: dict[str, str]  # column -> reason
    target_missing: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """Rebuild from `to_dict` output."""
        return cls(**data)


def validate(profile: Profile, data: DataSpec, split: SplitSpec, preprocessing: PreprocessingSpec,
             engineering: FeaturesSpec | None = None,
             kept_out: dict[str, str] | None = None,
             metrics: list[tuple[str, str]] | None = None) -> ValidationReport:
    """Check `profile` against the spec; return the decisions or raise every problem at once.

    `kept_out` names further columns that are not features (column -> why), e.g. the sensitive
    columns of the fairness analysis.

    Includes the column names that `preprocessing.columns` and `features` (derived columns,
    polynomial, binning) refer to, and the row-level options that must fit the task; and the
    split column, sample weights and positive class (`looml.data.split_checks`, with `metrics`:
    the (location, name) of the metrics the spec names, for rmsle's check).
    """
    problems: list[Problem] = []
    names = profile.names
    for loc, columns in (("data.id_columns", data.id_columns), ("data.drop_columns", data.drop_columns)):
        for i, name in enumerate(columns):
            if name not in names:
                problems.append(_unknown_column(f"{loc}[{i}]", name, names))
            elif name == data.target:
                problems.append(Problem(loc=f"{loc}[{i}]", value=name,
                                        message="the target column cannot also be excluded",
                                        fix=f"remove {name!r} from {loc}"))
    if data.target not in names:
        problems.append(_unknown_column("data.target", data.target, names))
        raise DataError(problems)

    target = profile.column(data.target)
    usable = profile.rows - target.missing
    task, task_reason = _infer_task(target, data.task)
    classes: dict[str, int] = {}
    if usable == 0:
        problems.append(Problem(loc="data.target", value=data.target,
                                message="the target column has no values (all null)",
                                fix="choose a target column that has values"))
    elif target.infinite or target.nans:
        # A float target read from "inf" / "nan" text: no estimator or split takes those values.
        problems.append(Problem(
            loc="data.target", value=data.target,
            message=f"the target has {target.infinite or 0} infinite and {target.nans or 0} NaN values",
            fix="correct those rows, or leave their target cells empty (rows without a target are "
                "left out)"))
    elif task == "regression" and target.kind != "numeric":
        problems.append(Problem(
            loc="data.target", value=data.target,
            message=f"a regression target must be numeric, but {data.target!r} is {target.dtype}"
                    + _examples(target),
            fix="clean the column to numbers, or set data.task: classification",
        ))
    elif task == "classification":
        classes = target.top_values
        problems += _check_classes(target, data.task, classes, usable, split)

    train_rows = usable - math.ceil(usable * split.test_size)
    if usable and train_rows < split.folds:
        problems.append(Problem(
            loc="split.folds", value=split.folds,
            message=f"only {train_rows} training rows (of {usable} with a target) for "
                    f"{split.folds} cross-validation folds",
            fix="add rows, or lower split.folds / split.test_size",
        ))

    found, split_warnings, weights = split_problems(profile, data, split, task, metrics or [])
    problems += found
    excluded = {n: "data.sample_weight (row weights, never a feature)" for n in weights}
    excluded |= {n: "listed in data.id_columns" for n in data.id_columns}
    excluded |= {n: "listed in data.drop_columns" for n in data.drop_columns}
    excluded |= {n: why for n, why in (kept_out or {}).items() if n in names and n != data.target}
    kinds = {n: c.kind for n, c in preprocessing.columns.items() if c.kind is not None}
    features, dropped = _roles(profile, data.target, excluded, preprocessing.drop_id_like, kinds)
    problems += _preprocessing_problems(preprocessing, names, data.target, task, target)
    problems += _override_problems(preprocessing, features)
    problems += _engineering_problems(engineering or FeaturesSpec(), features, dropped, names)
    if not features and data.target in names:
        problems.append(Problem(loc="data", message="no usable feature columns remain",
                                value=sorted(dropped.items()),
                                fix="check data.drop_columns / data.id_columns and the data's columns"))
    if problems:
        raise DataError(problems)

    warnings = [f"dropped column {n!r}: {why}" for n, why in dropped.items() if n not in excluded]
    warnings += split_warnings
    if target.missing:
        warnings.append(f"{target.missing} rows have no target value and are left out")
    if task == "classification":
        rare = [c for c, n in classes.items() if n < split.folds]
        if rare:
            warnings.append(f"classes with fewer rows than folds ({split.folds}): {', '.join(rare)}; "
                            "their CV scores are noisy")
    return ValidationReport(task=task, task_reason=task_reason, target=data.target,
                            features=features, dropped=dropped, target_missing=target.missing,
                            classes=classes, warnings=warnings)


def _unknown_column(loc: str, name: str, names: list[str]) -> Problem:
    hint = did_you_mean(name, names)
    listing = ", ".join(names[:30]) + (" ..." if len(names) > 30 else "")
    return Problem(loc=loc, value=name, message="no such column in the data",
                   fix=hint or f"the columns are: {listing}")


def _examples(column: ColumnProfile) -> str:
    values = list(column.top_values)[:3]
    return f" (values such as {', '.join(map(repr, values))})" if values else ""


def _infer_task(target: ColumnProfile, declared: str) -> tuple[str, str]:
    if declared != "auto":
        return declared, "set in data.task"
    if target.kind != "numeric":
        return "classification", f"the target is {target.dtype}"
    if target.integral and target.n_unique <= _MAX_CLASSES_FOR_INTEGER_TARGET:
        return "classification", f"the target has {target.n_unique} distinct whole-number values"
    return "regression", f"the target is numeric with {target.n_unique} distinct values"


def _check_classes(column: ColumnProfile, declared: str, classes: dict[str, int], usable: int,
                   split: SplitSpec) -> list[Problem]:
    target = column.name
    if len(classes) == 1:
        return [Problem(loc="data.target", value=target,
                        message=f"classification needs at least two classes; the target has only "
                                f"{next(iter(classes))!r}",
                        fix="check the target column, or filter the data so that it has both outcomes")]
    if not classes:  # more distinct values than the profile keeps: not a classification target
        if declared == "auto" and column.kind != "numeric":
            return [Problem(
                loc="data.target", value=target,
                message=f"the target is {column.dtype} with {column.n_unique} distinct values: too "
                        "many classes for classification, and not numbers for regression",
                fix="if it holds numbers, clean them (e.g. remove units or placeholders like '?') "
                    "so the column reads as numeric; otherwise choose another target",
            )]
        return [Problem(loc="data.task", value="classification",
                        message=f"the target {target!r} has {column.n_unique} distinct values, too "
                                "many for classification",
                        fix="set data.task: regression, or bin the target")]
    problems = []
    singletons = [c for c, n in classes.items() if n < 2]
    if singletons:
        problems.append(Problem(
            loc="data.target", value=singletons[:10],
            message=f"{len(singletons)} class(es) have a single row, too few for a stratified split",
            fix="merge or drop the rarest classes before training",
        ))
    n_test = math.ceil(usable * split.test_size)
    if n_test < len(classes):
        problems.append(Problem(
            loc="split.test_size", value=split.test_size,
            message=f"the holdout would have {n_test} rows for {len(classes)} classes",
            fix="raise split.test_size, or add rows",
        ))
    if len(classes) == 2 and not singletons:
        rarer, count = min(classes.items(), key=lambda item: item[1])
        in_training = count - math.ceil(count * split.test_size)
        if in_training < split.folds:
            problems.append(Problem(
                loc="split.folds", value=split.folds,
                message=f"the rarer class {rarer!r} has {in_training} training rows, fewer than the "
                        f"{split.folds} folds: some folds would have none and their ROC AUC is undefined",
                fix=f"set split.folds to {max(2, in_training)} or fewer, or add rows of class {rarer!r}",
            ))
    return problems


def _roles(profile: Profile, target: str, excluded: dict[str, str], drop_id_like: bool,
           kinds: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Each column's kind (numeric | categorical | datetime | text), or why it was dropped.

    `kinds` are the kinds set in preprocessing.columns; they win over inference (and over
    the id-like rule), but a column without values or with one value is still dropped.
    """
    kinds = kinds or {}
    features: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for col in profile.columns:
        if col.name == target:
            continue
        present = profile.rows - col.missing
        if col.name in excluded:
            dropped[col.name] = excluded[col.name]
        elif kinds.get(col.name) == "drop":
            dropped[col.name] = "preprocessing.columns sets kind: drop"
        elif present == 0:
            dropped[col.name] = "all values are missing"
        elif col.n_unique <= 1:
            dropped[col.name] = f"constant (only {next(iter(col.top_values), 'one value')!r})"
        elif col.name in kinds:
            features[col.name] = kinds[col.name]
        elif col.kind == "other":
            dropped[col.name] = f"unsupported type {col.dtype}"
        elif col.kind == "string" and _free_text(col):
            features[col.name] = "text"
        elif drop_id_like and _id_like(col, present):
            dropped[col.name] = f"id-like ({col.n_unique} distinct values in {present} rows)"
        elif col.kind == "datetime":
            features[col.name] = "datetime"
        elif col.kind == "numeric":
            features[col.name] = "numeric"
        else:
            features[col.name] = "categorical"
    return features, dropped


def _id_like(col: ColumnProfile, present: int) -> bool:
    if present < 20:
        return False
    if col.kind == "string":
        return col.n_unique >= 0.9 * present
    if col.kind == "numeric" and col.integral and col.n_unique == present:
        consecutive = col.min is not None and col.max is not None and col.max - col.min + 1 == present
        return consecutive or bool(_ID_NAME.search(col.name))
    return False


def _free_text(col: ColumnProfile) -> bool:
    """Many distinct values of several words each: sentences, not codes, ids or labels."""
    if col.n_unique < _TEXT_MIN_DISTINCT or not col.frequent or (col.length_mean or 0) < _TEXT_MIN_LENGTH:
        return False
    words = [w.lower() for v in col.frequent for w in str(v).split()]
    vocabulary = {w for w in words if w.isalpha()}
    return len(words) / len(col.frequent) >= _TEXT_MIN_WORDS and len(vocabulary) >= _TEXT_MIN_VOCABULARY


def _preprocessing_problems(preprocessing: PreprocessingSpec, names: list[str], target: str, task: str,
                            target_profile: ColumnProfile) -> list[Problem]:
    """Unknown columns in preprocessing.columns; row-level options that do not fit the task or target."""
    problems = [_unknown_column(f"preprocessing.columns.{name}", name, names)
                for name in preprocessing.columns if name not in names]
    if target in preprocessing.columns:
        problems.append(Problem(loc=f"preprocessing.columns.{target}", value=target,
                                message="the target column is not a feature", fix=f"remove {target!r}"))
    transform = preprocessing.target_transform
    if task == "classification" and transform != "none":
        problems.append(Problem(loc="preprocessing.target_transform", value=transform,
                                message="a target transform applies to regression only, and the task is "
                                        "classification", fix="remove it (or set data.task: regression)"))
    if task == "regression" and transform == "log" and target_profile.min is not None \
            and target_profile.min <= -1:
        problems.append(Problem(loc="preprocessing.target_transform", value="log",
                                message="log1p needs target values > -1; the smallest is "
                                        f"{target_profile.min:g}",
                                fix="use target_transform: yeo-johnson (or auto)"))
    if task == "regression" and preprocessing.imbalance != "none":
        problems.append(Problem(loc="preprocessing.imbalance", value=preprocessing.imbalance,
                                message="class imbalance handling applies to classification only",
                                fix="remove it"))
    return problems


def _override_problems(preprocessing: PreprocessingSpec, features: dict[str, str]) -> list[Problem]:
    """Options in preprocessing.columns that do not fit the column's (inferred) kind."""
    problems = []
    for name, column in preprocessing.columns.items():
        if column.kind is not None or name not in features:
            continue  # with a kind, the spec has checked them; an unknown name is reported above
        given = {k for k, v in column.model_dump(exclude={"kind"}).items() if v is not None}
        wrong = sorted(given - set(column.options(features[name])))
        if wrong:
            problems.append(Problem(
                loc=f"preprocessing.columns.{name}", value=wrong,
                message=f"option(s) {', '.join(wrong)} do not apply to {name!r}, a {features[name]} column",
                fix="remove them, or set the column's kind"))
    return problems


def _engineering_problems(engineering: FeaturesSpec, features: dict[str, str], dropped: dict[str, str],
                          names: list[str]) -> list[Problem]:
    """Derived expressions parse; the columns they, polynomial and binning name are numeric features."""
    from looml.learn.expressions import ExpressionError, parse

    problems: list[Problem] = []
    numeric = {n for n, k in features.items() if k == "numeric"}
    known = list(names)  # and the derived columns so far

    def check(loc: str, column: str) -> None:
        if column in numeric:
            return
        if column in features:
            problems.append(Problem(loc=loc, value=column,
                                    message=f"{column!r} is a {features[column]} column, not numeric",
                                    fix="use numeric columns, or set its kind: numeric in "
                                        "preprocessing.columns"))
        elif column in dropped:
            problems.append(Problem(loc=loc, value=column, message=f"{column!r} is not a feature: "
                                    f"{dropped[column]}", fix="use a feature column"))
        else:
            problems.append(_unknown_column(loc, column, known))

    for i, derived in enumerate(engineering.derived):
        if derived.name in names:
            problems.append(Problem(loc=f"features.derived[{i}].name", value=derived.name,
                                    message="the data already has a column of this name",
                                    fix="give the derived column a new name"))
        try:
            for column in parse(derived.expr).columns:  # a derived column reads earlier ones only
                check(f"features.derived[{i}].expr", column)
        except ExpressionError as exc:
            problems.append(Problem(loc=f"features.derived[{i}].expr", value=derived.expr, message=str(exc),
                                    fix=exc.fix))
        numeric.add(derived.name)
        known += [derived.name] if derived.name not in known else []
    for section in ("polynomial", "binning"):
        chosen = getattr(engineering, section)
        for i, column in enumerate(chosen.columns if chosen is not None else []):
            check(f"features.{section}.columns[{i}]", column)
    return problems
