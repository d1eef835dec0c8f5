"""The compiled scoring path: the fitted pipeline rebuilt as numpy arithmetic on raw columns.

    compile_scorer(pipeline, features, schema, profile, reference) -> CompiledScorer | None

The reference path builds a pandas DataFrame per request and walks SchemaCoercer, the
ColumnTransformer and the estimator through scikit-learn's input checks: about 10 ms for one
row, nearly all of it overhead. Here each fitted step becomes a numpy function of its learned
parameters (imputer statistics, scaler offsets, one-hot category tables, datetime parts), and
the estimator becomes arithmetic on the dense matrix:

- linear models: the coefficients, then scipy's `expit` or scikit-learn's `softmax`;
- HistGradientBoosting and random forests: every tree in one ONNX `TreeEnsemble` (ai.onnx.ml
  opset 5) in float64, run by ONNX Runtime on one thread;
- LightGBM: its own booster, `num_threads=1`.

The compiled scorer is used only when it reproduces the reference on ~1,900 seeded messy rows
(`_validation_batches`); anything unsupported or different gives None and a log line on the
`looml.serve` logger, and the server then scores through the pipeline.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from looml.data.schema import Schema
from looml.learn.features import category_text
from looml.serve.model import Batch, Prediction, Scorer, batch_rows

__all__ = ["TOLERANCE", "CompiledScorer", "compile_scorer"]

TOLERANCE = 1e-9  # largest accepted difference of a probability, or of a regression value per unit
_SEED = 0
_FOREST_ONNX_ROWS = 32  # measured crossover: ~20 rows (0.07 ms a row by ONNX, 0.9 ms + 0.03 ms a row by tree)
log = logging.getLogger("looml.serve")

Step = Callable[[Any], np.ndarray]  # one fitted transformer, as a function of a branch's columns
Model = Callable[[np.ndarray], Prediction]


class Unsupported(Exception):
    """A step or setting the compiler does not reproduce; the message says which."""


# -- the scorer ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Branch:
    """One ColumnTransformer branch: its columns (feature positions), their kind and its steps."""

    columns: list[int]
    kind: str  # numeric | categorical | datetime
    steps: list[Step]

    def transform(self, coerced: list[np.ndarray]) -> np.ndarray:
        data: Any = [coerced[i] for i in self.columns]
        if self.kind != "datetime":
            data = np.column_stack(data)
        for step in self.steps:
            data = step(data)
        return data


@dataclass
class CompiledScorer:
    """Scores a Batch with numpy and the compiled estimator: no DataFrame, no per-call checks."""

    name: str
    features: dict[str, str]
    branches: list[_Branch]
    model: Model
    width: int
    classes: np.ndarray | None  # None for a regressor

    def predict(self, batch: Batch) -> Prediction:
        """Score every row of `batch`; a missing column is treated as all missing."""
        n = batch_rows(batch)
        if n == 0:
            if self.classes is None:
                return Prediction(labels=np.empty(0))
            return Prediction(labels=self.classes[:0], proba=np.empty((0, len(self.classes))))
        coerced = [_coerce_column(batch.get(name), kind, n) for name, kind in self.features.items()]
        X = np.hstack([branch.transform(coerced) for branch in self.branches])
        if X.shape[1] != self.width:
            raise ValueError(f"the compiled preprocessing made {X.shape[1]} columns; the model takes "
                             f"{self.width}")
        return self.model(np.ascontiguousarray(X, dtype=np.float64))


def compile_scorer(pipeline: Any, features: dict[str, str], schema: Schema | None,
                   profile: dict[str, Any] | None, reference: Scorer) -> Scorer | None:
    """A faster scorer equivalent to `reference` on checked rows, or None to use the reference.

    None when a step or the estimator is not supported, or when on any validation batch the
    compiled labels differ from the reference's, or a probability differs by more than
    `TOLERANCE` (a regression value by more than `TOLERANCE` x max(1, |value|)). The reason
    is logged on `looml.serve`.
    """
    try:
        scorer = _compile(pipeline, features)
    except Unsupported as exc:
        log.info("compiled scorer not used: %s; scoring through the pipeline", exc)
        return None
    except Exception as exc:  # a library's internals changed: serve through the pipeline, not fail
        log.warning("compiled scorer not built: %s: %s; scoring through the pipeline",
                    type(exc).__name__, exc)
        return None
    from threadpoolctl import threadpool_limits

    # One OpenMP thread for the reference too: on a busy 2-core machine its spinning threads
    # made the check take seconds. The limit is per calling thread, so serving is untouched.
    with threadpool_limits(limits=1, user_api="openmp"):
        for label, batch in _validation_batches(features, schema, profile):
            difference = _difference(scorer, reference, batch)
            if difference is not None:
                log.warning("compiled scorer %s disagrees with the pipeline on the %r validation batch: "
                            "%s; scoring through the pipeline", scorer.name, label, difference)
                return None
    return scorer


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


# -- coercion: SchemaCoercer's rules on raw Batch columns ----------------------------------------

def _coerce_column(values: Any, kind: str, n: int) -> np.ndarray:
    """One column as SchemaCoercer leaves it: float64, object (None = missing) or datetime64.

    The common shapes (numbers and None; strings and None) are converted here; any other mix
    goes through the coercer's own rule on the column pandas would build, so odd inputs are
    exact by construction.
    """
    if values is None:
        values = [None] * n
    if isinstance(values, np.ndarray):
        if kind == "numeric" and values.dtype.kind in "iuf":
            return values.astype(np.float64)
        if kind == "categorical" and values.dtype.kind in "iufU":
            values = values.tolist()
    if kind != "datetime" and not isinstance(values, np.ndarray):
        types = set(map(type, values))
        if kind == "numeric":
            if types <= {int, float, type(None)}:
                return np.array(values, dtype=np.float64)
            if types <= {str, int, float, type(None)}:
                column = np.array(values, dtype=object)
                column[pd.isna(column)] = np.nan
                return pd.to_numeric(column, errors="coerce").astype(np.float64)
        elif types <= {str, type(None)}:
            return np.array(values, dtype=object)
        elif types == {int}:
            return np.array([str(v) for v in values], dtype=object)
        elif types <= {int, float, type(None)} and (int not in types or all(
                -2**63 <= v < 2**63 for v in values if type(v) is int)):
            # pandas reads int64s with a None or a float as a float column; 1 and 1.0 are both "1"
            return np.array([None if v is None or v != v else category_text(v) for v in values], dtype=object)
    return _coerce_exact(values, kind)


def _coerce_exact(values: Any, kind: str) -> np.ndarray:
    """SchemaCoercer's own rule, on the column pandas builds from `values` (the reference's path)."""
    from looml.learn.features import _coerce  # the same rule, so the uncommon inputs cannot drift

    column = _coerce(pd.DataFrame({"c": values})["c"], kind)
    if kind == "numeric":
        return column.to_numpy(dtype=np.float64)
    if kind == "datetime":
        return column.to_numpy()
    out = np.array(column, dtype=object)  # a copy: pandas hands out read-only views
    out[pd.isna(out)] = None
    return out


# -- preprocessing: the fitted ColumnTransformer as numpy steps ----------------------------------

def _compile(pipeline: Any, features: dict[str, str]) -> CompiledScorer:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from looml.learn.features import SchemaCoercer

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 3:
        raise Unsupported("the pipeline is not SchemaCoercer -> ColumnTransformer -> estimator")
    (_, coercer), (_, columns), (_, estimator) = pipeline.steps
    if not isinstance(coercer, SchemaCoercer) or not isinstance(columns, ColumnTransformer):
        raise Unsupported(f"the pipeline starts {type(coercer).__name__} -> {type(columns).__name__}, "
                          "not SchemaCoercer -> ColumnTransformer")
    if dict(coercer.columns_) != features:
        raise Unsupported("the coercer's columns are not the served features")
    branches = _branches(columns, features)
    width = len(columns.get_feature_names_out())
    if getattr(estimator, "n_features_in_", width) != width:
        raise Unsupported("the ColumnTransformer's output width is not the estimator's input width")
    name, model = _model(estimator, width)
    classes = getattr(estimator, "classes_", None) if hasattr(estimator, "predict_proba") else None
    return CompiledScorer(name=name, features=dict(features), branches=branches, model=model, width=width,
                          classes=classes)


def _branches(columns: Any, features: dict[str, str]) -> list[_Branch]:
    from sklearn.pipeline import Pipeline

    if getattr(columns, "sparse_output_", False):
        raise Unsupported("the ColumnTransformer returns a sparse matrix")
    names = list(features)
    branches = []
    for name, transformer, selected in columns.transformers_:
        selected = list(selected)
        if not selected:  # the remainder, when the branches take every column
            continue
        if isinstance(transformer, str):
            if transformer == "drop":
                continue
            raise Unsupported(f"ColumnTransformer branch {name!r} is {transformer!r}")
        if not all(isinstance(c, str) and c in features for c in selected):
            raise Unsupported(f"ColumnTransformer branch {name!r} does not select feature columns by name")
        kinds = {features[c] for c in selected}
        if len(kinds) != 1:
            raise Unsupported(f"ColumnTransformer branch {name!r} mixes column kinds {sorted(kinds)}")
        kind = kinds.pop()
        fitted = [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
        steps, data = [], kind
        for step in fitted:
            compiled, data = _step(step, data, selected)
            steps.append(compiled)
        if data != "numeric":
            raise Unsupported(f"ColumnTransformer branch {name!r} does not end in numbers")
        branches.append(_Branch(columns=[names.index(c) for c in selected], kind=kind, steps=steps))
    return branches


def _step(step: Any, data: str, columns: list[str]) -> tuple[Step, str]:
    """The compiled step and the kind of data it returns, for a step fed `data`."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler

    from looml.learn.features import DatetimeParts

    if isinstance(step, DatetimeParts) and data == "datetime":
        if list(step.columns_) != columns:
            raise Unsupported("DatetimeParts was fitted on other columns")
        return _datetime_parts(tuple(step.parts)), "numeric"
    if isinstance(step, SimpleImputer) and data in ("numeric", "categorical"):
        return _imputer(step, data), data
    if isinstance(step, StandardScaler | RobustScaler | MinMaxScaler) and data == "numeric":
        return _scaler(step), "numeric"
    if isinstance(step, OneHotEncoder) and data == "categorical":
        return _one_hot(step), "numeric"
    raise Unsupported(f"no compiled form of {type(step).__name__} on {data} columns")


