"""Tune: one search across candidates, their params and preprocessing choices, under budgets.

    tune(X, y, features, spec, task, primary) -> Tuned

One Optuna study (ask-and-tell) covers every candidate: the model is a categorical
parameter and each family's params are conditional on it. grid = `GridSampler` over the
finite grid, random = `RandomSampler`, bayesian = multivariate TPE, all seeded by `spec.seed`;
`none` scores each candidate with its params. Known-good configurations are enqueued first.

Trials run through an executor (`looml.executors`): in this process when nothing needs
stopping, else in a persistent process pool. With a `time_budget` the search stops early
enough to refit the best configuration inside the budget, and a trial still running then is
killed and discarded: a trial is scored on all folds or not at all. Without a budget, trials
in parallel are asked and told in batches, so a fixed number of trials gives the same
results run to run; the time budget is the one source of nondeterminism.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from looml.errors import DataError, Problem, SpecError
from looml.executors import Executor, JobFailure
from looml.executors.inline import InlineExecutor
from looml.executors.local import LocalExecutor
from looml.executors.ray import RayCluster, RayExecutor, connect
from looml.learn.ensemble import likely_members, pool, try_ensemble
from looml.learn.metrics import Scoring, better
from looml.learn.spaces import Config, apply_choices, grid_configs, merged_space, suggest_config, warm_start
from looml.learn.trial import TrialData, TrialJob, fold_indices, release_fold_features, run_trial
from looml.learn.zoo import ROW_LIMIT, make_estimator, missing_extra, threads_for
from looml.spec import LOWER_IS_BETTER, Spec

__all__ = ["TrialRow", "Tuned", "candidate_pipeline", "check_budget", "estimate_mb", "parallelism",
           "refit", "trial_row", "tune"]

_PRELOAD = ("looml.learn.trial", "looml.learn.zoo", "lightgbm", "xgboost")
_REFIT_MARGIN = 1.3  # the refit on all training rows, relative to one fold's fit scaled by rows
_SHARED_LANES = 1.25  # members refit side by side in threads run this much slower (GIL, memory; measured 1.2)
_VOTE_SECONDS = 1.0  # choosing the vote's members and weights, at least (see `likely_members`)
_POOL_START_SECONDS = 1.5  # fork server + workers with the preloaded modules, measured here: 0.6-1.2 s
_MAX_SKIPS = 200  # consecutive skipped configurations after which the search gives up
_ESTIMATE_ROWS = (2_000, 20_000)  # sample sizes of the fits that estimate one trial
_WARM_ROUNDS = 2  # warm-start configurations tried per family
_SCORE_MARGIN = 1.3  # a fold's fit, plus predicting and scoring its validation rows
_MIN_TRIALS = 8  # trials a time budget should hold before the default folds are lowered
_FEWER_FOLDS_ROWS = 10_000  # training rows from which the default folds are 3 without a budget
_ENSEMBLES = (VotingClassifier, VotingRegressor, StackingClassifier, StackingRegressor)


@dataclass(frozen=True)
class TrialRow:
    """One leaderboard row. `state` is complete / pruned / failed / over budget / skipped;
    `error` says why a trial has no scores."""

    trial: int
    name: str
    family: str
    params: dict[str, Any]
    choices: dict[str, Any] = field(default_factory=dict)
    state: str = "complete"
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0  # the whole trial, every fold
    timings: dict[str, float] = field(default_factory=dict)  # fold_fit_seconds, predict_ms_per_1000
    size_bytes: int = 0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return asdict(self)


@dataclass(frozen=True)
class Tuned:
    """What tuning produced: the ranked leaderboard, the refit pipeline and notes."""

    rows: list[TrialRow]
    best: TrialRow
    pipeline: Pipeline
    method: str
    seconds: float
    folds: int
    notes: list[str] = field(default_factory=list)
    allowed: float | None = None  # seconds the budget left for the search and refit
    template: Pipeline | None = None  # the winner unfitted: `refit` fits it on other rows


def candidate_pipeline(features: dict[str, str], spec: Spec, task: str, estimator: Any,
                       choices: dict[str, Any] | None = None) -> Pipeline:
    """The candidate pipeline: the feature steps (with a trial's choices applied), then the model
    with its training-only row work."""
    from looml.learn.features import build_preprocessor
    from looml.learn.rows import wrap_model

    applied = apply_choices(spec, choices or {})
    steps = build_preprocessor(features, applied.preprocessing, applied.features, task, spec.seed).steps
    return Pipeline([*steps, ("model", wrap_model(estimator, applied.preprocessing, task, spec.seed))])


def parallelism(rows: int, threads_per_fit: int, trials: int, cores: int | None = None) -> tuple[int, int]:
    """(parallel trials, threads per fit) with their product at most the machine's cores.

    `threads_per_fit` is `models.n_jobs` (-1: all cores; one thread on small tables, see
    `threads_for`); `trials` is `tuning.n_jobs`, capped at the cores.
    """
    cores = cores or os.cpu_count() or 1
    workers = max(1, min(trials, cores))
    return workers, max(1, min(threads_for(rows, threads_per_fit, cores), cores // workers))


def _parallelism(rows: int, spec: Spec, cluster: RayCluster | None) -> tuple[int, int]:
    """`parallelism` on this machine's cores, or on a Ray cluster's: its CPUs for trials at once,
    and threads per trial at most what one node has (a task never spans nodes)."""
    if cluster is None:
        return parallelism(rows, spec.models.n_jobs, spec.tuning.n_jobs)
    workers, threads = parallelism(rows, spec.models.n_jobs, spec.tuning.n_jobs, cluster.cpus)
    return workers, min(threads, cluster.node_cpus)


def _placement(executor: Executor) -> str:
    """Where a Ray search ran its trials (a note for the report); empty for a local one."""
    if not isinstance(executor, RayExecutor):
        return ""
    counts: dict[str, int] = {}
    for node in executor.placed.values():
        counts[node] = counts.get(node, 0) + 1
    nodes = ", ".join(f"{n} on node {node[:8]}" for node, n in sorted(counts.items()))
    return (f"{sum(counts.values())} trials ran as Ray tasks on {len(counts)} of the "
            f"{executor.cluster.nodes} nodes at {executor.cluster.address} ({nodes})")


def estimate_mb(family: str, params: dict[str, Any], rows: int, width: int, n_classes: int) -> float:
    """A coarse peak-memory estimate of one fit: the data's copies plus the family's model.

    Forests: trees x nodes (about 2 x rows / min_samples_leaf, capped by max_depth) x node
    size; kNN keeps its training rows; the rest are dominated by the data.
    """
    estimate = rows * max(width, 1) * 8 * 4.0
    if family in ("random_forest", "extra_trees", "decision_tree"):
        trees = int(params.get("n_estimators", 100)) if family != "decision_tree" else 1
        nodes = 2.0 * rows / max(1, int(params.get("min_samples_leaf", 1)))
        if params.get("max_depth"):
            nodes = min(nodes, 2.0 ** (int(params["max_depth"]) + 1))
        estimate += trees * nodes * (64 + 8 * max(1, n_classes))
    elif family == "knn":
        estimate += rows * max(width, 1) * 8 * 2.0
    return estimate / 2**20


def check_budget(X: pd.DataFrame, y: np.ndarray, features: dict[str, str], spec: Spec, task: str,
                 workers: int = 1, seconds: float | None = None) -> tuple[int, float, str]:
    """(CV folds, seconds one trial of the first candidate takes, a note): the estimate from two
    small-sample fits; a `SpecError` suggesting a budget when `tuning.time_budget` cannot finish
    one trial and the refit.

    A fit's time is taken as fixed + per-row cost, from fits on 2,000 and 20,000 rows (a
    single small fit is mostly fixed cost, and scaling it by rows overestimates many times).
    Under a time budget with `split.folds` left at its default, the folds go down (to 2 at
    least) until the budget holds `_MIN_TRIALS` trials: on large tables a few configurations
    scored on fewer folds beat one scored on five. A `split.folds` the spec sets is kept.
    """
    budget, folds = spec.tuning.time_budget, spec.split.folds
    began = time.monotonic()
    candidate = spec.models.candidates[0]
    cost = _fit_cost(X, y, features, spec, task)
    if cost is None:
        return folds, 0.0, ""  # the sample could not be fitted (a class too rare); the trial will say why

    def plan(k: int) -> tuple[float, float]:  # (one k-fold trial, the refit)
        trial = cost(len(X) * (k - 1) // k) * k * _SCORE_MARGIN
        return trial, cost(len(X)) * _REFIT_MARGIN

    # The search's own share of the budget: what the run left for it, less this estimate.
    available = None if budget is None else (
        (budget if seconds is None else seconds) - (time.monotonic() - began))
    note = ""
    if available is not None and "folds" not in spec.split.model_fields_set:
        chosen = next((k for k in range(folds, 1, -1)
                       if plan(k)[0] * _MIN_TRIALS / workers + plan(k)[1] + _POOL_START_SECONDS <= available),
                      2)
        if chosen < folds:
            note = (f"{chosen}-fold CV instead of {folds}: a {folds}-fold trial of {candidate.name} on "
                    f"{len(X):,} rows takes about {plan(folds)[0]:.0f} s, too long for {_MIN_TRIALS} trials "
                    f"in the {budget:g} s budget (set split.folds to keep {folds})")
            folds = chosen
    trial, refit = plan(folds)
    needed = trial + refit + _POOL_START_SECONDS
    if available is not None and available < needed:
        assert budget is not None
        spent = budget - available  # the run's other stages and this estimate
        raise SpecError(Problem(
            loc="tuning.time_budget", value=budget,
            message=f"too small to finish one trial: one {folds}-fold trial of {candidate.name} on "
                    f"{len(X):,} rows takes about {trial:.1f} s, and the refit {refit:.1f} s more"
                    + (f", after {spent:.0f} s for the other stages of the run" if spent >= 1 else ""),
            fix=f"use time_budget: {math.ceil(max((needed + spent) * 3, needed + spent + 5))} or more "
                "(or list a faster candidate first)"))
    return folds, trial, note


def _default_folds(rows: int, spec: Spec) -> tuple[int, str]:
    """Without a budget: the spec's folds, or 3 rather than the default 5 on large tables, where
    each fold's estimate is already tight and two more fits per candidate cost minutes."""
    folds = spec.split.folds
    if "folds" in spec.split.model_fields_set or rows < _FEWER_FOLDS_ROWS or folds <= 3:
        return folds, ""
    return 3, (f"3-fold CV instead of {folds} on {rows:,} training rows (set split.folds to keep "
               f"{folds})")


