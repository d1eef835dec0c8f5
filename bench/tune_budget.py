"""Budget adherence: the train stage (search + refit) on a 200,000-row frame with `time_budget: 30`.

Each run calls `looml.learn.train.train` (what the pipeline's train stage runs: the checks,
the search in the process pool, the refit of the winner) on the same seeded frame and times
it. The bound is the issue's: 5% over the budget, or one median trial duration over it,
whichever is larger. Every run prints its wall time, the bound, and how the trials ended.

Usage: .venv/bin/python bench/tune_budget.py [--runs 10] [--rows 200000] [--budget 30] [--n-jobs 1]
                                            [--folds 5]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter

import numpy as np
import pandas as pd

from looml.errors import DataError
from looml.learn.train import train
from looml.spec import Spec

SEED = 42


def frame(rows: int) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    """12 numeric columns (some gaps), 3 categorical ones, a binary target from a noisy logit."""
    rng = np.random.default_rng(SEED)
    data = {f"x{i}": rng.normal(size=rows) for i in range(12)}
    for i, levels in enumerate((5, 20, 60)):
        data[f"c{i}"] = rng.choice([f"v{k}" for k in range(levels)], rows).astype(object)
    X = pd.DataFrame(data)
    X.loc[rng.random(rows) < 0.03, "x0"] = np.nan
    logit = X["x1"] - 0.5 * X["x2"] * X["x3"] + (X["c0"] == "v1") + rng.normal(size=rows)
    y = np.where(logit > 0.5, "yes", "no").astype(object)
    features = {c: "numeric" if c.startswith("x") else "categorical" for c in X.columns}
    return X, y, features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    X, y, features = frame(args.rows)
    spec = Spec.model_validate({
        "seed": SEED, "data": {"source": "d.csv", "target": "y"}, "registry": {"model_name": "m"},
        "split": {"folds": args.folds},
        "models": {"candidates": ["linear", "lightgbm", "hist_gradient_boosting", "random_forest"]},
        "tuning": {"method": "bayesian", "time_budget": args.budget, "n_jobs": args.n_jobs}})
    inside = 0
    for run in range(args.runs):
        began = time.monotonic()
        try:
            trained = train(X, y, features, spec, "classification")
        except DataError as exc:  # no trial finished: the stage still had to end inside the bound
            wall = time.monotonic() - began
            inside += wall <= args.budget * 1.05
            reason = exc.problems[0].message
            print(f"run {run + 1:2d}: {wall:6.2f} s, no trial finished ({reason})", flush=True)
            continue
        wall = time.monotonic() - began
        done = [r for r in trained.leaderboard if r["state"] == "complete"]
        median = float(np.median([r["fit_seconds"] for r in done]))
        bound = max(args.budget * 1.05, args.budget + median)
        inside += wall <= bound
        states = dict(Counter(r["state"] for r in trained.leaderboard))
        verdict = "inside" if wall <= bound else "OVER"
        print(f"run {run + 1:2d}: {wall:6.2f} s, bound {bound:6.2f} s ({verdict}); "
              f"median trial {median:5.2f} s; best {trained.best} "
              f"{trained.leaderboard[0]['mean'][trained.primary_metric]:.4f}; {states}", flush=True)
    print(f"\n{args.rows:,} rows, time_budget {args.budget:g} s, n_jobs {args.n_jobs}: "
          f"inside the bound in {inside} of {args.runs} runs")


if __name__ == "__main__":
    main()