def _imputer(imputer: Any, data: str) -> Step:
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise Unsupported(f"SimpleImputer with missing_values={missing!r}")
    statistics = imputer.statistics_
    if data == "numeric" and np.isnan(statistics.astype(np.float64)).any():
        raise Unsupported("SimpleImputer that drops an all-missing column")
    if data == "categorical" and pd.isna(statistics).any():
        raise Unsupported("SimpleImputer that drops an all-missing column")
    if imputer.add_indicator and data != "numeric":
        raise Unsupported("SimpleImputer with missing indicators on categorical columns")
    indicator = imputer.indicator_.features_ if imputer.add_indicator else None

    def impute(X: np.ndarray) -> np.ndarray:
        if data == "numeric":
            mask = np.isnan(X)
            if np.isinf(X).any():  # as SimpleImputer's input check refuses it
                raise ValueError("Input X contains infinity or a value too large for dtype('float64').")
            X = np.where(mask, statistics, X)
        else:
            mask = pd.isna(X)
            X = np.where(mask, statistics, X)
        if indicator is None:
            return X
        return np.hstack([X, mask[:, indicator].astype(np.float64)])

    return impute


def _scaler(scaler: Any) -> Step:
    from sklearn.preprocessing import MinMaxScaler, RobustScaler

    if isinstance(scaler, MinMaxScaler):
        scale, low, clip, bounds = scaler.scale_, scaler.min_, scaler.clip, scaler.feature_range

        def minmax(X: np.ndarray) -> np.ndarray:
            X = X * scale + low
            return np.clip(X, bounds[0], bounds[1]) if clip else X

        return minmax
    if isinstance(scaler, RobustScaler):
        center = scaler.center_ if scaler.with_centering else None
        divide = scaler.scale_ if scaler.with_scaling else None
    else:
        center = scaler.mean_ if scaler.with_mean else None
        divide = scaler.scale_ if scaler.with_std else None

    def standardize(X: np.ndarray) -> np.ndarray:
        if center is not None:
            X = X - center
        return X / divide if divide is not None else X

    return standardize


