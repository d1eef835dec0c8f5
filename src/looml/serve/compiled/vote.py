"""The weighted vote of member pipelines (`learn.ensemble`), over the members' compiled scorers.

scikit-learn's VotingClassifier averages the members' class probabilities with the weights
(`np.average`) and labels by the largest; VotingRegressor averages their values. Each member is
a whole looml pipeline (its own coercer, columns and estimator), compiled as any champion is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from looml.serve.compiled.base import CompiledScorer, Unsupported
from looml.serve.scoring import Batch, Prediction

__all__ = ["CompiledVote", "compile_vote"]


@dataclass
class CompiledVote:
    """Scores a Batch with every member's compiled scorer and blends them with the weights."""

    name: str
    members: list[CompiledScorer]
    weights: np.ndarray  # sums to 1
    classes: np.ndarray | None  # the vote's classes (None for a regressor)

    def predict(self, batch: Batch) -> Prediction:
        """Score every row of `batch`."""
        outputs = [m.predict(batch) for m in self.members]
        if self.classes is None:
            values = np.sum([w * np.asarray(o.labels, dtype=np.float64) for w, o in
                             zip(self.weights, outputs, strict=True)], axis=0)
            return Prediction(labels=values)
        proba = np.sum([w * o.proba for w, o in zip(self.weights, outputs, strict=True)], axis=0)
        return Prediction(labels=self.classes[np.argmax(proba, axis=1)] if len(proba) else self.classes[:0],
                          proba=proba)


def compile_vote(vote: Any, features: dict[str, str], compile_member: Any) -> CompiledVote:
    """`vote` (a fitted VotingClassifier / VotingRegressor of looml pipelines) compiled member by
    member with `compile_member(pipeline, features)`."""
    from sklearn.ensemble import VotingClassifier

    classifier = isinstance(vote, VotingClassifier)
    if classifier and vote.voting != "soft":
        raise Unsupported("a hard-voting VotingClassifier")
    members = [compile_member(member, features) for member in vote.estimators_]
    weights = np.ones(len(members)) if vote.weights is None else np.asarray(
        [w for w in vote.weights if w is not None], dtype=np.float64)
    if len(weights) != len(members):
        raise Unsupported("a vote whose weights do not match its fitted members")
    if classifier and any(m.classes is None for m in members):
        raise Unsupported("a vote member without class probabilities")
    name = "compiled:vote(" + ", ".join(m.name.removeprefix("compiled:") for m in members) + ")"
    return CompiledVote(name=name, members=members, weights=weights / weights.sum(),
                        classes=np.asarray(vote.classes_) if classifier else None)
