"""Quality under a 60-second budget: looml's search against FLAML's AutoML with the same 60 s and
a 30-trial Optuna-tuned LightGBM, on the same train / holdout split of each dataset.

Datasets (bundled with scikit-learn or generated; nothing is downloaded):
* breast_cancer (569 rows, binary): holdout ROC AUC, higher is better;
* digits (1,797 rows, 10 classes): holdout log loss, lower is better;
* friedman (8,000 rows from `make_friedman1` with noise and 5 irrelevant columns; a stand-in
  for california housing, which scikit-learn would download): holdout RMSE, lower is better.

Each contender sees only the training split (80%, stratified for classification, seed 42)
and is scored once on the holdout split:
* looml:  `looml.learn.train.train` with the default candidates (LightGBM, linear, CatBoost,
          XGBoost, MLP, extra trees, random forest, HistGradientBoosting) and the default
          ensemble (a weighted vote chosen on out-of-fold predictions), `time_budget: 60`,
          5 folds, 2 parallel trials;
* FLAML:  `AutoML().fit(..., time_budget=60, metric=..., seed=42)`;
* Optuna: 30 TPE trials of LightGBM (learning rate, leaves, min child samples, subsample,
          column sample, L2, 50-500 trees) scored by 5-fold CV on the training split, then the best
          refit on it.

Usage: .venv/bin/python bench/tune_quality.py [--datasets breast_cancer digits friedman] [--budget 60]
       [--contenders looml flaml optuna_lgbm_30]
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_digits, make_friedman1
from sklearn.metrics import log_loss, roc_auc_score, root_mean_squared_error
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, train_test_split

from looml.learn.train import train
from looml.spec import Spec

SEED = 42
CONTENDERS = ("looml", "flaml", "optuna_lgbm_30")


def dataset(name: str) -> tuple[pd.DataFrame, np.ndarray, str, str]:
    """Features, target, task and the holdout metric."""
    if name == "breast_cancer":
        frame = load_breast_cancer(as_frame=True)
        return frame.data, frame.target.to_numpy(), "classification", "roc_auc"
    if name == "digits":
        frame = load_digits(as_frame=True)
        return frame.data, frame.target.to_numpy(), "classification", "log_loss"
    X, y = make_friedman1(n_samples=8000, n_features=10, noise=1.0, random_state=SEED)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(10)]), y, "regression", "rmse"


def holdout(metric: str, y: np.ndarray, predicted: np.ndarray, classes: np.ndarray | None) -> float:
    if metric == "roc_auc":
        return float(roc_auc_score(y, predicted[:, 1]))
    if metric == "log_loss":
        return float(log_loss(y, predicted, labels=classes))
    return float(root_mean_squared_error(y, predicted))


def predictions(model: Any, X: pd.DataFrame, task: str) -> np.ndarray:
    return model.predict_proba(X) if task == "classification" else model.predict(X)


def run_looml(X: pd.DataFrame, y: np.ndarray, task: str, metric: str, budget: float) -> Any:
    spec = Spec.model_validate({
        "seed": SEED, "data": {"source": "d.csv", "target": "y"}, "registry": {"model_name": "m"},
        "evaluation": {"primary_metric": metric},
        "tuning": {"time_budget": budget, "n_jobs": 2}})  # the default candidates and ensemble
    features = dict.fromkeys(X.columns, "numeric")
    trained = train(X, y, features, spec, task)
    print(f"    looml: {trained.search['trials']} trials {trained.search['states']}, best {trained.best}")
    return trained.pipeline


def run_flaml(X: pd.DataFrame, y: np.ndarray, task: str, metric: str, budget: float) -> Any:
    from flaml import AutoML

    automl = AutoML()
    automl.fit(X, y, task=task, time_budget=budget, metric=metric, seed=SEED, verbose=0, n_jobs=2)
    print(f"    flaml: best {automl.best_estimator}")
    return automl


def run_optuna_lightgbm(X: pd.DataFrame, y: np.ndarray, task: str, metric: str, trials: int = 30) -> Any:
    import lightgbm

    cls = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor
    folds = (StratifiedKFold(5, shuffle=True, random_state=SEED) if task == "classification"
             else KFold(5, shuffle=True, random_state=SEED))
    scoring = {"roc_auc": "roc_auc", "log_loss": "neg_log_loss",
               "rmse": "neg_root_mean_squared_error"}[metric]

    def model(params: dict[str, Any]) -> Any:
        return cls(**params, random_state=SEED, n_jobs=2, verbose=-1)

    def objective(trial: optuna.Trial) -> float:
        params = {"learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
                  "num_leaves": trial.suggest_int("num_leaves", 8, 256, log=True),
                  "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
                  "subsample": trial.suggest_float("subsample", 0.5, 1.0), "subsample_freq": 1,
                  "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
                  "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
                  "n_estimators": trial.suggest_int("n_estimators", 50, 500, log=True)}
        return float(np.mean(cross_val_score(model(params), X, y, cv=folds, scoring=scoring)))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=trials)
    best = {**study.best_params, "subsample_freq": 1}
    return model(best).fit(X, y)


def fit(contender: str, X: pd.DataFrame, y: np.ndarray, task: str, metric: str, budget: float) -> Any:
    if contender == "looml":
        return run_looml(X, y, task, metric, budget)
    if contender == "flaml":
        return run_flaml(X, y, task, metric, budget)
    return run_optuna_lightgbm(X, y, task, metric)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["breast_cancer", "digits", "friedman"])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = []
    for name in args.datasets:
        X, y, task, metric = dataset(name)
        stratify = y if task == "classification" else None
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=SEED,
                                                            stratify=stratify)
        classes = np.unique(y) if task == "classification" else None
        print(f"{name} ({len(X):,} rows, {task}, holdout {metric})", flush=True)
        for contender in args.contenders:
            began = time.monotonic()
            model = fit(contender, X_train, y_train, task, metric, args.budget)
            seconds = time.monotonic() - began
            score = holdout(metric, y_test, predictions(model, X_test, task), classes)
            table.append((name, metric, contender, score, seconds))
            print(f"  {contender:>15}: {metric} {score:.5f} in {seconds:6.1f} s", flush=True)
    print("\n| dataset | metric | looml | FLAML 60 s | Optuna LightGBM 30 trials | looml seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.datasets:
        rows = {c: (s, t) for n, _, c, s, t in table if n == name}
        metric = next(m for n, m, *_ in table if n == name)
        cells = [f"{rows[c][0]:.5f}" if c in rows else "-" for c in CONTENDERS]
        seconds = f"{rows['looml'][1]:.1f}" if "looml" in rows else "-"
        print(f"| {name} | {metric} | {' | '.join(cells)} | {seconds} |")


if __name__ == "__main__":
    main()