def _fit_cost(X: pd.DataFrame, y: np.ndarray, features: dict[str, str], spec: Spec,
              task: str) -> Callable[[int], float] | None:
    """Seconds one fit of the first candidate takes on n rows (one thread), from two sample fits."""
    sizes = sorted({min(len(X) // 2, n) for n in _ESTIMATE_ROWS})
    rng = np.random.default_rng(spec.seed)
    candidate = spec.models.candidates[0]
    times = []
    for size in sizes:
        sample = np.sort(rng.choice(len(X), size=size, replace=False))
        pipeline = candidate_pipeline(features, spec, task, make_estimator(candidate, task, {}, spec.seed, 1))
        began = time.perf_counter()
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                pipeline.fit(X.iloc[sample], y[sample])
            except ValueError:
                return None
        times.append(time.perf_counter() - began)
    per_row = max(0.0, (times[-1] - times[0]) / (sizes[-1] - sizes[0])) if len(sizes) > 1 else 0.0
    return lambda rows: times[-1] + per_row * (rows - sizes[-1])


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for ask-and-tell: the search stops after the grid's size itself
    (GridSampler's own `study.stop()` works only inside `study.optimize`)."""

    def after_trial(self, study: optuna.Study, trial: Any, state: Any, values: Any) -> None:
        """Nothing to do: the caller asks exactly as many trials as the grid has points."""


class _Search:
    """Where configurations come from: an Optuna study, or the candidates in order (`none`)."""

    def __init__(self, spec: Spec, task: str, candidates: dict[int, Any], primary: str,
                 lower: bool | None = None) -> None:
        self.method = spec.tuning.resolved_method
        tuning = spec.tuning
        self.choices = dict(tuning.space)
        grid = self.method == "grid"  # a grid searches the candidates' own spaces only
        self.spaces = {i: merged_space(c, task, own_only=grid) for i, c in candidates.items()}
        self.names = [c.name for c in candidates.values()]
        self.study: optuna.Study | None = None
        self.fixed: list[Config] = []
        if self.method == "none":
            self.fixed = [Config(i) for i in candidates]
            self.limit = len(self.fixed)
            return
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        if self.method == "grid":
            self.grid = grid_configs(self.spaces, tuning.space)
            sampler: optuna.samplers.BaseSampler = _AskTellGridSampler(
                {"config": list(range(len(self.grid)))}, seed=spec.seed)
            self.limit = min(tuning.trials or len(self.grid), len(self.grid))
        else:
            sampler = (optuna.samplers.RandomSampler(seed=spec.seed) if self.method == "random" else
                       optuna.samplers.TPESampler(seed=spec.seed, multivariate=True, group=True,
                                                  constant_liar=tuning.n_jobs > 1))
            self.limit = tuning.trials or (math.inf if tuning.time_budget else 30)
        pruner = _FamilyMedianPruner() if tuning.pruning else optuna.pruners.NopPruner()
        self.study = optuna.create_study(
            direction="minimize" if (primary in LOWER_IS_BETTER if lower is None else lower) else "maximize",
            sampler=sampler,
            pruner=pruner)
        if tuning.warm_start and self.method != "grid":
            # Round robin: every family's default first, then every family's second configuration.
            portfolios = [warm_start(c.name, c, task, self.spaces[i],
                                     make_estimator(c, task, {}, 0, 1).get_params(deep=False))
                          for i, c in candidates.items()]
            for round_ in range(_WARM_ROUNDS):
                for configs in portfolios:
                    if round_ < len(configs):
                        self.study.enqueue_trial(configs[round_], skip_if_exists=True)
        self.prune = tuning.pruning

    def ask(self, number: int) -> tuple[Any, Config] | None:
        """The next trial and its configuration, or None when the search is done."""
        if number >= self.limit:
            return None
        if self.study is None:
            return None, self.fixed[number]
        trial = self.study.ask()
        if self.method == "grid":
            return trial, self.grid[trial.suggest_categorical("config", list(range(len(self.grid))))]
        return trial, suggest_config(trial, self.names, self.spaces, self.choices)

    def report(self, trial: Any, step: int, value: float) -> bool:
        """Record a fold's running score; True when the trial should stop."""
        trial.report(value, step)
        return bool(trial.should_prune())

    def tell(self, trial: Any, row: TrialRow, primary: str) -> None:
        """Give the study a trial's outcome."""
        if self.study is None or trial is None:
            return
        value = row.mean.get(primary, math.nan)
        if row.state == "complete" and value == value:
            self.study.tell(trial, value)
        elif row.state == "pruned":
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)


class _FamilyMedianPruner(optuna.pruners.BasePruner):
    """Stop a trial whose running CV score after a fold is worse than the median of the finished
    trials of the same model family after that fold (once `startup` of them finished).

    Optuna's MedianPruner compares across families: a first-fold score of a tuned forest says
    little about where a linear model's configurations rank, and on fast datasets it pruned more
    than half of all trials, whole families among them (bench/tune_quality.py).
    """

    def __init__(self, startup: int = 3) -> None:
        self.startup = startup

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        family = trial.params.get("model")
        peers = [t.intermediate_values[step] for t in study.get_trials(
                     deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                 if t.params.get("model") == family and step in t.intermediate_values]
        if len(peers) < self.startup:
            return False
        median, value = float(np.median(peers)), trial.intermediate_values[step]
        return value < median if study.direction == optuna.study.StudyDirection.MAXIMIZE else value > median


def tune(X: pd.DataFrame, y: np.ndarray, features: dict[str, str], spec: Spec, task: str,
         primary: str, on_trial: Callable[[TrialRow], None] | None = None,
         deadline: float | None = None, refit_rows: int = 0, split_keys: np.ndarray | None = None,
         sample_weight: np.ndarray | None = None, scoring: Scoring | None = None) -> Tuned:
    """Search, rank, optionally ensemble, and refit the winner on all of X; see the module docstring.

    `split_keys` are the rows' times or groups when `split.by` is set (see
    `looml.data.split.split_keys`); `sample_weight` weights the rows in fitting (where the model
    takes it) and scoring; `scoring` has the binary positive class and the custom metrics.

    With `tuning.time_budget`, everything here ends by `deadline` (a `time.monotonic()` instant;
    default: the budget from now). `refit_rows` > 0 says that the winner will be refit once more
    later, on that many rows (see `refit`), inside the same deadline. Raises `SpecError` for a
    budget too small for one trial, `DataError` when no trial completes.
    """
    started = time.monotonic()
    tuning = spec.tuning
    if not tuning.time_budget:
        deadline = None
    elif deadline is None:
        deadline = started + tuning.time_budget
    cluster = connect(tuning.executor.resolved_address) if tuning.executor.kind == "ray" else None
    workers, threads = _parallelism(len(X), spec, cluster)
    if deadline:
        folds, estimate, folds_note = check_budget(X, y, features, spec, task, workers,
                                                   seconds=deadline - time.monotonic())
    else:
        (folds, folds_note), estimate = _default_folds(len(X), spec), 0.0
    rows: list[TrialRow] = []
    candidates = {}
    for i, c in enumerate(spec.models.candidates):
        extra = missing_extra(c)
        if extra:  # only a default candidate gets here: a listed one failed `check_search`
            rows.append(TrialRow(trial=-1, name=c.name, family=c.family, params={}, state="skipped",
                                 error=f"skipped: not installed (pip install 'looml[{extra}]')"))
        elif c.family in ("svm", "knn") and len(X) > ROW_LIMIT and not c.allow_large:
            rows.append(TrialRow(trial=-1, name=c.name, family=c.family, params={}, state="skipped",
                                 error=f"skipped: {len(X):,} rows > {ROW_LIMIT:,} (set allow_large: true "
                                       "on the candidate to try it)"))
        else:
            candidates[i] = c
    if not candidates:
        raise DataError([Problem(loc="models.candidates", message=r.error, fix="add a model that scales")
                         for r in rows])
    scoring = scoring or Scoring()
    lower = scoring.lower_is_better(primary)
    search = _Search(spec, task, candidates, primary, lower)
    classes = np.unique(y) if task == "classification" else np.array([])
    by = spec.split.by
    cv = fold_indices(y, task, folds, spec.seed, by.kind if by else None, split_keys, by.column if by else "")
    data = TrialData(X, y, cv, task, classes, primary, threads, sample_weight, scoring)
    limit_mb = (tuning.memory_limit_mb or _available_mb() * 0.8) / workers
    width = _width(X, y, features, spec, task)
    running: dict[int, tuple[Any, Config]] = {}

    def on_message(key: int, question: tuple[int, float]) -> bool:
        return search.report(running[key][0], *question)

    inline = deadline is None and workers == 1 and cluster is None  # nothing to stop, nothing parallel
    executor: Executor = (RayExecutor(run_trial, data, on_message, workers, threads, cluster) if cluster
                          else InlineExecutor(run_trial, data, on_message) if inline
                          else LocalExecutor(run_trial, data, on_message, workers, _PRELOAD))
    loop = _Loop(search, executor, spec, data, features, running, rows, on_trial)
    loop.refit_factor += refit_rows / len(X)  # the later refit is planned with this one
    try:
        loop.run(deadline, estimate, limit_mb, width, len(X), len(classes))
        ranked = _rank(rows, primary, lower)
        if not ranked or ranked[0].state != "complete":
            raise DataError(_nothing_finished(rows, spec))
        chosen, extra, notes = try_ensemble(ranked, loop, deadline)
    finally:
        executor.close()
        release_fold_features()
    ranked = _rank(rows + extra, primary, lower)
    if callable(chosen):  # a kept ensemble ranks first (it won the nested comparison; see ensemble.py)
        ranked = [*extra, *(r for r in ranked if r not in extra)]
    refit_threads = threads_for(len(X), spec.models.n_jobs)
    template = chosen(refit_threads) if callable(chosen) else loop.pipeline(chosen, refit_threads)
    pipeline = refit(template, X, y, spec, sample_weight)
    return Tuned(rows=ranked, best=ranked[0], pipeline=pipeline, method=search.method,
                 seconds=time.monotonic() - started, folds=len(data.folds),
                 notes=[n for n in (folds_note, *notes, _placement(executor)) if n],
                 allowed=None if deadline is None else round(deadline - started, 3),
                 template=clone(template))


class _Loop:
    """The ask / run / tell loop, and the build of a row's pipeline."""

    def __init__(self, search: _Search, executor: Executor, spec: Spec, data: TrialData,
                 features: dict[str, str], running: dict[int, tuple[Any, Config]],
                 rows: list[TrialRow], on_trial: Callable[[TrialRow], None] | None) -> None:
        self.search, self.executor, self.spec, self.data = search, executor, spec, data
        self.task, self.primary, self.threads = data.task, data.primary, data.threads
        self.features, self.running, self.rows, self.on_trial = features, running, rows, on_trial
        self.configs: dict[int, Config] = {}
        self.oof: dict[int, np.ndarray] = {}  # out-of-fold predictions of the voting pool's trials
        self.members: list[TrialRow] = []  # what a vote would combine now
        self.lower = data.scoring.lower_is_better(data.primary)
        # Weighted rows: a vote's member pipelines cannot route sample_weight (see try_ensemble).
        self.voting = spec.tuning.resolved_ensemble == "voting" and data.sample_weight is None
        self.vote_seconds = _VOTE_SECONDS if self.voting else 0.0  # choosing it at the end
        self.sync = spec.tuning.time_budget is None  # batches: the same results run to run
        self.refit_factor = 1.0  # refits at the end, in units of the refit on the training rows

    def pipeline(self, config: Config, threads: int) -> Pipeline:
        """The unfitted pipeline of a configuration."""
        candidate = self.spec.models.candidates[config.candidate]
        estimator = make_estimator(candidate, self.task, config.params, self.spec.seed, threads,
                                   loc=f"models.candidates[{config.candidate}]")
        return candidate_pipeline(self.features, self.spec, self.task, estimator, config.choices)

    def refit_seconds(self, members: list[TrialRow] | None = None) -> float:
        """The time the final refit is expected to take: of `members`, or else of the best trial
        so far (with a voting ensemble, of the best `ensemble_top_k`, which it may combine)."""
        if members is None:
            ranked = [r for r in _rank(self.rows, self.primary, self.lower) if r.state == "complete"]
            members = self.members if self.voting and self.members else ranked[:1]
        folds = len(self.data.folds)
        times = sorted((r.timings["fold_fit_seconds"] * folds / (folds - 1) * _REFIT_MARGIN for r in members),
                       reverse=True)
        lanes = refit_lanes(len(self.data.y), self.spec)
        if lanes == 1 or len(times) < 2:
            return sum(times) * self.refit_factor
        loads = [0.0] * lanes  # longest first, each to the least loaded lane
        for seconds in times:
            loads[loads.index(min(loads))] += seconds
        return max(loads) * _SHARED_LANES * self.refit_factor

    def record(self, row: TrialRow, trial: Any, pending: list[tuple[Any, TrialRow]],
               oof: np.ndarray | None = None) -> None:
        self.rows.append(row)
        if self.voting and row.state == "complete" and oof is not None:
            self.oof[row.trial] = oof
            ranked = _rank(self.rows, self.primary, self.lower)
            kept = {r.trial for r in pool(ranked)}
            self.oof = {t: p for t, p in self.oof.items() if t in kept}
            if row.trial in kept:
                self.members, seconds = likely_members(ranked, self.oof, self.data,
                                                       self.spec.tuning.ensemble_top_k, self.spec.seed)
                self.vote_seconds = max(_VOTE_SECONDS, seconds)
        if self.on_trial:
            self.on_trial(row)
        pending.append((trial, row))
        if not self.sync or not self.running:
            for t, r in sorted(pending, key=lambda p: p[1].trial):
                self.search.tell(t, r, self.primary)
            pending.clear()

    def run(self, deadline: float | None, estimate: float, limit_mb: float, width: int, n_rows: int,
            n_classes: int) -> None:
        """Run trials until the search is done or the time is up (then kill what still runs)."""
        number, skips, done = 0, 0, False
        pending: list[tuple[Any, TrialRow]] = []
        while True:
            reserve = self.refit_seconds() + self.vote_seconds
            stop_at = None if deadline is None else deadline - max(reserve, estimate * 0.3)
            if stop_at is not None and time.monotonic() >= stop_at:
                for key in list(self.running):
                    self.executor.cancel(key)
                    trial, config = self.running.pop(key)
                    self.record(self._row(key, config, {"state": "over budget", "error": "stopped at the "
                                "time budget; discarded (a trial counts only on all folds)"}), trial, pending)
                break
            # In sync mode a new batch starts only when the last one is told: same results every run.
            may_ask = not self.sync or not self.running
            while may_ask and not done and self.executor.idle():
                asked = self.search.ask(number)
                if asked is None or skips >= _MAX_SKIPS:
                    done = True
                    break
                trial, config = asked
                self.configs[number] = config
                candidate = self.spec.models.candidates[config.candidate]
                need = estimate_mb(candidate.family, {**candidate.params, **config.params}, n_rows, width,
                                   n_classes)
                if need > limit_mb:
                    skips += 1
                    self.record(self._row(number, config, {
                        "state": "skipped", "error": f"skipped: needs about {need:,.0f} MB, over the "
                        f"{limit_mb:,.0f} MB a trial may use (tuning.memory_limit_mb / n_jobs)"}),
                        trial, pending)
                    number += 1
                    continue
                skips = 0
                prune = self.search.method != "none" and self.search.prune
                self.running[number] = (trial, config)
                self.executor.submit(number, TrialJob(self.pipeline(config, self.threads), prune=prune))
                number += 1
            if not self.running:
                if done:
                    break
                continue
            timeout = None if stop_at is None else max(0.0, stop_at - time.monotonic())
            for key, result in self.executor.results(timeout):
                trial, config = self.running.pop(key)
                outcome = ({"state": "failed", "error": result.message} if isinstance(result, JobFailure)
                           else result)
                oof = outcome.pop("oof", None)
                self.record(self._row(key, config, outcome), trial, pending, oof)

    def _row(self, number: int, config: Config, outcome: dict[str, Any]) -> TrialRow:
        candidate = self.spec.models.candidates[config.candidate]
        return trial_row(number, candidate.name, candidate.family, {**candidate.params, **config.params},
                         outcome, config.choices)


def trial_row(number: int, name: str, family: str, params: dict[str, Any], outcome: dict[str, Any],
              choices: dict[str, Any] | None = None) -> TrialRow:
    """A leaderboard row from a trial's outcome (see `run_trial`)."""
    timings = {k: round(outcome[k], 4) for k in ("fold_fit_seconds", "predict_ms_per_1000") if k in outcome}
    return TrialRow(
        trial=number, name=name, family=family, params={k: _jsonable(v) for k, v in params.items()},
        choices={k: _jsonable(v) for k, v in (choices or {}).items()}, state=outcome["state"],
        mean=outcome.get("mean", {}), std=outcome.get("std", {}),
        fit_seconds=round(outcome.get("seconds", 0.0), 4), timings=timings,
        size_bytes=outcome.get("size_bytes", 0), error=outcome.get("error", ""))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _rank(rows: list[TrialRow], primary: str, lower: bool | None = None) -> list[TrialRow]:
    """Complete trials best first (ties keep trial order; an undefined score ranks last), then the rest.
    `lower`: smaller is better (default: by the built-in metric's direction)."""
    scored = [r for r in rows if r.state == "complete" and r.mean.get(primary) == r.mean.get(primary)]
    ranked: list[TrialRow] = []
    for row in sorted(scored, key=lambda r: r.trial):
        i = 0
        while i < len(ranked) and not better(primary, row.mean[primary], ranked[i].mean[primary], lower):
            i += 1
        ranked.insert(i, row)
    rest = [r for r in rows if r not in ranked]
    return ranked + sorted(rest, key=lambda r: (r.state != "complete", r.trial))


def _nothing_finished(rows: list[TrialRow], spec: Spec) -> list[Problem]:
    if any(r.state == "over budget" for r in rows) or not rows:
        budget = spec.tuning.time_budget or 0
        return [Problem(loc="tuning.time_budget", value=budget,
                        message="no trial finished within the time budget",
                        fix=f"raise it (e.g. time_budget: {math.ceil(budget * 3)}) or list a faster "
                            "candidate first")]
    return [Problem(loc=f"models.candidates.{r.name}", message=f"trial {r.trial} {r.state}: {r.error}",
                    fix="check the data and the candidate's params and space") for r in rows[:20]]


def refit_lanes(rows: int, spec: Spec) -> int:
    """How many ensemble members the final refit fits side by side: the cores one fit leaves."""
    return max(1, (os.cpu_count() or 1) // threads_for(rows, spec.models.n_jobs))


def refit(template: Pipeline, X: pd.DataFrame, y: np.ndarray, spec: Spec,
          sample_weight: np.ndarray | None = None) -> Pipeline:
    """Fit a fresh copy of the winner's unfitted pipeline on X, with every thread the machine
    gives one fit; an ensemble's members side by side in threads when one fit uses fewer than
    the cores. `sample_weight` goes to the model step where it takes it."""
    from joblib import parallel_config

    from looml.learn.rows import finalize, takes_sample_weight

    threads = threads_for(len(X), spec.models.n_jobs)
    pipeline = clone(template)
    model = pipeline.named_steps["model"]
    lanes = refit_lanes(len(X), spec) if isinstance(model, _ENSEMBLES) else 1
    if lanes > 1:
        model.set_params(n_jobs=lanes)
    with threadpool_limits(limits=threads), parallel_config(backend="threading"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = (sample_weight is not None and not isinstance(model, _ENSEMBLES)
                    and takes_sample_weight(model))
        fitted = pipeline.fit(X, y, **({"model__sample_weight": sample_weight} if weighted else {}))
    if lanes > 1:
        fitted.named_steps["model"].set_params(n_jobs=None)  # the threads were for this fit only
    return finalize(fitted)


def _available_mb() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**20


def _width(X: pd.DataFrame, y: np.ndarray, features: dict[str, str], spec: Spec, task: str) -> int:
    """Columns after the feature steps, from a fit on a few rows."""
    from looml.learn.features import build_preprocessor

    head = min(len(X), 200)
    steps = build_preprocessor(features, spec.preprocessing, spec.features, task, spec.seed)
    try:
        return int(steps.fit_transform(X.iloc[:head], y[:head]).shape[1])
    except (ValueError, TypeError):
        return X.shape[1]