def _one_hot(encoder: Any) -> Step:
    if encoder.drop_idx_ is not None or encoder.sparse_output:
        raise Unsupported("OneHotEncoder with drop= or sparse output")
    if encoder.handle_unknown not in ("ignore", "infrequent_if_exist", "warn"):
        raise Unsupported(f"OneHotEncoder with handle_unknown={encoder.handle_unknown!r}")
    infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(encoder.categories_)
    tables, widths = [], []
    for categories, rare in zip(encoder.categories_, infrequent, strict=True):
        if categories.dtype != object or not all(isinstance(c, str) for c in categories):
            raise Unsupported("OneHotEncoder fitted on values that are not strings")
        rare = set() if rare is None else set(rare)
        frequent = [c for c in categories if c not in rare]
        table = {c: i for i, c in enumerate(frequent)}
        other = len(frequent) if rare else -1
        table.update({c: other for c in rare})
        unknown = -1 if encoder.handle_unknown == "ignore" else other  # "warn" encodes as infrequent_if_exist
        tables.append((table, unknown))
        widths.append(len(frequent) + (1 if rare else 0))
    offsets = np.cumsum([0, *widths])

    def one_hot(X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        out = np.zeros((n, offsets[-1]))
        rows = np.arange(n)
        for j, (table, unknown) in enumerate(tables):
            index = np.fromiter((table.get(v, unknown) for v in X[:, j]), dtype=np.intp, count=n)
            hit = index >= 0
            out[rows[hit], offsets[j] + index[hit]] = 1.0
        return out

    return one_hot


def _datetime_parts(parts: tuple[str, ...]) -> Step:
    """DatetimeParts on datetime64 arrays (pandas' calendar fields, computed with numpy units)."""
    def fields(stamps: np.ndarray) -> list[np.ndarray]:
        days = stamps.astype("M8[D]")
        day_number = days.astype(np.int64)
        months = stamps.astype("M8[M]")
        computed = {
            "year": lambda: stamps.astype("M8[Y]").astype(np.int64) + 1970,
            "month": lambda: months.astype(np.int64) % 12 + 1,
            "day": lambda: (days - months).astype(np.int64) + 1,
            "dayofweek": lambda: (day_number + 3) % 7,  # 1970-01-01 was a Thursday; Monday is 0
            "dayofyear": lambda: (days - stamps.astype("M8[Y]")).astype(np.int64) + 1,
            "hour": lambda: (stamps - days).astype("m8[h]").astype(np.int64),
            "minute": lambda: (stamps - stamps.astype("M8[h]")).astype("m8[m]").astype(np.int64),
        }
        missing = np.isnat(stamps)
        return [np.where(missing, np.nan, computed[p]().astype(np.float64)) for p in parts]

    def datetime_parts(columns: list[np.ndarray]) -> np.ndarray:
        return np.column_stack([f for stamps in columns for f in fields(stamps)])

    return datetime_parts


# -- estimators ------------------------------------------------------------------------------------

def _model(estimator: Any, width: int) -> tuple[str, Model]:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    if isinstance(estimator, LogisticRegression):
        return "compiled:linear", _logistic(estimator)
    if isinstance(estimator, Ridge | LinearRegression):
        return "compiled:linear", _linear(estimator)
    if isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return "compiled:onnx-trees", _hist_gradient_boosting(estimator, width)
    if isinstance(estimator, RandomForestClassifier | RandomForestRegressor | ExtraTreesClassifier
                  | ExtraTreesRegressor):
        return "compiled:onnx-trees", _forest(estimator, width)
    if type(estimator).__module__.startswith("lightgbm"):
        return "compiled:lightgbm", _lightgbm(estimator)
    raise Unsupported(f"no compiled form of {type(estimator).__name__}")


def _labelled(classes: np.ndarray) -> Callable[[np.ndarray], Prediction]:
    """Class probabilities to a Prediction, labelled as the reference labels them (argmax)."""
    return lambda proba: Prediction(labels=classes[np.argmax(proba, axis=1)], proba=proba)


def _logistic(model: Any) -> Model:
    from scipy.special import expit
    from sklearn.utils.extmath import softmax

    if getattr(model, "multi_class", "auto") == "ovr":
        raise Unsupported("one-vs-rest LogisticRegression")
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    binary = len(model.classes_) <= 2
    label = _labelled(model.classes_)

    def predict(X: np.ndarray) -> Prediction:
        # einsum, not BLAS: no thread pool woken for a one-row product
        scores = np.einsum("ij,kj->ik", X, coef) + intercept
        if binary:
            positive = expit(scores[:, 0])
            return label(np.stack([1 - positive, positive], axis=1))
        return label(softmax(scores, copy=False))

    return predict


def _linear(model: Any) -> Model:
    coef = np.asarray(model.coef_, dtype=np.float64)
    if coef.ndim != 1:
        raise Unsupported(f"{type(model).__name__} with {coef.shape[0]} targets")
    intercept = float(model.intercept_)
    return lambda X: Prediction(labels=np.einsum("ij,j->i", X, coef) + intercept)


def _lightgbm(model: Any) -> Model:
    if callable(getattr(model, "_objective", None)):
        raise Unsupported("LightGBM with a custom objective")
    booster = model.booster_
    if not hasattr(model, "classes_"):
        return lambda X: Prediction(labels=np.asarray(booster.predict(X, num_threads=1), dtype=np.float64))
    binary = len(model.classes_) <= 2
    label = _labelled(model.classes_)

    def predict(X: np.ndarray) -> Prediction:
        result = booster.predict(X, num_threads=1)
        return label(np.vstack((1.0 - result, result)).transpose() if binary else result)

    return predict


def _hist_gradient_boosting(model: Any, width: int) -> Model:
    """Every predictor's tree summed by ONNX Runtime in float64, then the model's own link."""
    if getattr(model, "_preprocessor", None) is not None or np.any(getattr(model, "is_categorical_", None)):
        raise Unsupported("HistGradientBoosting with categorical features")
    trees = []
    for predictors in model._predictors:
        for k, predictor in enumerate(predictors):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise Unsupported("HistGradientBoosting with categorical splits")
            trees.append((k, nodes["feature_idx"], nodes["num_threshold"], nodes["left"], nodes["right"],
                          nodes["missing_go_to_left"], nodes["is_leaf"].astype(bool), nodes["value"]))
    session = _tree_session(trees, model.n_trees_per_iteration_, width)
    baseline, loss = model._baseline_prediction, model._loss

    def raw(X: np.ndarray) -> np.ndarray:
        return session.run(None, {"X": X})[0] + baseline

    if not hasattr(model, "classes_"):
        return lambda X: Prediction(labels=np.asarray(loss.link.inverse(raw(X).ravel()), dtype=np.float64))
    label = _labelled(model.classes_)
    return lambda X: label(loss.predict_proba(raw(X)))


def _forest(model: Any, width: int) -> Model:
    """The forest's average of its trees' leaf values, by ONNX Runtime for small batches.

    ONNX Runtime walks all trees for one row in ~0.1 ms (scikit-learn: ~1 ms of per-tree calls),
    but for 1,000 rows it is 2x slower than the trees' own `tree_.predict`, so batches of
    `_FOREST_ONNX_ROWS` rows or more go tree by tree, as `predict_proba` does, without its checks.
    Both compare float32 inputs with float64 thresholds, as scikit-learn's trees do.
    """
    if model.n_outputs_ != 1:
        raise Unsupported("a forest with several outputs")
    classifier = hasattr(model, "classes_")
    k = len(model.classes_) if classifier else 1
    tables, trees, offset = [], [], 0
    for t, estimator in enumerate(model.estimators_):
        tree = estimator.tree_
        tables.append(tree.value[:, 0, :k])
        # each tree's "value" is the row of its leaf in the shared table, read back below
        trees.append((t, np.maximum(tree.feature, 0), tree.threshold, tree.children_left,
                      tree.children_right, tree.missing_go_to_left, tree.children_left == -1,
                      offset + np.arange(tree.node_count, dtype=np.float64)))
        offset += tree.node_count
    table = np.concatenate(tables)
    session = _tree_session(trees, len(trees), width)
    fitted = [estimator.tree_ for estimator in model.estimators_]

    def average(X: np.ndarray) -> np.ndarray:
        X = X.astype(np.float32)
        if len(X) < _FOREST_ONNX_ROWS:
            leaves = session.run(None, {"X": X.astype(np.float64)})[0].astype(np.intp)
            return table[leaves].sum(axis=1) / len(fitted)
        total = np.zeros((len(X), k))
        for tree in fitted:
            total += tree.predict(X)[:, :k]
        return total / len(fitted)

    if not classifier:
        return lambda X: Prediction(labels=average(X)[:, 0])
    label = _labelled(model.classes_)
    return lambda X: label(average(X))


def _tree_session(trees: list[tuple[Any, ...]], n_targets: int, width: int) -> Any:
    """An ONNX Runtime session summing `trees` per target: x <= threshold goes left, in float64.

    Each tree is (target, feature, threshold, left, right, missing_go_left, is_leaf, value),
    one array entry per node, node 0 the root; a leaf adds its value to its tree's target.
    """
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        "features", "splits", "true_ids", "true_leafs", "false_ids", "false_leafs", "missing",
        "weights", "targets")}
    roots, node_base, leaf_base = [], 0, 0
    for target, feature, threshold, left, right, missing_left, is_leaf, value in trees:
        if is_leaf.all():  # a lone leaf becomes a split whose two leaves both hold its value
            feature, threshold, missing_left = np.zeros(3, np.int64), np.zeros(3), np.zeros(3, np.int64)
            left, right, is_leaf = np.array([1, -1, -1]), np.array([2, -1, -1]), np.array([False, True, True])
            value = np.repeat(np.asarray(value)[:1], 3)
        interior, leaves = np.flatnonzero(~is_leaf), np.flatnonzero(is_leaf)
        node_of, leaf_of = np.full(len(is_leaf), -1), np.full(len(is_leaf), -1)
        node_of[interior] = node_base + np.arange(interior.size)
        leaf_of[leaves] = leaf_base + np.arange(leaves.size)
        roots.append(int(node_of[0]))
        for side, ids, flags in ((left, "true_ids", "true_leafs"), (right, "false_ids", "false_leafs")):
            child = np.asarray(side)[interior]
            parts[ids].append(np.where(is_leaf[child], leaf_of[child], node_of[child]))
            parts[flags].append(is_leaf[child].astype(np.int64))
        parts["features"].append(np.asarray(feature)[interior])
        parts["splits"].append(np.asarray(threshold, dtype=np.float64)[interior])
        parts["missing"].append(np.asarray(missing_left, dtype=np.int64)[interior])
        parts["weights"].append(np.asarray(value, dtype=np.float64)[leaves])
        parts["targets"].append(np.full(leaves.size, target))
        node_base += interior.size
        leaf_base += leaves.size
    flat = {k: np.concatenate(v) for k, v in parts.items()}
    ints = {k: flat[k].astype(np.int64).tolist() for k in flat if k not in ("splits", "weights")}
    node = helper.make_node(
        "TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=n_targets, aggregate_function=1,
        post_transform=0, tree_roots=roots, nodes_featureids=ints["features"],
        nodes_splits=numpy_helper.from_array(flat["splits"]),
        nodes_modes=numpy_helper.from_array(np.zeros(len(flat["splits"]), dtype=np.uint8)),  # x <= split
        nodes_truenodeids=ints["true_ids"], nodes_trueleafs=ints["true_leafs"],
        nodes_falsenodeids=ints["false_ids"], nodes_falseleafs=ints["false_leafs"],
        nodes_missing_value_tracks_true=ints["missing"], leaf_targetids=ints["targets"],
        leaf_weights=numpy_helper.from_array(flat["weights"]),
    )
    graph = helper.make_graph([node], "trees",
                              [helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, width])],
                              [helper.make_tensor_value_info("Y", TensorProto.DOUBLE, [None, n_targets])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                    helper.make_opsetid("ai.onnx.ml", 5)], ir_version=10)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # one row must not wake a thread pool; workers x threads <= cores
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


