"""The search: where configurations come from, and the ask / run / tell loop that runs them.

    Search(spec, task, candidates, primary)  an Optuna study, or the candidates in order
    Loop(search, executor, spec, data, ...)  runs trials until done or the time is up

grid = `GridSampler` over the finite grid, random = `RandomSampler`, bayesian = multivariate
TPE, all seeded by `spec.seed`; `none` scores each candidate with its params. Known-good
configurations are enqueued first. Without a budget, trials in parallel are asked and told in
batches, so a fixed number of trials gives the same results run to run.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from sklearn.pipeline import Pipeline

from looml.executors import Executor, JobFailure
from looml.learn.budget import REFIT_MARGIN, estimate_mb
from looml.learn.leaderboard import TrialRow, rank, trial_row
from looml.learn.spaces import Config, grid_configs, merged_space, suggest_config, warm_start
from looml.learn.trial import TrialData, TrialJob, candidate_pipeline
from looml.learn.vote import likely_members, pool
from looml.learn.zoo import make_estimator, threads_for
from looml.spec import LOWER_IS_BETTER, Spec

__all__ = ["FamilyMedianPruner", "Loop", "Search", "refit_lanes"]

_SHARED_LANES = 1.25  # members refit side by side in threads run this much slower (GIL, memory; measured 1.2)
_VOTE_SECONDS = 1.0  # choosing the vote's members and weights, at least (see `likely_members`)
_MAX_SKIPS = 200  # consecutive skipped configurations after which the search gives up
_WARM_ROUNDS = 2  # warm-start configurations tried per family


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for ask-and-tell: the search stops after the grid's size itself
    (GridSampler's own `study.stop()` works only inside `study.optimize`)."""

    def after_trial(self, study: optuna.Study, trial: Any, state: Any, values: Any) -> None:
        """Nothing to do: the caller asks exactly as many trials as the grid has points."""


class Search:
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
        pruner = FamilyMedianPruner() if tuning.pruning else optuna.pruners.NopPruner()
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


class FamilyMedianPruner(optuna.pruners.BasePruner):
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


class Loop:
    """The ask / run / tell loop, and the build of a row's pipeline."""

    def __init__(self, search: Search, executor: Executor, spec: Spec, data: TrialData,
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
            ranked = [r for r in rank(self.rows, self.primary, self.lower) if r.state == "complete"]
            members = self.members if self.voting and self.members else ranked[:1]
        folds = len(self.data.folds)
        times = sorted((r.timings["fold_fit_seconds"] * folds / (folds - 1) * REFIT_MARGIN for r in members),
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
            ranked = rank(self.rows, self.primary, self.lower)
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


def refit_lanes(rows: int, spec: Spec) -> int:
    """How many ensemble members the final refit fits side by side: the cores one fit leaves."""
    return max(1, (os.cpu_count() or 1) // threads_for(rows, spec.models.n_jobs))
