"""Checks of the settings that decide how rows are split, weighted and scored, made on the data's
profile before any work: the split column (`split.by`), `data.sample_weight`,
`data.positive_class`, and rmsle against a negative target. Part of `validate`."""

from __future__ import annotations

from typing import Any

from looml.data.profile import ColumnProfile, Profile
from looml.errors import Problem, did_you_mean
from looml.spec import DataSpec, SplitSpec

__all__ = ["class_index", "split_problems"]

_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}


def class_index(names: list[str], declared: Any) -> int:
    """The position of the declared class among class `names` (as text): exact, else ignoring
    case; YAML's true / yes (a bare `yes` reads as true) also match a class named true, yes, 1 ...
    -1 when none or several match."""
    text = str(declared)
    for same in (lambda n: n == text, lambda n: n.lower() == text.lower(),
                 lambda n: isinstance(declared, bool) and n.lower() in (_TRUE if declared else _FALSE)):
        found = [i for i, name in enumerate(names) if same(name)]
        if len(found) == 1:
            return found[0]
    return -1


def split_problems(profile: Profile, data: DataSpec, split: SplitSpec, task: str,
                   metrics: list[tuple[str, str]]) -> tuple[list[Problem], list[str], set[str]]:
    """(problems, warnings, columns kept out of the features) of the split, weight and scoring
    settings. `metrics` are the (location, name) of the metrics the spec names."""
    names = profile.names
    problems: list[Problem] = []
    warnings: list[str] = []
    excluded: set[str] = set()
    target = profile.column(data.target) if data.target in names else None
    by = split.by
    if by is not None:
        loc = f"split.by.{by.kind}"
        column = by.column
        if column not in names:
            problems.append(_unknown(loc, column, names))
        elif column == data.target:
            problems.append(Problem(loc=loc, value=column, message="the target cannot be the split column",
                                    fix="split by another column, such as a date or an id of the group"))
        else:
            problems += _split_column(profile.column(column), loc, by.kind, split, warnings)
    if data.sample_weight is not None:
        name = data.sample_weight
        excluded.add(name)
        if name not in names:
            problems.append(_unknown("data.sample_weight", name, names))
        elif name == data.target:
            problems.append(Problem(loc="data.sample_weight", value=name,
                                    message="the target cannot also be the sample weight",
                                    fix="name a column of row weights"))
        else:
            problems += _weights(profile.column(name))
    if data.positive_class is not None and target is not None:
        problems += _positive(target, data.positive_class, task)
    if target is not None and target.kind == "numeric" and (target.min or 0) < 0:
        problems += [Problem(loc=f"evaluation.{loc}", value=name,
                             message=f"rmsle needs a target >= 0, but {data.target!r} goes down to "
                                     f"{target.min:g}", fix="use rmse or mae, or shift the target")
                     for loc, name in metrics if name == "rmsle"]
    return problems, warnings, excluded


def _split_column(col: ColumnProfile, loc: str, kind: str, split: SplitSpec,
                  warnings: list[str]) -> list[Problem]:
    present = col.n_unique
    if kind == "time":
        if col.kind not in ("datetime", "numeric"):
            return [Problem(loc=loc, value=col.name,
                            message=f"a time split needs a date, datetime or numeric column; {col.name!r} "
                                    f"is {col.dtype}",
                            fix="parse it as a date in the source (or give a numeric period), or split by "
                                "another column")]
        if col.missing:
            warnings.append(f"{col.missing} rows have no {col.name!r} (split.by.time) and are left out of "
                            "both splits")
        if present < split.folds + 2:
            return [Problem(loc=loc, value=col.name,
                            message=f"{col.name!r} has {present} distinct values: too few for a later "
                                    f"holdout period and {split.folds} forward-chaining folds (needs "
                                    f"{split.folds + 2})",
                            fix="lower split.folds, or split by a finer time column")]
        return []
    if present + (1 if col.missing else 0) < split.folds + 1:
        return [Problem(loc=loc, value=col.name,
                        message=f"{col.name!r} has {present} groups: too few for a holdout and "
                                f"{split.folds} grouped folds (needs {split.folds + 1})",
                        fix=f"lower split.folds to {max(2, present - 1)}, or split by a column with more "
                            "groups")]
    return []


def _weights(col: ColumnProfile) -> list[Problem]:
    if col.kind != "numeric":
        return [Problem(loc="data.sample_weight", value=col.name,
                        message=f"sample weights must be numbers; {col.name!r} is {col.dtype}",
                        fix="name a numeric column of weights >= 0")]
    problems = []
    if col.min is not None and col.min < 0:
        problems.append(Problem(loc="data.sample_weight", value=col.name,
                                message=f"sample weights must be >= 0; {col.name!r} has {col.negatives} "
                                        f"negative values (down to {col.min:g})",
                                fix="fix or drop those rows, or name another column"))
    bad = col.missing + (col.nans or 0) + (col.infinite or 0)
    if bad:
        problems.append(Problem(loc="data.sample_weight", value=col.name,
                                message=f"{bad} rows have a missing or infinite weight in {col.name!r}",
                                fix="fill them (e.g. with 1) or drop those rows"))
    if col.max is not None and col.max <= 0 and not problems:
        problems.append(Problem(loc="data.sample_weight", value=col.name,
                                message=f"every weight in {col.name!r} is 0", fix="name a column of weights"))
    return problems


def _positive(target: ColumnProfile, declared: Any, task: str) -> list[Problem]:
    seen = list(target.top_values)
    if task != "classification" or len(seen) != 2:
        what = "regression" if task != "classification" else f"{len(seen)} classes"
        return [Problem(loc="data.positive_class", value=declared,
                        message=f"a positive class applies to binary classification; this task is {what}",
                        fix="remove data.positive_class")]
    if class_index(seen, declared) < 0:
        return [Problem(loc="data.positive_class", value=declared,
                        message=f"not a class of {target.name!r}; its values are "
                                f"{', '.join(map(repr, seen))}",
                        fix=f"use one of {', '.join(sorted(seen))}")]
    return []


def _unknown(loc: str, name: str, names: list[str]) -> Problem:
    return Problem(loc=loc, value=name, message="no such column in the data",
                   fix=did_you_mean(name, names) or f"the columns are: {_list(names)}")


def _list(names: list[str]) -> str:
    return ", ".join(names[:30]) + (" ..." if len(names) > 30 else "")

