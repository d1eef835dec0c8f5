"""The estimators as arithmetic on the dense matrix: linear models, the MLP's forward pass,
LightGBM's, XGBoost's and CatBoost's own boosters on one thread, trees in one ONNX TreeEnsemble,
and a target transform's inverse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from looml.serve.compiled.base import Model, Unsupported
from looml.serve.scoring import Prediction

__all__ = ["compile_estimator"]

_FOREST_ONNX_ROWS = 32  # measured crossover: ~20 rows (0.07 ms a row by ONNX, 0.9 ms + 0.03 ms a row by tree)


def compile_estimator(estimator: Any, width: int) -> tuple[str, Model]:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge, RidgeCV
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if isinstance(estimator, TransformedTargetRegressor):
        return _transformed_target(estimator, width)
    if isinstance(estimator, LogisticRegression):
        return "compiled:linear", _logistic(estimator)
    if isinstance(estimator, Ridge | RidgeCV | LinearRegression | Lasso | ElasticNet):
        return "compiled:linear", _linear(estimator)
    if isinstance(estimator, MLPClassifier | MLPRegressor):
        return "compiled:mlp", _mlp(estimator)
    if isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return "compiled:onnx-trees", _hist_gradient_boosting(estimator, width)
    if isinstance(estimator, RandomForestClassifier | RandomForestRegressor | ExtraTreesClassifier
                  | ExtraTreesRegressor | DecisionTreeClassifier | DecisionTreeRegressor):
        return "compiled:onnx-trees", _forest(estimator, width)
    module = type(estimator).__module__
    if module.startswith("lightgbm"):
        return "compiled:lightgbm", _lightgbm(estimator)
    if module.startswith(("xgboost", "looml.learn.xgb")):
        return "compiled:xgboost", _xgboost(estimator)
    if module.startswith("catboost"):
        return "compiled:catboost", _catboost(estimator)
    raise Unsupported(f"no compiled form of {type(estimator).__name__}")


def _transformed_target(model: Any, width: int) -> tuple[str, Model]:
    """The inner regressor compiled, then the fitted target transformer's inverse."""
    if model.transformer_ is None or getattr(model, "_training_dim", 1) != 1:
        raise Unsupported("TransformedTargetRegressor with func / inverse_func or several targets")
    name, inner = compile_estimator(model.regressor_, width)
    inverse = model.transformer_.inverse_transform

    def predict(X: np.ndarray) -> Prediction:
        values = np.asarray(inner(X).labels, dtype=np.float64)
        return Prediction(labels=np.asarray(inverse(values.reshape(-1, 1)), dtype=np.float64).ravel())

    return name, predict


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


def _mlp(model: Any) -> Model:
    """The forward pass: each layer's weights and biases, the hidden activation, then the output's."""
    from scipy.special import expit
    from sklearn.utils.extmath import softmax

    hidden = {"relu": lambda a: np.maximum(a, 0, out=a), "tanh": lambda a: np.tanh(a, out=a),
              "logistic": lambda a: expit(a, out=a), "identity": lambda a: a}[model.activation]
    layers = [(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64))
              for w, b in zip(model.coefs_, model.intercepts_, strict=True)]
    output = model.out_activation_

    def forward(X: np.ndarray) -> np.ndarray:
        a = X
        for i, (weights, bias) in enumerate(layers):
            # einsum for a few rows: no BLAS thread pool woken for a one-row product
            a = (np.einsum("ij,jk->ik", a, weights) if len(a) < 32 else a @ weights) + bias
            if i < len(layers) - 1:
                a = hidden(a)
        return a

    if not hasattr(model, "classes_"):
        if model.n_outputs_ != 1:
            raise Unsupported("an MLPRegressor with several outputs")
        return lambda X: Prediction(labels=forward(X).ravel())
    if output not in ("logistic", "softmax") or (output == "logistic" and len(model.classes_) > 2):
        raise Unsupported(f"a multi-label MLPClassifier ({output} output)")
    label = _labelled(model.classes_)

    def predict(X: np.ndarray) -> Prediction:
        scores = forward(X)
        if output == "softmax":
            return label(softmax(scores, copy=False))
        positive = expit(scores[:, 0])
        return label(np.stack([1 - positive, positive], axis=1))

    return predict


def _xgboost(model: Any) -> Model:
    """XGBoost's booster (a copy, set to one thread) on the dense matrix."""
    booster = model.get_booster().copy()
    booster.set_param({"nthread": 1})
    if not hasattr(model, "classes_") or not hasattr(model, "predict_proba"):
        return lambda X: Prediction(labels=np.asarray(booster.inplace_predict(X), dtype=np.float64).ravel())
    classes = np.asarray(model.classes_)
    label = _labelled(classes)

    def predict(X: np.ndarray) -> Prediction:
        result = np.asarray(booster.inplace_predict(X))  # float32, as XGBoost's predict_proba
        if result.ndim == 1 or result.shape[1] == 1:
            result = result.reshape(-1)
            result = np.vstack((1.0 - result, result)).transpose()  # 1 - p in float32 too
        return label(result.astype(np.float64))

    return predict


def _catboost(model: Any) -> Model:
    """CatBoost's own predictor on one thread (the model's features are all numbers here)."""
    if model.get_cat_feature_indices():
        raise Unsupported("CatBoost with categorical features of its own")
    if not hasattr(model, "predict_proba"):
        return lambda X: Prediction(labels=np.asarray(model.predict(X, thread_count=1), dtype=np.float64))
    label = _labelled(np.asarray(model.classes_))
    return lambda X: label(np.asarray(model.predict(X, prediction_type="Probability", thread_count=1),
                                      dtype=np.float64))


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
    estimators = getattr(model, "estimators_", [model])  # a decision tree is a forest of one
    tables, trees, offset = [], [], 0
    for t, estimator in enumerate(estimators):
        tree = estimator.tree_
        tables.append(tree.value[:, 0, :k])
        # each tree's "value" is the row of its leaf in the shared table, read back below
        trees.append((t, np.maximum(tree.feature, 0), tree.threshold, tree.children_left,
                      tree.children_right, tree.missing_go_to_left, tree.children_left == -1,
                      offset + np.arange(tree.node_count, dtype=np.float64)))
        offset += tree.node_count
    table = np.concatenate(tables)
    session = _tree_session(trees, len(trees), width)
    fitted = [estimator.tree_ for estimator in estimators]

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
