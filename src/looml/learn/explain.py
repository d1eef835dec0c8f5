"""Per-row feature contributions of a fitted looml pipeline, per user column.

    explainer_for(pipeline) -> Explainer          (raises NoExplanation, with the reason, when none)
    Explainer.explain(X) -> Contributions          (raw rows in, one contribution per user column)

The model step is explained on the rows the pipeline's own preprocessing makes, and each
encoded feature's contribution is added back to the column it came from (the parts of a
one-hot or TF-IDF column summed; a polynomial term shared equally by its columns; a feature
left out by a selection step contributes nothing). The sum is exact, so for every row

    base + sum(contributions) = the model's raw output

- tree models (LightGBM, XGBoost, CatBoost, scikit-learn trees, forests and histogram boosting):
  SHAP values by `shap.TreeExplainer` (path-dependent TreeSHAP, no background rows needed). The
  raw output is the model's margin: log-odds for boosted classifiers, class probabilities for
  forests, the value for regressors.
- linear models (`coef_`, `intercept_`): coefficient x encoded value; the base is the intercept
  (with standard scaling, the contribution of a column at its training mean is zero). The raw
  output is the decision function (log-odds for logistic regression).
- a voting regressor of explainable members: the weighted mean of the members' contributions.
- a regression target transform: the inner model is explained, in the transformed target's units.

Everything else (k-NN, SVMs, MLPs, stacking, soft votes of classifiers, whose averaged
probabilities are not a sum of the members' margins, and PCA, which mixes the columns) has none.
An explainer is built once per fitted pipeline. `seconds_per_row` is what it costs (from the
model's structure, `learn.treecost`); with `max_seconds_per_row` a bagged forest that would cost
more is explained by its first trees, an unbiased estimate of the forest's values (`note` says so).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.pipeline import Pipeline

from looml.learn.treecost import fewer_trees, is_bagged_forest, shap_seconds, trees_within

__all__ = ["Contributions", "Explainer", "NoExplanation", "encoded_columns", "explainer_for"]

_TREE_MODULES = ("lightgbm", "xgboost", "catboost", "sklearn.ensemble", "sklearn.tree")
_MIN_TREES = 10  # a forest cut to fit a time keeps at least this many trees


class NoExplanation(ValueError):
    """The pipeline's model has no per-row contributions; the message says why."""


@dataclass(frozen=True)
class Contributions:
    """What `Explainer.explain` returns for n rows and k outputs (k = 1 but for multiclass)."""

    columns: list[str]  # the user's columns, in the pipeline's input order
    outputs: list[str]  # what each output is: "value", "log-odds of 'yes'", "probability of 'a'"...
    base: np.ndarray  # (k,) the expected raw output
    values: np.ndarray  # (n, k, columns) each column's contribution

    def totals(self) -> np.ndarray:
        """(n, k) base + contributions: the model's raw output."""
        return self.base[None, :] + self.values.sum(axis=2)


@dataclass(frozen=True)
class ColumnMap:
    """How the encoded features (the model's input) add up to the user's columns."""

    features: list[str]  # encoded feature names, as the model sees them
    columns: list[str]  # the user's columns (and derived columns, named in the spec)
    matrix: np.ndarray  # (features, columns): feature i's share of each column; rows sum to 1


class Explainer:
    """Contributions of one fitted pipeline: its preprocessing, the model's explainer, the column map."""

    def __init__(self, kind: str, preprocess: Pipeline | None, columns: ColumnMap, outputs: list[str],
                 contribute: Any, model_name: str, members: list[tuple[float, Explainer]] | None = None,
                 seconds_per_row: float = 0.0, note: str = "") -> None:
        self.kind = kind  # tree | linear | voting
        self.preprocess = preprocess
        self.map = columns
        self.outputs = outputs
        self._contribute = contribute  # encoded rows -> (base (k,), values (n, k, features))
        self.model_name = model_name
        self._members = members or []
        self.seconds_per_row = seconds_per_row + sum(m.seconds_per_row for _, m in self._members)
        self.note = "; ".join(n for n in (note, *(m.note for _, m in self._members)) if n)

    @property
    def columns(self) -> list[str]:
        """The user's columns the contributions name."""
        return self.map.columns

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        """The rows the model step takes: the pipeline's preprocessing applied to raw rows."""
        assert self.preprocess is not None
        return np.asarray(self.preprocess.transform(X), dtype=np.float64)

    def explain(self, X: pd.DataFrame) -> Contributions:
        """Each user column's contribution to the model's raw output, for every row of `X`."""
        if self.kind == "voting":
            parts = [(w, _as_probability(m.explain(X)) if self.outputs[0].startswith("probability") else
                      m.explain(X)) for w, m in self._members]
            total = sum(w for w, _ in parts)
            base = sum(w * c.base for w, c in parts) / total
            values = sum(w * _align(c, self.columns) for w, c in parts) / total
            return Contributions(self.columns, self.outputs, np.asarray(base), np.asarray(values))
        return self.explain_encoded(self.encode(X))

    def explain_encoded(self, Z: np.ndarray) -> Contributions:
        """As `explain`, on rows already through the preprocessing (`encode`)."""
        base, values = self._contribute(Z)
        return Contributions(self.columns, self.outputs, base, values @ self.map.matrix)


