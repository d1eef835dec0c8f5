"""The compiled scoring path: the fitted pipeline rebuilt as numpy arithmetic on raw columns.

    compile_scorer(pipeline, features, schema, profile, reference) -> CompiledScorer | None

The reference path builds a pandas DataFrame per request and walks SchemaCoercer, the
ColumnTransformer and the estimator through scikit-learn's input checks: about 10 ms for one
row, nearly all of it overhead. Here each fitted step becomes a numpy function of its learned
parameters (imputer statistics, scaler offsets, one-hot and target-encoding tables, datetime
parts; a text column through its fitted TF-IDF vocabulary and projection), the estimator becomes
arithmetic on the dense matrix, and a weighted vote blends its members' compiled outputs:

- linear models: the coefficients, then scipy's `expit` or scikit-learn's `softmax`;
- the MLP: its forward pass;
- HistGradientBoosting, forests and decision trees: every tree in one ONNX `TreeEnsemble`
  (ai.onnx.ml opset 5) in float64, run by ONNX Runtime on one thread;
- LightGBM, XGBoost and CatBoost: their own boosters, on one thread;
- a target transform: the inner model, then the transformer's inverse;
- calibration and a decision threshold (`looml.learn.decision.DecisionModel`): the inner model
  compiled, then the same calibration arrays and the same cut (`decision`).

The compiled scorer is used only when it reproduces the reference on ~1,900 seeded messy rows
(`checks.validation_batches`; once per registered version and environment on a machine, see
`remembered`); anything unsupported or different gives None and a log line on the
`looml.serve` logger, and the server then scores through the pipeline.

The package: `base` (the scorer), `coerce` (the coercer's rules), `steps` (the ColumnTransformer),
`reduce` (selection and PCA), `models` (the estimators), `ensemble` (a vote or a stack of member
pipelines), `decision` (calibration and the threshold), `checks` (the validation rows) and
`remembered` (a check's outcome, kept per machine); this module compiles a pipeline and keeps a
compiled scorer only when it matches the pipeline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from looml.data.schema import Schema
from looml.serve.compiled.base import TOLERANCE, CompiledScorer, Unsupported, log
from looml.serve.compiled.checks import validation_batches
from looml.serve.compiled.decision import CompiledDecision
from looml.serve.compiled.ensemble import CompiledStack, CompiledVote, compile_stack, compile_vote
from looml.serve.compiled.models import compile_estimator
from looml.serve.compiled.reduce import compile_reduction
from looml.serve.compiled.remembered import recall, remember, verdict_key
from looml.serve.compiled.steps import compile_branches
from looml.serve.scoring import Batch, Scorer

__all__ = ["TOLERANCE", "CompiledDecision", "CompiledScorer", "CompiledStack", "CompiledVote", "Unsupported",
           "compile_or_reason", "compile_scorer"]


def compile_scorer(pipeline: Any, features: dict[str, str], schema: Schema | None,
                   profile: dict[str, Any] | None, reference: Scorer) -> Scorer | None:
    """A faster scorer equivalent to `reference` on checked rows, or None to use the reference.

    None when a step or the estimator is not supported, or when on any validation batch the
    compiled labels differ from the reference's, or a probability differs by more than
    `TOLERANCE` (a regression value by more than `TOLERANCE` x max(1, |value|)). The reason
    is logged on `looml.serve`.
    """
    return compile_or_reason(pipeline, features, schema, profile, reference)[0]


def compile_or_reason(pipeline: Any, features: dict[str, str], schema: Schema | None,
                      profile: dict[str, Any] | None, reference: Scorer,
                      identity: str | None = None) -> tuple[Scorer | None, str | None]:
    """`compile_scorer`'s scorer, or None and the reason it is not used (also logged).

    With `identity` (the registered version: its store, name, version and run), the check's
    outcome is remembered on this machine and recalled instead of checking again (`remembered`).
    """
    try:
        scorer = _compile(pipeline, features)
    except Unsupported as exc:
        log.info("compiled scorer not used: %s; scoring through the pipeline", exc)
        return None, str(exc)
    except Exception as exc:  # a library's internals changed: serve through the pipeline, not fail
        log.warning("compiled scorer not built: %s: %s; scoring through the pipeline",
                    type(exc).__name__, exc)
        return None, f"not built: {type(exc).__name__}: {exc}"
    key = verdict_key(identity, features, schema, profile) if identity is not None else None
    known = recall(key) if key is not None else None
    reason = known[1] if known is not None else _check(scorer, reference, features, schema, profile)
    if key is not None and known is None:
        remember(key, reason)
    if reason is not None:
        log.warning("compiled scorer %s; scoring through the pipeline", reason)
        return None, reason
    if known is not None:
        log.info("compiled scorer %s: checked against the pipeline before, on this machine", scorer.name)
    return scorer, None


def _check(scorer: Scorer, reference: Scorer, features: dict[str, str], schema: Schema | None,
           profile: dict[str, Any] | None) -> str | None:
    """Why `scorer` is not the pipeline on the validation batches, or None if it matches on all."""
    from threadpoolctl import threadpool_limits

    # One OpenMP thread for the reference too: on a busy 2-core machine its spinning threads
    # made the check take seconds. The limit is per calling thread, so serving is untouched.
    with threadpool_limits(limits=1, user_api="openmp"):
        for label, batch in validation_batches(features, schema, profile):
            difference = _difference(scorer, reference, batch)
            if difference is not None:
                return f"{scorer.name} disagrees with the pipeline on the {label!r} validation batch: " \
                       f"{difference}"
    return None


def _difference(scorer: Scorer, reference: Scorer, batch: Batch) -> str | None:
    """How the two scorers disagree on `batch` (None: they agree, both failing counts)."""
    outcomes = []
    for one in (scorer, reference):
        try:
            outcomes.append(one.predict(batch))
        except Exception as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")
    got, want = outcomes
    if isinstance(got, str) or isinstance(want, str):
        if isinstance(got, str) and isinstance(want, str):
            return None
        return f"compiled: {got if isinstance(got, str) else 'scored'}; pipeline: " \
               f"{want if isinstance(want, str) else 'scored'}"
    if want.proba is None:
        gap = np.abs(np.asarray(got.labels, dtype=np.float64) - want.labels) / np.maximum(1, abs(want.labels))
    else:
        wrong = np.flatnonzero(np.asarray(got.labels) != np.asarray(want.labels))
        if wrong.size:
            i = wrong[0]
            return f"row {i}: label {got.labels[i]!r}, the pipeline says {want.labels[i]!r}"
        gap = np.abs(got.proba - want.proba).max(axis=1, initial=0.0)
    bad = np.flatnonzero(~(gap <= TOLERANCE))
    if bad.size:
        return f"row {bad[0]}: differs by {gap[bad[0]]:.3g} (tolerance {TOLERANCE:g})"
    return None



def _compile(pipeline: Any, features: dict[str, str]) -> Scorer:
    from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor
    from sklearn.pipeline import Pipeline

    from looml.learn.decision import DecisionModel

    if isinstance(pipeline, Pipeline) and isinstance(pipeline.steps[-1][1], DecisionModel):
        decision = pipeline.steps[-1][1]
        inner = Pipeline([*pipeline.steps[:-1], (pipeline.steps[-1][0], decision.estimator_)])
        return CompiledDecision(_compile(inner, features), decision.calibrators_, decision.threshold_,
                                decision._positive(), np.asarray(decision.classes_))

    ensemble = pipeline.steps[-1][1] if isinstance(pipeline, Pipeline) and len(pipeline.steps) == 2 else None
    if isinstance(ensemble, VotingClassifier | VotingRegressor | StackingClassifier | StackingRegressor):
        if dict(pipeline.steps[0][1].columns_) != features:
            raise Unsupported("the ensemble's coercer columns are not the served features")
        if isinstance(ensemble, VotingClassifier | VotingRegressor):
            return compile_vote(ensemble, features, _compile_single)
        return compile_stack(ensemble, features, _compile_single, compile_estimator)
    return _compile_single(pipeline, features)


def _compile_single(pipeline: Any, features: dict[str, str]) -> CompiledScorer:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from looml.learn.features import SchemaCoercer

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 3:
        raise Unsupported("the pipeline is not SchemaCoercer -> ColumnTransformer -> [selection, PCA] "
                          "-> estimator")
    (_, coercer), (_, columns), *between, (_, estimator) = pipeline.steps
    if not isinstance(coercer, SchemaCoercer) or not isinstance(columns, ColumnTransformer):
        raise Unsupported(f"the pipeline starts {type(coercer).__name__} -> {type(columns).__name__}, "
                          "not SchemaCoercer -> ColumnTransformer")
    if dict(coercer.columns_) != features:
        raise Unsupported("the coercer's columns are not the served features")
    branches = compile_branches(columns, features)
    width = len(columns.get_feature_names_out())
    reductions = []
    for _, step in between:
        reduction, width = compile_reduction(step, width)
        reductions.append(reduction)
    if getattr(estimator, "n_features_in_", width) != width:
        raise Unsupported("the estimator's input width is not the width of the steps before it")
    name, model = compile_estimator(estimator, width)
    classes = getattr(estimator, "classes_", None) if hasattr(estimator, "predict_proba") else None
    return CompiledScorer(name=name, features=dict(features), branches=branches, reductions=reductions,
                          model=model, classes=classes)
