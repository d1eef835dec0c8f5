"""Checks of `evaluation.calibration` and `evaluation.threshold` against the task, made after
validation and before any training (light: no scikit-learn import, so a cached run stays fast)."""

from __future__ import annotations

from looml.errors import Problem
from looml.spec import EvaluationSpec

__all__ = ["decision_problems"]


def decision_problems(evaluation: EvaluationSpec, task: str, n_classes: int) -> list[Problem]:
    """What `evaluation.calibration` and `evaluation.threshold` ask that the task cannot do:
    calibration of a regression, a threshold of a regression or of several classes."""
    problems = []
    if evaluation.calibration != "none" and task != "classification":
        problems.append(Problem(loc="evaluation.calibration", value=evaluation.calibration,
                                message="calibration applies to class probabilities; this task is regression",
                                fix="remove evaluation.calibration"))
    if evaluation.threshold is not None and (task != "classification" or n_classes != 2):
        what = "regression" if task != "classification" else f"classification with {n_classes} classes"
        problems.append(Problem(loc="evaluation.threshold",
                                value=evaluation.threshold.model_dump(exclude_none=True),
                                message="a decision threshold applies to binary classification; this "
                                        f"task is {what}",
                                fix="remove evaluation.threshold"
                                    + ("" if task != "classification" else " (several classes are "
                                       "predicted as the most probable)")))
    return problems
