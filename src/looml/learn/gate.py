"""The evaluation gate: thresholds a model must reach on the holdout to be registered."""

from __future__ import annotations

from looml.errors import Problem, SpecError
from looml.spec import CLASSIFICATION_METRICS, REGRESSION_METRICS, EvaluationSpec, GateSpec

__all__ = ["check_gate", "check_metrics_fit_task"]


def check_metrics_fit_task(evaluation: EvaluationSpec, task: str) -> None:
    """Raise one `SpecError` for every metric in `evaluation` that the (inferred) task lacks."""
    known = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    named = [("evaluation.primary_metric", evaluation.primary_metric)]
    named += [(f"evaluation.gate.{bound}.{m}", m) for bound in ("min", "max")
              for m in getattr(evaluation.gate, bound)]
    problems = [
        Problem(loc=loc, value=metric, message=f"not a {task} metric (the task is {task})",
                fix=f"use one of: {', '.join(known)}")
        for loc, metric in named if metric != "auto" and metric not in known
    ]
    if problems:
        raise SpecError(problems)


def check_gate(metrics: dict[str, float], gate: GateSpec) -> list[str]:
    """Descriptions of every gate threshold the metrics miss (empty when the gate passes)."""
    failures = []
    for bound, limits in (("min", gate.min), ("max", gate.max)):
        for metric, limit in limits.items():
            value = metrics.get(metric)
            if value is None:
                failures.append(f"evaluation.gate.{bound}.{metric}: the task has no metric {metric!r}")
            elif (bound == "min" and value < limit) or (bound == "max" and value > limit):
                failures.append(f"evaluation.gate.{bound}.{metric}: {metric} = {value:.4g}, "
                                f"{'below the minimum' if bound == 'min' else 'above the maximum'} {limit:g}")
    return failures
