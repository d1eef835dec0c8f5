"""Default search spaces and the warm-start portfolio of each model family.

A space maps an estimator parameter to a `ParamRange`; a candidate's own `space:` overrides
or extends it. The portfolio lists known-good configurations tried first (the first one is
the family's default, so a search always includes what `tuning.method: none` would try).
Ranges follow the FLAML / AutoGluon defaults, narrowed where a wide range mostly wastes trials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np
from pydantic import ValidationError

from looml.errors import Problem, SpecError, did_you_mean
from looml.learn.zoo import check_models
from looml.spec import CandidateSpec, ParamRange, Spec

__all__ = ["Config", "apply_choices", "check_search", "default_space", "grid_configs", "merged_space",
           "portfolio", "suggest", "suggest_config", "warm_start"]


def _r(low: float, high: float, log: bool = False) -> ParamRange:
    return ParamRange(low=low, high=high, log=log)


def _c(*choices: Any) -> ParamRange:
    return ParamRange(choices=list(choices))


_GBM_COMMON = {"learning_rate": _r(0.01, 0.3, log=True), "subsample": _r(0.5, 1.0),
               "colsample_bytree": _r(0.4, 1.0), "reg_lambda": _r(1e-3, 10.0, log=True)}

_SPACES: dict[str, dict[str, ParamRange]] = {
    "linear/classification": {"C": _r(1e-3, 100.0, log=True)},
    "linear/regression": {"alpha": _r(1e-3, 1000.0, log=True)},
    "ridge/classification": {"C": _r(1e-3, 100.0, log=True)},
    "ridge/regression": {"alpha": _r(1e-3, 1000.0, log=True)},
    "lasso/classification": {"C": _r(1e-3, 100.0, log=True)},
    "lasso/regression": {"alpha": _r(1e-4, 10.0, log=True)},
    "elastic_net/classification": {"C": _r(1e-3, 100.0, log=True), "l1_ratio": _r(0.05, 0.95)},
    "elastic_net/regression": {"alpha": _r(1e-4, 10.0, log=True), "l1_ratio": _r(0.05, 0.95)},
    "knn": {"n_neighbors": _r(3, 64, log=True), "weights": _c("uniform", "distance")},
    "svm": {"C": _r(0.01, 100.0, log=True), "gamma": _r(1e-4, 1.0, log=True)},
    "decision_tree": {"max_depth": _r(2, 20), "min_samples_leaf": _r(1, 64, log=True)},
    "random_forest": {"n_estimators": _r(50, 400, log=True), "min_samples_leaf": _r(1, 16, log=True),
                      "max_features": _c("sqrt", 0.3, 0.6, 1.0)},
    "extra_trees": {"n_estimators": _r(50, 400, log=True), "min_samples_leaf": _r(1, 16, log=True),
                    "max_features": _c("sqrt", 0.3, 0.6, 1.0)},
    "hist_gradient_boosting": {"learning_rate": _r(0.01, 0.3, log=True),
                               "max_leaf_nodes": _r(8, 128, log=True),
                               "min_samples_leaf": _r(5, 100, log=True),
                               "l2_regularization": _r(1e-3, 10.0, log=True)},
    "lightgbm": {"n_estimators": _r(50, 1000, log=True), "num_leaves": _r(8, 256, log=True),
                 "min_child_samples": _r(5, 100, log=True), **_GBM_COMMON},
    "xgboost": {"n_estimators": _r(50, 1000, log=True), "max_depth": _r(3, 10),
                "min_child_weight": _r(0.5, 20.0, log=True), **_GBM_COMMON},
    "mlp": {"alpha": _r(1e-6, 0.1, log=True), "learning_rate_init": _r(1e-4, 1e-2, log=True)},
    "catboost": {"iterations": _r(100, 1000, log=True), "depth": _r(4, 10),
                 "learning_rate": _r(0.01, 0.3, log=True), "l2_leaf_reg": _r(1.0, 10.0, log=True)},
}

# Known-good configurations, best-known first. Only parameters in the searched space are used.
_PORTFOLIO: dict[str, list[dict[str, Any]]] = {
    "linear/classification": [{"C": 1.0}, {"C": 0.1}],
    "linear/regression": [{"alpha": 1.0}, {"alpha": 10.0}],
    "ridge/classification": [{"C": 1.0}],
    "ridge/regression": [{"alpha": 1.0}],
    "lasso/classification": [{"C": 1.0}],
    "lasso/regression": [{"alpha": 0.01}],
    "elastic_net/classification": [{"C": 1.0, "l1_ratio": 0.5}],
    "elastic_net/regression": [{"alpha": 0.01, "l1_ratio": 0.5}],
    "knn": [{"n_neighbors": 15, "weights": "distance"}],
    "svm": [{"C": 1.0}],
    "decision_tree": [{"max_depth": 8, "min_samples_leaf": 5}],
    "random_forest": [{"n_estimators": 200, "min_samples_leaf": 2, "max_features": "sqrt"},
                      {"n_estimators": 300, "min_samples_leaf": 1, "max_features": 0.6}],
    "extra_trees": [{"n_estimators": 200, "min_samples_leaf": 2, "max_features": "sqrt"}],
    "hist_gradient_boosting": [{"learning_rate": 0.1},
                               {"learning_rate": 0.05, "max_leaf_nodes": 63, "min_samples_leaf": 20}],
    "lightgbm": [{"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31},
                 {"n_estimators": 500, "learning_rate": 0.03, "num_leaves": 15, "min_child_samples": 20,
                  "colsample_bytree": 0.6},
                 {"n_estimators": 300, "learning_rate": 0.1, "num_leaves": 63, "min_child_samples": 10,
                  "reg_lambda": 1.0}],
    "xgboost": [{"n_estimators": 200, "learning_rate": 0.1, "max_depth": 6},
                {"n_estimators": 500, "learning_rate": 0.03, "max_depth": 4, "subsample": 0.8,
                 "colsample_bytree": 0.8}],
    "mlp": [{"alpha": 0.01}, {"alpha": 0.001, "learning_rate_init": 0.003}],
    "catboost": [{"iterations": 300, "learning_rate": 0.1, "depth": 6}],
}


def _key(table: dict[str, Any], family: str, task: str) -> str | None:
    for key in (f"{family}/{task}", family):
        if key in table:
            return key
    return None


def default_space(family: str, task: str) -> dict[str, ParamRange]:
    """The family's default search space for a task ({} for a user's own estimator)."""
    key = _key(_SPACES, family, task)
    return dict(_SPACES[key]) if key else {}


def portfolio(family: str, task: str) -> list[dict[str, Any]]:
    """Known-good configurations of a family, best-known first ([] for a user's own estimator)."""
    key = _key(_PORTFOLIO, family, task)
    return [dict(c) for c in _PORTFOLIO[key]] if key else []


@dataclass(frozen=True)
class Config:
    """One point of the search: a candidate (by index), its searched params, preprocessing choices."""

    candidate: int
    params: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, Any] = field(default_factory=dict)  # dotted spec path -> value