def _align(c: Contributions, columns: list[str]) -> np.ndarray:
    index = {name: j for j, name in enumerate(c.columns)}
    out = np.zeros((*c.values.shape[:2], len(columns)))
    for j, name in enumerate(columns):
        if name in index:
            out[:, :, j] = c.values[:, :, index[name]]
    return out


def explainer_for(pipeline: Pipeline, threads: int = 0,
                  max_seconds_per_row: float | None = None) -> Explainer:
    """The explainer of a fitted looml pipeline (raw rows in); `NoExplanation` says why there is none.

    `threads`: LightGBM's threads per call (0: its default; a server explaining one row takes 1).
    `max_seconds_per_row`: a bagged forest (of a vote's member, too) that would take longer is
    explained by its first trees, at least `_MIN_TREES`.
    """
    model = pipeline.steps[-1][1]
    classes = list(getattr(pipeline, "classes_", [])) or None
    units = ""
    if type(model).__name__ == "DecisionModel":  # calibration and threshold (learn.decision) around it
        if getattr(model, "calibration_", "none") != "none":
            units = " (before calibration)"
        model = model.estimator_
    if isinstance(model, VotingRegressor) or (isinstance(model, VotingClassifier) and model.voting == "soft"):
        return _voting(pipeline, model, threads, units, max_seconds_per_row)
    if type(model).__name__.startswith(("Voting", "Stacking")):
        raise NoExplanation(f"a {type(model).__name__} has no per-row contributions: its output is not a "
                            "sum of its members' margins (a soft vote averages probabilities)")
    if isinstance(model, TransformedTargetRegressor):
        units = " (in the transformed target's units)"
        model = model.regressor_
    preprocess = Pipeline(pipeline.steps[:-1]) if len(pipeline.steps) > 1 else None
    columns = encoded_columns(pipeline)
    name = type(model).__name__
    model, note = _within(model, max_seconds_per_row)
    if _is_tree(model):
        contribute, k = _lightgbm(model, threads) if hasattr(model, "booster_") else _tree(model)
        outputs = _outputs(classes, k, "probability" if _is_forest_classifier(model) else "log-odds")
    elif hasattr(model, "coef_") and hasattr(model, "intercept_"):
        contribute, k = _linear(model)
        outputs = _outputs(classes, k, "log-odds" if classes else "value")
    else:
        raise NoExplanation(f"a {name} model has no per-row contributions: only tree models (LightGBM, "
                            "XGBoost, forests, boosting) and linear models have them")
    if k == 2 and classes is not None and len(classes) == 2:  # one margin per class: keep the positive one
        contribute = _positive(contribute)
        k = 1
    outputs = [o + units for o in (outputs[-k:] if classes is None or k == 1 else outputs)]
    return Explainer("tree" if _is_tree(model) else "linear", preprocess, columns, outputs, contribute, name,
                     seconds_per_row=shap_seconds(model), note=note)


