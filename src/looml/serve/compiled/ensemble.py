"""The ensembles of member pipelines (`learn.ensemble`), over the members' compiled scorers.

scikit-learn's VotingClassifier averages the members' class probabilities with the weights
(`np.average`) and labels by the largest; VotingRegressor averages their values. A stack feeds
the members' probabilities (without the first class's for two classes) or values to its final
estimator, compiled like any model. Each member is a whole looml pipeline (its own coercer,
columns and estimator), compiled as any champion is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from looml.serve.compiled.base import CompiledScorer, Model, Unsupported
from looml.serve.compiled.steps import SharedText
from looml.serve.scoring import Batch, Prediction, batch_rows

__all__ = ["CompiledStack", "CompiledVote", "compile_stack", "compile_vote"]


@dataclass
class CompiledVote:
    """Scores a Batch with every member's compiled scorer and blends them with the weights."""

    name: str
    members: list[CompiledScorer]
    weights: np.ndarray  # sums to 1
    classes: np.ndarray | None  # the vote's classes (None for a regressor)

    def predict(self, batch: Batch) -> Prediction:
        """Score every row of `batch`."""
        outputs = _member_outputs(self.members, batch)
        if self.classes is None:
            values = np.sum([w * np.asarray(o.labels, dtype=np.float64) for w, o in
                             zip(self.weights, outputs, strict=True)], axis=0)
            return Prediction(labels=values)
        proba = np.sum([w * o.proba for w, o in zip(self.weights, outputs, strict=True)], axis=0)
        return Prediction(labels=self.classes[np.argmax(proba, axis=1)] if len(proba) else self.classes[:0],
                          proba=proba)


def _member_outputs(members: list[CompiledScorer], batch: Batch) -> list[Prediction]:
    """Each member's prediction, the batch coerced once: every member reads the served features."""
    n = batch_rows(batch)
    if n == 0:
        return [m.predict(batch) for m in members]
    coerced = members[0].coerce(batch, n)
    return [m.predict_coerced(coerced) for m in members]


def _share_steps(members: list[CompiledScorer]) -> None:
    """One instance of each text step the members fitted alike (`SharedText.key`), so a text is
    tokenized once per batch."""
    seen: dict[str, SharedText] = {}
    for member in members:
        for branch in member.branches:
            if branch.steps and isinstance(branch.steps[0], SharedText):
                branch.steps[0] = seen.setdefault(branch.steps[0].key, branch.steps[0])


def compile_vote(vote: Any, features: dict[str, str], compile_member: Any) -> CompiledVote:
    """`vote` (a fitted VotingClassifier / VotingRegressor of looml pipelines) compiled member by
    member with `compile_member(pipeline, features)`."""
    from sklearn.ensemble import VotingClassifier

    classifier = isinstance(vote, VotingClassifier)
    if classifier and vote.voting != "soft":
        raise Unsupported("a hard-voting VotingClassifier")
    members = [compile_member(member, features) for member in vote.estimators_]
    _share_steps(members)
    weights = np.ones(len(members)) if vote.weights is None else np.asarray(
        [w for w in vote.weights if w is not None], dtype=np.float64)
    if len(weights) != len(members):
        raise Unsupported("a vote whose weights do not match its fitted members")
    if classifier and any(m.classes is None for m in members):
        raise Unsupported("a vote member without class probabilities")
    name = "compiled:vote(" + ", ".join(m.name.removeprefix("compiled:") for m in members) + ")"
    return CompiledVote(name=name, members=members, weights=weights / weights.sum(),
                        classes=np.asarray(vote.classes_) if classifier else None)


@dataclass
class CompiledStack:
    """Scores a Batch with every member's compiled scorer, then the compiled final estimator."""

    name: str
    members: list[CompiledScorer]
    final: Model
    classes: np.ndarray | None  # the stack's classes (None for a regressor)

    def predict(self, batch: Batch) -> Prediction:
        """Score every row of `batch`."""
        outputs = _member_outputs(self.members, batch)
        if self.classes is None:
            meta = np.column_stack([np.asarray(o.labels, dtype=np.float64) for o in outputs])
            return self.final(meta)
        two = len(self.classes) == 2
        meta = np.hstack([o.proba[:, 1:] if two else o.proba for o in outputs])
        made = self.final(meta)  # labelled 0..k-1: the stack fits on encoded labels
        return Prediction(labels=self.classes[np.asarray(made.labels, dtype=np.intp)], proba=made.proba)


def compile_stack(stack: Any, features: dict[str, str], compile_member: Any, compile_final: Any
                  ) -> CompiledStack:
    """`stack` (a fitted StackingClassifier / StackingRegressor of looml pipelines, without
    passthrough) compiled member by member and `compile_final(estimator, width)` for its final one."""
    from sklearn.ensemble import StackingClassifier

    classifier = isinstance(stack, StackingClassifier)
    if stack.passthrough:
        raise Unsupported("a stack that passes the features through")
    if any(m == "drop" for m in stack.estimators_):
        raise Unsupported("a stack with a dropped member")
    if classifier and any(m != "predict_proba" for m in stack.stack_method_):
        raise Unsupported("a stack on members' decision functions or labels")
    if not classifier and any(m != "predict" for m in stack.stack_method_):
        raise Unsupported(f"a stack regressor on {stack.stack_method_}")
    members = [compile_member(member, features) for member in stack.estimators_]
    _share_steps(members)
    if classifier and any(m.classes is None for m in members):
        raise Unsupported("a stack member without class probabilities")
    width = stack.final_estimator_.n_features_in_
    name, final = compile_final(stack.final_estimator_, width)
    label = "compiled:stack(" + ", ".join(m.name.removeprefix("compiled:") for m in members) + \
        f"; {name.removeprefix('compiled:')})"
    return CompiledStack(name=label, members=members, final=final,
                         classes=np.asarray(stack.classes_) if classifier else None)
