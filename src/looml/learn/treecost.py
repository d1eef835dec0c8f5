"""What explaining one row with path-dependent TreeSHAP costs, read from a tree model's structure.

    shap_seconds(model) -> seconds per row (an estimate, no fit or call needed)
    fewer_trees(model, trees) -> a bagged forest cut to its first `trees` trees

TreeSHAP walks every node of every tree and unwinds the path to each leaf: about the sum over
leaves of (the leaf's depth + 1)^2 steps a tree (where only the size of a tree is known, as for
boosted trees, its leaves x (its depth + 1)^2). Measured with shap 0.49 on this project's 2-core
machine (bench/README.md, "explanations"): 0.5-3 ns a step, from deep unlimited forests to
shallow ones, whatever the number of classes; LightGBM's own `pred_contrib` runs at about the
same rate. An unlimited forest of a 20,000-row table costs seconds a row, so the explanations
of a model version are sampled to fit a time (`learn.explanations`).

A bagged forest's trees are independent draws, so the SHAP values of its first k trees are an
unbiased estimate of the whole forest's (a forest's output is the mean of its trees'); boosted
models add their trees in sequence and are never cut.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

__all__ = ["SECONDS_PER_STEP", "fewer_trees", "is_bagged_forest", "shap_seconds", "trees_within"]

SECONDS_PER_STEP = 1.5e-9  # one TreeSHAP step (see the module docstring)
_LINEAR_SECONDS = 2e-6  # coefficient x value, one row


def shap_seconds(model: Any) -> float:
    """Seconds path-dependent TreeSHAP takes for one row of `model` (a linear model: its
    product of coefficients); 0 for a model whose structure this cannot read."""
    steps = _steps(model)
    return steps * SECONDS_PER_STEP if steps else (_LINEAR_SECONDS if hasattr(model, "coef_") else 0.0)


def is_bagged_forest(model: Any) -> bool:
    """A scikit-learn random forest or extra-trees model: its output is the mean of its trees'."""
    return type(model).__module__.startswith("sklearn.ensemble") and type(model).__name__.startswith(
        ("RandomForest", "ExtraTrees"))


def trees_within(model: Any, seconds: float) -> int:
    """How many of a bagged forest's first trees TreeSHAP explains in `seconds` a row."""
    spent = np.cumsum([_tree_steps(t.tree_) for t in model.estimators_])
    return int(np.searchsorted(spent * SECONDS_PER_STEP, seconds, side="right"))


def fewer_trees(model: Any, trees: int) -> Any:
    """A shallow copy of a bagged forest with its first `trees` trees (the model itself when it has
    no more than that)."""
    if not is_bagged_forest(model) or len(model.estimators_) <= trees:
        return model
    cut = copy.copy(model)
    cut.estimators_ = model.estimators_[:trees]
    cut.n_estimators = trees
    return cut


def _steps(model: Any) -> float:
    if hasattr(model, "booster_"):  # LightGBM
        leaves = int(model.get_params().get("num_leaves") or 31)
        depth = int(model.get_params().get("max_depth") or -1)
        depth = depth if depth > 0 else 2 * math.log2(max(leaves, 2))  # leaf-wise trees grow deeper
        return model.booster_.num_trees() * leaves * (depth + 1) ** 2
    if hasattr(model, "get_booster"):  # XGBoost: depth-wise, at most 2^depth leaves a tree
        depth = int(model.get_params().get("max_depth") or 6)
        trees = len(model.get_booster().get_dump())
        return trees * 2.0**depth * (depth + 1) ** 2
    if hasattr(model, "tree_count_"):  # CatBoost: symmetric trees
        depth = int(model.get_params().get("depth") or 6)
        return model.tree_count_ * 2.0**depth * (depth + 1) ** 2
    if hasattr(model, "_predictors"):  # histogram gradient boosting
        return float(sum(p.get_n_leaf_nodes() * (p.get_max_depth() + 1) ** 2
                         for stage in model._predictors for p in stage))
    trees = [model] if hasattr(model, "tree_") else list(np.ravel(getattr(model, "estimators_", [])))
    return float(sum(_tree_steps(t.tree_) for t in trees if hasattr(t, "tree_")))


def _tree_steps(tree: Any) -> float:
    """Sum over a scikit-learn tree's leaves of (depth + 1)^2, its nodes visited level by level."""
    left, right = tree.children_left, tree.children_right
    steps, depth, level = 0.0, 0, np.array([0])
    while level.size:
        leaf = left[level] < 0
        steps += leaf.sum() * (depth + 1) ** 2
        inner = level[~leaf]
        level, depth = np.concatenate([left[inner], right[inner]]), depth + 1
    return steps
