"""The evaluation gate: thresholds a model must reach on the holdout to be registered."""

from __future__ import annotations

from looml.spec import GateSpec

__all__ = ["check_gate"]


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