def _within(model: Any, max_seconds: float | None) -> tuple[Any, str]:
    """`model`, or a bagged forest cut to the trees that fit `max_seconds` a row, and a note."""
    seconds = shap_seconds(model)
    if max_seconds is None or seconds <= max_seconds or not is_bagged_forest(model):
        return model, ""
    total = len(model.estimators_)
    keep = max(_MIN_TREES, trees_within(model, max_seconds) // _MIN_TREES * _MIN_TREES)  # whole tens: stable
    if keep >= total:
        return model, ""
    return fewer_trees(model, keep), (f"the {type(model).__name__}'s SHAP values are those of its first "
                                      f"{keep} of {total} trees (an unbiased estimate: its trees are "
                                      f"independent draws; all {total} would take {seconds:.2f} s a row)")


def _voting(pipeline: Pipeline, model: VotingRegressor | VotingClassifier, threads: int,
            units: str = "", max_seconds_per_row: float | None = None) -> Explainer:
    """Each member is a whole pipeline (its own coercion and preprocessing) and explains raw rows.

    A soft vote of classifiers averages probabilities: each member's contributions are first
    taken to its probability (`_as_probability`), so the vote's still add up to its output."""
    weights = model.weights or [1.0] * len(model.estimators_)
    share = None if max_seconds_per_row is None else max_seconds_per_row / len(model.estimators_)
    members = []
    for (label, _), fitted, w in zip(model.estimators, model.estimators_, weights, strict=True):
        if not isinstance(fitted, Pipeline) or isinstance(fitted.steps[-1][1], TransformedTargetRegressor):
            raise NoExplanation(f"the vote's member {label!r} is not a plain pipeline or transforms the "
                                "target, so the vote is not a sum of its members' contributions")
        members.append((float(w), explainer_for(fitted, threads, share)))
    names = list(getattr(pipeline.steps[0][1], "columns_", None) or [])
    names += [c for _, m in members for c in m.columns if c not in names]
    identity = ColumnMap(names, names, np.eye(len(names)))
    outputs = ["value"]
    if isinstance(model, VotingClassifier):
        classes = [_label(c) for c in model.classes_]  # the members learned encoded labels 0..k-1
        outputs = [o + units for o in _outputs(classes, len(members[0][1].outputs), "probability")]
    return Explainer("voting", None, identity, outputs, None, type(model).__name__, members)


def _as_probability(c: Contributions) -> Contributions:
    """A classifier's contributions to its margin (log-odds) made contributions to its probability:
    each row's change of probability from the base, shared among the columns in proportion to
    their margin contributions (at a zero change of margin, by the slope there). Exact in sum:
    base + contributions = the probability; already probabilities (forests) stay as they are."""
    if c.outputs[0].startswith("probability"):
        return c
    margin = c.totals()
    if margin.shape[1] == 1:
        p, p0 = _expit(margin), _expit(c.base[None, :])
    else:
        p, p0 = _softmax(margin), _softmax(c.base[None, :])
    moved = margin - c.base[None, :]
    slope = p0 * (1 - p0)
    scale = np.where(np.abs(moved) > 1e-12, (p - p0) / np.where(moved == 0, 1, moved), slope)
    return Contributions(c.columns, [o.replace("log-odds", "probability") for o in c.outputs], p0[0],
                         c.values * scale[:, :, None])


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _is_tree(model: Any) -> bool:
    """A tree model of a library shap's TreeExplainer reads (a subclass counts: XGBLabelClassifier)."""
    for cls in type(model).__mro__:
        name = cls.__name__
        if cls.__module__.startswith(_TREE_MODULES) and "Isolation" not in name and "AdaBoost" not in name \
                and any(k in name for k in ("Tree", "Forest", "Boost", "LGBM", "XGB", "CatBoost")):
            return True
    return False


def _is_forest_classifier(model: Any) -> bool:
    return type(model).__module__.startswith("sklearn") and "GradientBoosting" not in type(model).__name__


def _outputs(classes: list[Any] | None, k: int, scale: str) -> list[str]:
    if classes is None:
        return ["value"]
    if k == 1:
        return [f"{scale} of {_label(classes[-1])!r}"]
    return [f"{scale} of {_label(c)!r}" for c in classes]


def _label(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _tree(model: Any) -> tuple[Any, int]:
    import shap

    try:
        explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    except Exception as exc:  # shap names the model types it does not take
        raise NoExplanation(f"shap's TreeExplainer does not take this {type(model).__name__}: {exc}") from exc
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    if hasattr(model, "get_booster"):  # XGBoost: its own bias term (shap's estimate of it can be off
        base = _xgboost_bias(model)   # by a few hundredths when base_score is fitted)

    def contribute(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with warnings.catch_warnings():  # shap's note that a LightGBM binary output changed shape
            warnings.simplefilter("ignore", UserWarning)
            values = np.asarray(explainer.shap_values(Z, check_additivity=False), dtype=np.float64)
        if values.ndim == 2:
            values = values[:, None, :]  # (n, features) -> (n, 1, features)
        elif values.ndim == 3 and values.shape[0] != Z.shape[0]:
            values = np.transpose(values, (1, 0, 2))  # older shap: one array per class
        else:
            values = np.transpose(values, (0, 2, 1))  # (n, features, k) -> (n, k, features)
        return base, values

    return contribute, len(base)


def _lightgbm(model: Any, threads: int) -> tuple[Any, int]:
    """LightGBM's own TreeSHAP (`pred_contrib`), what shap's TreeExplainer calls for a LightGBM model,
    with the threads chosen per call: the last column of each output is its base value."""
    booster = model.booster_
    k = booster.num_model_per_iteration()
    options = {"num_threads": threads} if threads else {}

    def contribute(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raw = np.asarray(booster.predict(Z, pred_contrib=True, **options), dtype=np.float64)
        values = raw.reshape(len(Z), k, -1)
        return values[0, :, -1], values[:, :, :-1]

    return contribute, k


def _xgboost_bias(model: Any) -> np.ndarray:
    """The bias column of XGBoost's own contributions: the same for every row."""
    import xgboost

    booster = model.get_booster()
    zeros = xgboost.DMatrix(np.zeros((1, booster.num_features())))
    contributions = np.asarray(booster.predict(zeros, pred_contribs=True), dtype=np.float64)
    return np.atleast_1d(contributions[0, ..., -1])


def _linear(model: Any) -> tuple[Any, int]:
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))  # (k, features)
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64)) * np.ones(len(coef))

    def contribute(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return intercept, Z[:, None, :] * coef[None, :, :]

    return contribute, len(coef)


def _positive(contribute: Any) -> Any:
    def positive(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base, values = contribute(Z)
        return base[1:], values[:, 1:, :]

    return positive


def encoded_columns(pipeline: Pipeline) -> ColumnMap:
    """How the features the model step takes add up to the pipeline's input columns.

    `NoExplanation` when a step mixes the columns (PCA) or has no names to follow.
    """
    coerce = pipeline.steps[0][1]
    user = list(getattr(coerce, "columns_", None) or [])
    columns: ColumnTransformer | None = None
    after: list[tuple[str, Any]] = []
    for name, step in pipeline.steps[1:-1]:
        if isinstance(step, ColumnTransformer):
            columns = step
        elif columns is not None:
            after.append((name, step))
    if columns is None:  # the model takes the coerced columns as they are
        return ColumnMap(user, user, np.eye(len(user)))
    features: list[str] = []
    sources: list[list[str]] = []
    for branch, transformer, taken in columns.transformers_:
        part = columns.output_indices_.get(branch, slice(0, 0))
        width = part.stop - part.start
        if width == 0 or isinstance(transformer, str):  # "drop", or an empty branch
            continue
        taken = [str(c) for c in (taken if isinstance(taken, list | tuple | np.ndarray) else [taken])]
        user += [c for c in taken if c not in user]  # derived columns, named in the spec
        for feature in _branch_names(transformer, taken, width):
            features.append(f"{branch}__{feature}")
            sources.append(_sources(feature, taken))
    index = {c: j for j, c in enumerate(user)}
    matrix = np.zeros((len(features), len(user)))
    for i, parts in enumerate(sources):
        for c in parts:
            matrix[i, index[c]] += 1.0 / len(parts)
    for name, step in after:
        if hasattr(step, "get_support"):
            keep = np.asarray(step.get_support())
            matrix, features = matrix[keep], [f for f, k in zip(features, keep, strict=True) if k]
        else:
            raise NoExplanation(f"the step {name!r} ({type(step).__name__}) mixes the columns, so a "
                                "contribution cannot be given back to one column")
    return ColumnMap(features, user, matrix)


def _branch_names(transformer: Any, taken: list[str], width: int) -> list[str]:
    try:
        names = [str(n) for n in transformer.get_feature_names_out(taken)]
    except Exception:
        names = []
    if len(names) != width:  # no names to follow: every output shared by the branch's columns
        return [" ".join(taken)] * width if len(taken) > 1 else taken * width
    return names


def _sources(feature: str, taken: list[str]) -> list[str]:
    """The branch's input columns an output feature comes from: the column itself, `col_value`
    (one-hot, TF-IDF, date parts), `missingindicator_col`, or a polynomial term `a b^2`."""
    if len(taken) == 1:
        return taken
    if feature in taken:
        return [feature]
    matches = [c for c in taken if feature.startswith(f"{c}_") or feature.endswith(f"_{c}")]
    if matches:
        return [max(matches, key=len)]
    terms = [re.sub(r"\^\d+$", "", t) for t in feature.split(" ")]
    if terms and all(t in taken for t in terms):
        return sorted(set(terms), key=terms.index)
    return taken