# -- validation rows: seeded, messy, from the schema and the training profile ---------------------

def _validation_batches(features: dict[str, str], schema: Schema | None,
                        profile: dict[str, Any] | None) -> list[tuple[str, Batch]]:
    """About 1,900 rows in the shapes a server receives: typed and messy lists, numpy arrays,
    single rows and uniform columns (pandas types a column by all its values), gaps, absent columns."""
    rng = np.random.default_rng(_SEED)
    stats = {c["name"]: c for c in (profile or {}).get("columns", [])}
    columns = schema.columns if schema is not None else {}
    domains = {name: list(getattr(columns.get(name), "categories", None)
                          or stats.get(name, {}).get("top_values") or stats.get(name, {}).get("frequent")
                          or ["a", "b", "c"]) for name in features}

    def draw(name: str, n: int, messy: bool) -> list[Any]:
        if features[name] == "numeric":
            return _numbers(rng, n, messy, stats.get(name, {}), columns.get(name))
        if features[name] == "datetime":
            return _dates(rng, n, messy, stats.get(name, {}))
        return _categories(rng, n, messy, domains[name])

    clean = {name: draw(name, 800, False) for name in features}
    messy = {name: draw(name, 800, True) for name in features}
    batches: list[tuple[str, Batch]] = [("typed", clean), ("messy", messy)]
    batches.append(("numpy arrays", {name: _as_array(values[:200], features[name])
                                     for name, values in clean.items()}))
    for i in range(12):
        batches.append(("one typed row", {name: values[i:i + 1] for name, values in clean.items()}))
        batches.append(("one messy row", {name: values[i:i + 1] for name, values in messy.items()}))
    batches.append(("all missing", {name: [None] for name in features}))
    first = next(iter(features))
    batches.append(("absent columns", {first: clean[first][:3]}))
    codes = {name: _integers(domains[name]) or [0, 1, 2, 3] for name in features}
    for label, value in (("ints", lambda c, i: c[i % len(c)]), ("ints and gaps", lambda c, i: c[i % len(c)]
                                                                if i % 3 else None),
                         ("bools", lambda c, i: i % 2 == 0), ("floats", lambda c, i: float(c[i % len(c)]))):
        batches.append((f"all {label}", {name: [value(codes[name], i) for i in range(8)]
                                         if kind != "datetime" else clean[name][:8]
                                         for name, kind in features.items()}))
    return batches