def merged_space(candidate: CandidateSpec, task: str, own_only: bool = False) -> dict[str, ParamRange]:
    """The family's default space, overridden / extended by the candidate's, minus fixed params
    (`own_only`: the candidate's space alone, as grid search uses it)."""
    defaults = {} if own_only or candidate.estimator is not None else default_space(candidate.family, task)
    space = {**defaults, **candidate.space}
    return {k: v for k, v in space.items() if k not in candidate.params}


def _primitive(values: list[Any]) -> bool:
    return all(v is None or isinstance(v, str | int | float | bool) for v in values)


def suggest(trial: Any, name: str, value_range: ParamRange) -> Any:
    """Ask an Optuna trial for one parameter (choices that Optuna cannot store go by index)."""
    if value_range.choices is not None:
        if _primitive(value_range.choices):
            return trial.suggest_categorical(name, value_range.choices)
        return value_range.choices[trial.suggest_categorical(name, list(range(len(value_range.choices))))]
    if value_range.is_int:
        return trial.suggest_int(name, int(value_range.low), int(value_range.high),
                                 step=int(value_range.step or 1), log=value_range.log)
    return trial.suggest_float(name, float(value_range.low), float(value_range.high),
                               step=value_range.step, log=value_range.log)


def suggest_config(trial: Any, names: list[str], spaces: dict[int, dict[str, ParamRange]],
                   choices: dict[str, list[Any]]) -> Config:
    """Define-by-run: the candidate is a categorical parameter, its params conditional on it."""
    name = trial.suggest_categorical("model", names)
    index = list(spaces)[names.index(name)]
    params = {p: suggest(trial, f"{name}.{p}", r) for p, r in spaces[index].items()}
    picked = {path: suggest(trial, path, ParamRange(choices=values)) for path, values in choices.items()}
    return Config(index, params, picked)


