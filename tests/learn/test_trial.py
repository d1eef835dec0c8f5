"""The CV folds a search scores on: grouped folds do not leak a group's labels, forward-chaining
folds train on the past only, and sample weights reach the fit and the scores."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from looml.learn.tune import tune
from looml.spec import Spec, validate_spec

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"))
COLUMNS = ["num_char", "line_breaks", "exclaim_mess", "number_n", "to_multiple", "cc"]


def spec(**sections: object) -> Spec:
    raw = {"seed": 0, "data": {"source": "d.csv", "target": "y"}, "registry": {"model_name": "m"},
           "models": {"candidates": ["knn"]}, "tuning": {"ensemble": "none"}, "split": {"folds": 4},
           **sections}
    return validate_spec(raw, project_dir=Path("."))


def duplicated_groups(seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """80 real e-mails (email_spam), each repeated 5 times with 1% noise; one coin-flip label per e-mail."""
    real = pl.read_parquet(CORPUS / "email_spam.parquet").with_columns(
        (pl.col("number") == "none").cast(pl.Int64).alias("number_n")).select(COLUMNS)
    base = real.sample(n=80, seed=seed).to_numpy().astype(float)
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(80), 5)
    noise = rng.normal(scale=0.01, size=(400, len(COLUMNS))) * (base.std(axis=0) + 1e-9)
    X = pd.DataFrame(base[groups] + noise, columns=COLUMNS)
    y = np.where(rng.random(80) < 0.5, "yes", "no")[groups]
    return X, y, groups


def cv_auc(split: dict[str, object], seed: int) -> float:
    X, y, groups = duplicated_groups(seed)
    tuned = tune(X, y, dict.fromkeys(COLUMNS, "numeric"), spec(split={"folds": 4, **split}), "classification",
                 "roc_auc", split_keys=groups if split else None)
    return tuned.best.mean["roc_auc"]


def test_grouped_cv_stays_at_chance_on_random_labels_where_plain_kfold_is_optimistic() -> None:
    grouped = np.mean([cv_auc({"by": {"group": "email"}}, seed) for seed in (1, 2)])
    plain = np.mean([cv_auc({}, seed) for seed in (1, 2)])
    assert abs(grouped - 0.5) < 0.1, grouped  # the labels are coin flips: nothing to learn
    assert plain > 0.75, plain  # a near-copy of each validation row was in training


def test_forward_chaining_folds_train_on_earlier_rows_only() -> None:
    X, y, _ = duplicated_groups(3)
    when = np.arange(len(y), dtype=float)[::-1]  # the last rows are the earliest
    tuned = tune(X, y, dict.fromkeys(COLUMNS, "numeric"), spec(split={"folds": 3, "by": {"time": "when"}}),
                 "classification", "roc_auc", split_keys=when)
    assert tuned.folds == 3 and tuned.best.state == "complete"
    from looml.learn.trial import fold_indices

    for fit_rows, score_rows in fold_indices(y, "classification", 3, 0, "time", when):
        assert when[fit_rows].max() < when[score_rows].min()


def test_sample_weights_reach_the_fit_and_the_cv_scores() -> None:
    X, y, _ = duplicated_groups(4)
    features = dict.fromkeys(COLUMNS, "numeric")
    linear = spec(models={"candidates": ["linear"]})
    plain = tune(X, y, features, linear, "classification", "log_loss")
    weights = np.where(y == "yes", 5.0, 0.2)
    weighted = tune(X, y, features, linear, "classification", "log_loss", sample_weight=weights)
    assert weighted.best.mean["log_loss"] != plain.best.mean["log_loss"]
    coef = lambda t: t.pipeline.named_steps["model"].intercept_[0]  # noqa: E731
    assert coef(weighted) > coef(plain) + 0.5  # heavy 'yes' rows pull the intercept towards 'yes'