def _integers(domain: list[Any]) -> list[int]:
    """The categories that are whole numbers ("3" may arrive as 3, or as 3.0 next to a gap)."""
    found = []
    for value in domain:
        with contextlib.suppress(TypeError, ValueError):
            found.append(int(value))
    return found


def _numbers(rng: np.random.Generator, n: int, messy: bool, stats: dict[str, Any], column: Any) -> list:
    low = stats.get("min") if stats.get("min") is not None else getattr(column, "min", None)
    high = stats.get("max") if stats.get("max") is not None else getattr(column, "max", None)
    if low is None or high is None or not np.isfinite([low, high, high - low]).all():
        low, high = -10.0, 10.0  # an infinite draw would make both scorers refuse the whole batch
    span = (high - low) or 1.0
    quantiles = [q for q in (stats.get("quantiles") or {}).values() if q is not None]
    points = np.array([low, high, *quantiles], dtype=np.float64)
    pick = rng.random(n)
    x = np.where(pick < 0.2, rng.choice(points, n), rng.uniform(low, high, n))
    x = np.where((pick >= 0.2) & (pick < 0.3), rng.uniform(low - span, high + span, n), x)
    if stats.get("integral"):
        x = np.round(x)
    out: list[Any] = [None if p > 0.9 else (int(v) if stats.get("integral") else float(v))
                      for p, v in zip(pick, x, strict=True)]
    if messy:
        forms: list[Callable[[Any], Any]] = [str, lambda v: f" {v} ", lambda v: "not a number", lambda v: "",
                                              lambda v: float("nan"), lambda v: True, lambda v: round(v)]
        for i in np.flatnonzero(rng.random(n) < 0.4):
            if out[i] is not None:
                out[i] = forms[int(rng.integers(len(forms)))](out[i])
    return out


