"""The evaluation gate: thresholds a model must reach on the holdout to be registered, and the
checks that what the `evaluation` section names fits the data (before any training)."""

from __future__ import annotations

import math
from typing import Any

from looml.errors import Problem, SpecError, did_you_mean
from looml.spec import CLASSIFICATION_METRICS, REGRESSION_METRICS, EvaluationSpec, GateSpec
from looml.spec.modeling import FAIRNESS_HIGHER_IS_FAIRER, FAIRNESS_METRIC_NAMES, FAIRNESS_METRICS

__all__ = ["check_analysis_columns", "check_gate", "check_metrics_fit_task", "task_kind"]


def task_kind(task: str, n_classes: int) -> str:
    """binary | multiclass | regression: what decides which fairness measures exist."""
    if task == "regression":
        return "regression"
    return "binary" if n_classes <= 2 else "multiclass"


def check_metrics_fit_task(evaluation: EvaluationSpec, task: str, n_classes: int = 2) -> None:
    """Raise one `SpecError` for every metric in `evaluation` that the (inferred) task lacks."""
    known = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    kind = task_kind(task, n_classes)
    fair = FAIRNESS_METRICS[kind]
    problems = []
    custom = {*evaluation.custom_paths, *(p.rpartition(":")[2] for p in evaluation.custom_paths)}
    for loc, metric in evaluation.metric_locations():
        where = ".".join(("evaluation", *loc))
        if metric in custom:
            continue
        if metric in FAIRNESS_METRIC_NAMES:
            if metric not in fair:
                problems.append(Problem(loc=where, value=metric,
                                        message=f"not a fairness measure of a {kind} task",
                                        fix=f"use one of: {', '.join(fair)}"))
        elif metric not in known:
            problems.append(Problem(loc=where, value=metric,
                                    message=f"not a {task} metric (the task is {task})",
                                    fix=f"use one of: {', '.join(known)}"))
    if problems:
        raise SpecError(problems)


def check_analysis_columns(evaluation: EvaluationSpec, columns: list[str], target: str) -> list[Problem]:
    """Every sensitive or slice column the data lacks (with a did-you-mean), or that is the target."""
    problems = []
    for key in ("sensitive_columns", "slices"):
        for i, name in enumerate(getattr(evaluation, key)):
            loc = f"evaluation.{key}[{i}]"
            if name == target:
                problems.append(Problem(loc=loc, value=name, message="the target cannot be analysed as "
                                        "a column of groups", fix=f"remove {name!r} from evaluation.{key}"))
            elif name not in columns:
                listing = ", ".join(columns[:30]) + (" ..." if len(columns) > 30 else "")
                problems.append(Problem(loc=loc, value=name, message="no such column in the data",
                                        fix=did_you_mean(name, columns) or f"the columns are: {listing}"))
    return problems


def check_gate(metrics: dict[str, float], gate: GateSpec,
               fairness: dict[str, Any] | None = None) -> list[Problem]:
    """Every gate threshold the holdout metrics (or the fairness disparities) miss; empty when the
    gate passes. A fairness failure names the column, the two groups and the gap."""
    failures = []
    disparities = (fairness or {}).get("disparities", {})
    for bound, limits in (("min", gate.min), ("max", gate.max)):
        side = "below the minimum" if bound == "min" else "above the maximum"
        for metric, limit in limits.items():
            if metric in FAIRNESS_METRIC_NAMES:
                failures += _fairness_failures(metric, bound, limit, disparities)
                continue
            value = metrics[metric]  # check_metrics_fit_task ran first: the task has it
            if math.isnan(value) or (bound == "min" and value < limit) or (bound == "max" and value > limit):
                failures.append(Problem(loc=f"evaluation.gate.{bound}.{metric}",
                                        message=f"{metric} = {value:.4g} on the holdout, {side} {limit:g}",
                                        fix="improve the model or the data, or change the threshold"))
    return failures


def _fairness_failures(metric: str, bound: str, limit: float,
                       disparities: dict[str, dict[str, Any]]) -> list[Problem]:
    side = "below the minimum" if bound == "min" else "above the maximum"
    out = []
    for column, measures in disparities.items():
        found = measures.get(metric)
        if not found or found.get("value") is None:
            # Fail closed: a gate that cannot be judged does not let the model through.
            why = (found or {}).get("detail", "fewer than two groups with enough rows")
            out.append(Problem(loc=f"evaluation.gate.{bound}.{metric}",
                               message=f"{metric} cannot be measured across {column!r}: {why}",
                               fix="lower evaluation.min_slice_rows, add rows to the holdout "
                                   "(split.test_size), or remove the gate"))
            continue
        value = found["value"]
        if math.isnan(value) or (bound == "min" and value < limit) or (bound == "max" and value > limit):
            gap = found.get("detail", "")
            direction = "raise" if metric in FAIRNESS_HIGHER_IS_FAIRER else "lower"
            out.append(Problem(loc=f"evaluation.gate.{bound}.{metric}",
                               message=f"{metric} = {value:.4g} across {column!r}, {side} {limit:g}"
                                       + (f" ({gap})" if gap else ""),
                               fix=f"{direction} it: look at the groups of {column!r} in the report's "
                                   "fairness table (more data for the weak group, other features, or "
                                   "a changed threshold)"))
    return out
