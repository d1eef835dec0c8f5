"""The model zoo: estimators per family and task, with explicit seeds and thread counts.

`make_estimator` builds a fresh estimator for a candidate (a zoo family, or any
scikit-learn-compatible class given by import path); `check_models` checks every candidate's
params and searched space against the estimator before any work starts.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import BaseEstimator, is_classifier, is_regressor

from looml.errors import Problem, SpecError, did_you_mean
from looml.spec import MODEL_NAMES, CandidateSpec, ModelsSpec

__all__ = ["ROW_LIMIT", "check_models", "estimator_class", "make_estimator", "missing_extra", "threads_for"]

SMALL_TABLE_ROWS = 5_000
ROW_LIMIT = 20_000  # svm and knn above this many rows only with `allow_large: true`


@dataclass(frozen=True)
class _Family:
    """How to build one zoo family: classes by task, defaults, and its thread / seed parameters."""

    classification: str
    regression: str
    defaults: dict[str, Any] = field(default_factory=dict)
    by_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    threads: str | None = "n_jobs"
    seed: str | None = "random_state"
    extra: str = ""  # the pip extra that installs it, if optional


_FOREST = {"n_estimators": 100, "min_samples_leaf": 2, "max_features": "sqrt"}
_SAGA = {"solver": "saga", "max_iter": 2000}
_FAMILIES: dict[str, _Family] = {
    "linear": _Family("sklearn.linear_model:LogisticRegression", "sklearn.linear_model:Ridge",
                      by_task={"classification": {"max_iter": 2000, "C": 1.0}, "regression": {"alpha": 1.0}},
                      threads=None),
    "ridge": _Family("sklearn.linear_model:LogisticRegression", "sklearn.linear_model:Ridge",
                     by_task={"classification": {"max_iter": 2000, "l1_ratio": 0.0}}, threads=None),
    "lasso": _Family("sklearn.linear_model:LogisticRegression", "sklearn.linear_model:Lasso",
                     by_task={"classification": {**_SAGA, "l1_ratio": 1.0}, "regression": {"max_iter": 5000}},
                     threads=None),
    "elastic_net": _Family("sklearn.linear_model:LogisticRegression", "sklearn.linear_model:ElasticNet",
                           by_task={"classification": {**_SAGA, "l1_ratio": 0.5},
                                    "regression": {"max_iter": 5000}}, threads=None),
    "knn": _Family("sklearn.neighbors:KNeighborsClassifier", "sklearn.neighbors:KNeighborsRegressor",
                   {"n_neighbors": 15, "weights": "distance"}, seed=None),
    "svm": _Family("sklearn.svm:SVC", "sklearn.svm:SVR", by_task={"classification": {"probability": True}},
                   threads=None),
    "decision_tree": _Family("sklearn.tree:DecisionTreeClassifier", "sklearn.tree:DecisionTreeRegressor",
                             {"max_depth": 8, "min_samples_leaf": 5}, threads=None),
    # min_samples_leaf keeps forests on large tables from growing one leaf per row.
    "random_forest": _Family("sklearn.ensemble:RandomForestClassifier",
                             "sklearn.ensemble:RandomForestRegressor", _FOREST),
    "extra_trees": _Family("sklearn.ensemble:ExtraTreesClassifier", "sklearn.ensemble:ExtraTreesRegressor",
                           _FOREST),
    # Gradient boosting with an L2 penalty on leaf values (XGBoost's default, lambda 1): without
    # it a leaf whose rows are all confidently predicted has a near-zero hessian and a huge
    # value, and multiclass probabilities collapse to 0 on rare classes (bird_strike_phase,
    # 9 classes: LightGBM's test log loss 1.53 without, 0.67 with; the CV log loss of
    # hist_gradient_boosting reached 12).
    "hist_gradient_boosting": _Family(
        "sklearn.ensemble:HistGradientBoostingClassifier", "sklearn.ensemble:HistGradientBoostingRegressor",
        {"max_iter": 200, "learning_rate": 0.1, "early_stopping": "auto", "l2_regularization": 1.0},
        threads=None),
    # Otherwise LightGBM's own defaults (the baseline a user reaches for), made deterministic.
    # Measured on the corpus: 200 trees at 0.05 with 0.8 row and column sampling scored no
    # better and took twice as long (biomass_heating_value RMSE 0.999 against 0.929).
    "lightgbm": _Family("lightgbm:LGBMClassifier", "lightgbm:LGBMRegressor",
                        {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31, "reg_lambda": 1.0,
                         "verbose": -1, "deterministic": True, "force_row_wise": True}),
    "xgboost": _Family("looml.learn.xgb:XGBLabelClassifier", "xgboost:XGBRegressor",
                       {"n_estimators": 200, "learning_rate": 0.1, "max_depth": 6, "tree_method": "hist",
                        "verbosity": 0}),
    # No early stopping: it watches accuracy, which stops long before the probabilities are good
    # (digits: log loss 0.28 with it, 0.08 without); training stops when its own loss stalls.
    "mlp": _Family("sklearn.neural_network:MLPClassifier", "sklearn.neural_network:MLPRegressor",
                   {"hidden_layer_sizes": (128,), "alpha": 0.01, "max_iter": 200}, threads=None),
    "catboost": _Family("catboost:CatBoostClassifier", "catboost:CatBoostRegressor",
                        {"iterations": 300, "learning_rate": 0.1, "depth": 6, "verbose": 0,
                         "allow_writing_files": False}, threads="thread_count", seed="random_seed",
                        extra="catboost"),
}
assert set(_FAMILIES) == set(MODEL_NAMES)


def threads_for(rows: int, n_jobs: int, cores: int | None = None) -> int:
    """Threads per model fit: one for small tables, else `n_jobs` (-1: every core).

    On small tables OpenMP start-up and spin-waiting cost more than the threads gain, and
    far more when another process holds a core (measured: LightGBM on 240 rows took 28 s
    with two threads on a busy 2-core machine, under 1 s with one).
    """
    if rows < SMALL_TABLE_ROWS:
        return 1
    return (cores or os.cpu_count() or 1) if n_jobs == -1 else max(1, n_jobs)


def missing_extra(candidate: CandidateSpec) -> str:
    """The pip extra a zoo candidate needs and that is not installed, else ''."""
    family = _FAMILIES.get(candidate.family)
    if candidate.estimator is not None or family is None or not family.extra:
        return ""
    module = family.classification.partition(":")[0]
    try:
        found = importlib.util.find_spec(module) is not None
    except ValueError:  # in sys.modules as None: imports of it fail
        found = False
    return "" if found else family.extra


def _import(path: str, loc: str, extra: str = "") -> type:
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        fix = (f"install it: pip install 'looml[{extra}]'" if extra
               else "check the module path and that its package is installed")
        raise SpecError(Problem(loc=loc, value=path, message=f"cannot import {module!r}: {exc}",
                                fix=fix)) from exc
    except AttributeError as exc:
        raise SpecError(Problem(loc=loc, value=path, message=f"{module!r} has no {name!r}",
                                fix="check the class name after the ':'")) from exc


def estimator_class(candidate: CandidateSpec, task: str, loc: str) -> type:
    """The estimator class of a candidate for a task; `SpecError` if it cannot be imported or is
    not an estimator of that task."""
    if candidate.estimator is None:
        family = _FAMILIES[candidate.family]
        path = family.classification if task == "classification" else family.regression
        return _import(path, f"{loc}.name", family.extra)
    cls = _import(candidate.estimator, f"{loc}.estimator")
    if not (isinstance(cls, type) and hasattr(cls, "fit") and hasattr(cls, "get_params")):
        raise SpecError(Problem(loc=f"{loc}.estimator", value=candidate.estimator,
                                message="not a scikit-learn estimator (needs fit and get_params)",
                                fix="give a class following the scikit-learn estimator API"))
    return cls


def _base_params(candidate: CandidateSpec, task: str, seed: int, n_jobs: int,
                 valid: set[str]) -> dict[str, Any]:
    if candidate.estimator is not None:
        own = {"random_state": seed} if "random_state" in valid else {}
        return own | ({"n_jobs": n_jobs} if "n_jobs" in valid else {})
    family = _FAMILIES[candidate.family]
    params = {**family.defaults, **family.by_task.get(task, {})}
    if family.seed and family.seed in valid:
        params[family.seed] = seed
    if family.threads:
        params[family.threads] = n_jobs
    return params


def _init_params(cls: type) -> set[str]:
    """Named constructor arguments (CatBoost's `get_params` lists only the ones set)."""
    return {name for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def make_estimator(candidate: CandidateSpec | str, task: str, params: dict[str, Any], seed: int,
                   n_jobs: int, loc: str = "models.candidates") -> BaseEstimator:
    """A fresh, unfitted estimator for a candidate: family defaults, seed and threads, then the
    candidate's fixed `params`, then `params` given here (a trial's searched values)."""
    if isinstance(candidate, str):
        candidate = CandidateSpec(name=candidate)
    cls = estimator_class(candidate, task, loc)
    try:
        valid = set(cls().get_params(deep=False)) | _init_params(cls)
    except TypeError as exc:
        raise SpecError(Problem(loc=f"{loc}.estimator", value=candidate.estimator,
                                message=f"cannot be built without arguments: {exc}",
                                fix="give every constructor argument a default")) from exc
    other = "regressor" if task == "classification" else "classifier"
    if candidate.estimator is not None and (is_regressor if other == "regressor" else is_classifier)(cls()):
        raise SpecError(Problem(loc=f"{loc}.estimator", value=candidate.estimator,
                                message=f"{cls.__name__} is a {other}, and the task is {task}",
                                fix=f"give an estimator for {task}"))
    chosen = {**candidate.params, **params}
    unknown = [k for k in chosen if k not in valid]
    if unknown:
        where = {k: "params" if k in candidate.params else "space" for k in unknown}
        raise SpecError([
            Problem(loc=f"{loc}.{where[k]}.{k}", message=f"not a parameter of {cls.__name__}",
                    fix=did_you_mean(k, valid) or f"valid parameters: {', '.join(sorted(valid))}")
            for k in unknown
        ])
    return cls(**{**_base_params(candidate, task, seed, n_jobs, valid), **chosen})


def check_models(models: ModelsSpec, tasks: tuple[str, ...] = ("classification", "regression")) -> None:
    """Raise one `SpecError` for every candidate that cannot be built: an import path that does
    not import, or a param / space key that no variant of its model takes (for `tasks`).

    A param valid for only one task (`C` of the logistic, not of the ridge) is checked
    again, against the inferred task, when the candidate is built.
    """
    problems: list[Problem] = []
    for i, candidate in enumerate(models.candidates):
        if not models.listed and missing_extra(candidate):
            continue  # a default candidate whose extra is not installed: the tuner skips it
        loc = f"models.candidates[{i}]"
        searched = {k: None for k in candidate.space}
        bad: dict[str, list[Problem]] = {}
        for task in tasks:
            try:
                make_estimator(candidate, task, searched, seed=0, n_jobs=1, loc=loc)
            except SpecError as exc:
                for problem in exc.problems:
                    bad.setdefault(problem.loc, []).append(problem)
        for found in bad.values():
            if len(found) == len(tasks):  # wrong for every variant; prefer a "did you mean"
                problems.append(next((p for p in found if p.fix.startswith("did you mean")), found[0]))
    if problems:
        raise SpecError(problems)