def _categories(rng: np.random.Generator, n: int, messy: bool, domain: list[Any]) -> list:
    odd: list[Any] = ["unseen-1", "unseen-2", "(missing)", None]
    if messy:
        odd += ["", 1, 2.5, 0, True, False, float("nan")]
        odd += [f(v) for v in _integers(domain) for f in (int, float)]
    pick = rng.random(n)
    return [domain[int(rng.integers(len(domain)))] if p < 0.8 else odd[int(rng.integers(len(odd)))]
            for p in pick]


def _dates(rng: np.random.Generator, n: int, messy: bool, stats: dict[str, Any]) -> list:
    try:
        low, high = pd.Timestamp(stats["earliest"]).value, pd.Timestamp(stats["latest"]).value
    except (KeyError, TypeError, ValueError):
        low, high = pd.Timestamp("2015-01-01").value, pd.Timestamp("2025-01-01").value
    stamps = [pd.Timestamp(int(v)).to_pydatetime() for v in rng.integers(low, high + 1, n) // 1000 * 1000]
    out: list[Any] = [None if p > 0.9 else s.strftime("%Y-%m-%dT%H:%M:%S")
                      for p, s in zip(rng.random(n), stamps, strict=True)]
    if messy:
        forms: list[Callable[[dt.datetime], Any]] = [
            lambda s: s.strftime("%Y-%m-%d"), lambda s: s.strftime("%Y-%m-%d %H:%M:%S.%f"), lambda s: s,
            lambda s: "not a date", lambda s: "", lambda s: None, lambda s: "1965-07-04 13:45:00"]
        for i in np.flatnonzero(rng.random(n) < 0.5):
            out[i] = forms[int(rng.integers(len(forms)))](stamps[i])
    return out


def _as_array(values: list, kind: str) -> np.ndarray:
    if kind == "numeric":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if kind == "datetime":
        return np.array(values, dtype="datetime64[s]")
    return np.array(["(missing)" if v is None else v for v in values], dtype=str)