def _values(value_range: ParamRange) -> list[Any]:
    if value_range.choices is not None:
        return list(value_range.choices)
    if value_range.is_int:
        return list(range(int(value_range.low), int(value_range.high) + 1, int(value_range.step or 1)))
    count = int(np.floor((value_range.high - value_range.low) / value_range.step + 1e-9)) + 1
    return [round(float(value_range.low + i * value_range.step), 12) for i in range(count)]


def grid_configs(spaces: dict[int, dict[str, ParamRange]], choices: dict[str, list[Any]]) -> list[Config]:
    """Every point of the finite grid, candidate by candidate (ranges need a step or int type)."""
    configs = []
    prep = [dict(zip(choices, values, strict=True)) for values in product(*choices.values())]
    for index, space in spaces.items():
        for values in product(*(_values(r) for r in space.values())):
            params = dict(zip(space, values, strict=True))
            configs += [Config(index, params, picked) for picked in prep]
    return configs


def warm_start(name: str, candidate: CandidateSpec, task: str, space: dict[str, ParamRange],
               defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """Portfolio configurations as Optuna fixed params (`name.param`), with the estimator's
    `defaults` filling searched params a configuration leaves open; values outside the
    candidate's space are left to the sampler."""
    out = []
    for config in portfolio(candidate.family, task) if candidate.estimator is None else [{}]:
        fixed: dict[str, Any] = {"model": name}
        for param, value_range in space.items():
            value = config.get(param, defaults.get(param))
            if _inside(value, value_range):
                fixed[f"{name}.{param}"] = value
        out.append(fixed)
    return out


def _inside(value: Any, value_range: ParamRange) -> bool:
    if value_range.choices is not None:
        return _primitive(value_range.choices) and value in value_range.choices
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    inside = value_range.low <= value <= value_range.high
    return inside and (not value_range.is_int or float(value).is_integer()) and value_range.step is None


def apply_choices(spec: Spec, choices: dict[str, Any]) -> Spec:
    """The spec with dotted-path values set, validated (a bad value raises `ValidationError`)."""
    if not choices:
        return spec
    raw = spec.model_dump(mode="python")
    for path, value in choices.items():
        node = raw
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return type(spec).model_validate({**raw, "project_dir": spec.project_dir})


def check_search(spec: Spec) -> None:
    """Raise one `SpecError` for every candidate that cannot be built, every grid range
    without a finite set of values, and every `tuning.space` path or value the spec refuses."""
    problems: list[Problem] = []
    try:
        check_models(spec.models)
    except SpecError as exc:
        problems += exc.problems
    if spec.tuning.resolved_method == "grid":
        problems += [
            Problem(loc=f"models.candidates[{i}].space.{name}", message="grid search needs a finite set "
                    f"of values; this is a continuous range {value_range.low:g}..{value_range.high:g}",
                    fix="add `step:`, write integer bounds, or give `choices:`")
            for i, c in enumerate(spec.models.candidates) for name, value_range in c.space.items()
            if not value_range.finite]
    for path, values in spec.tuning.space.items():
        problems += _path_problems(spec, path, values)
    if problems:
        raise SpecError(problems)


def _path_problems(spec: Spec, path: str, values: list[Any]) -> list[Problem]:
    node: Any = spec
    parts = path.split(".")
    for i, part in enumerate(parts):
        if node is None:
            section = ".".join(parts[:i])
            return [Problem(loc=f"tuning.space.{path}", message=f"{section} is not set in the spec",
                            fix=f"set `{section}:` to search a setting inside it")]
        fields = list(type(node).model_fields) if hasattr(type(node), "model_fields") else []
        if part not in fields:
            return [Problem(loc=f"tuning.space.{path}", message=f"no such setting: {part!r}",
                            fix=did_you_mean(part, fields) or f"settings here: {', '.join(fields)}")]
        node = getattr(node, part)
    problems = []
    for value in values:
        try:
            apply_choices(spec, {path: value})
        except ValidationError as exc:
            problems.append(Problem(loc=f"tuning.space.{path}", value=value, message="not a valid value: "
                                    + exc.errors()[0]["msg"], fix="use a value the setting accepts"))
    return problems
