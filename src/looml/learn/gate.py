"""The evaluation gate: thresholds a model must reach on the holdout to be registered."""

from __future__ import annotations

import math

from looml.errors import Problem, SpecError
from looml.spec import CLASSIFICATION_METRICS, REGRESSION_METRICS, EvaluationSpec, GateSpec

__all__ = ["check_gate", "check_metrics_fit_task"]


def check_metrics_fit_task(evaluation: EvaluationSpec, task: str) -> None:
    """Raise one `SpecError` for every metric in `evaluation` that the (inferred) task lacks."""
    known = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    problems = [
        Problem(loc=".".join(("evaluation", *loc)), value=metric,
                message=f"not a {task} metric (the task is {task})", fix=f"use one of: {', '.join(known)}")
        for loc, metric in evaluation.metric_locations() if metric not in known
    ]
    if problems:
        raise SpecError(problems)


def check_gate(metrics: dict[str, float], gate: GateSpec) -> list[Problem]:
    """Every gate threshold the holdout metrics miss (empty when the gate passes)."""
    failures = []
    for bound, limits in (("min", gate.min), ("max", gate.max)):
        for metric, limit in limits.items():
            value = metrics[metric]  # check_metrics_fit_task ran first: the task has it
            if math.isnan(value) or (bound == "min" and value < limit) or (bound == "max" and value > limit):
                side = "below the minimum" if bound == "min" else "above the maximum"
                failures.append(Problem(loc=f"evaluation.gate.{bound}.{metric}",
                                        message=f"{metric} = {value:.4g} on the holdout, {side} {limit:g}",
                                        fix="improve the model or the data, or change the threshold"))
    return failures
