"""Weighted metrics agree with scikit-learn; the paired bootstrap tells a better model from noise."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from looml.monitor.stats import Outcomes, bootstrap_interval, metric, paired_bootstrap

RNG = np.random.default_rng(7)
N = 400


def binary(seed: int = 0, skill: float = 1.0, noise: int | None = None) -> Outcomes:
    """A model of `skill` on the labels of `seed`; `noise` seeds its errors (default: `seed`)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, N)
    errors = rng.normal(size=N) if noise is None else np.random.default_rng(noise).normal(size=N)
    p = 1 / (1 + np.exp(-(skill * (2 * y - 1) + errors)))
    classes = np.array(["no", "yes"], dtype=object)
    return Outcomes("classification", classes, classes[y], classes[(p > 0.5).astype(int)], np.c_[1 - p, p])


@pytest.mark.parametrize("name", ["roc_auc", "accuracy", "precision", "recall", "f1", "log_loss"])
def test_binary_metrics_with_weights_match_scikit_learn(name: str) -> None:
    o = binary()
    w = np.bincount(RNG.integers(0, N, N), minlength=N)
    y, pred, p = o.y_true, o.y_pred, o.proba
    expected = {
        "roc_auc": lambda: skm.roc_auc_score(y == "yes", p[:, 1], sample_weight=w),
        "accuracy": lambda: skm.accuracy_score(y, pred, sample_weight=w),
        "precision": lambda: skm.precision_score(y, pred, pos_label="yes", sample_weight=w),
        "recall": lambda: skm.recall_score(y, pred, pos_label="yes", sample_weight=w),
        "f1": lambda: skm.f1_score(y, pred, pos_label="yes", sample_weight=w),
        "log_loss": lambda: skm.log_loss(y, p, labels=["no", "yes"], sample_weight=w),
    }[name]()
    assert metric(name, o, w) == pytest.approx(expected, rel=1e-12)


def test_multiclass_and_regression_metrics_match_scikit_learn() -> None:
    y = RNG.integers(0, 3, N)
    proba = RNG.dirichlet([1, 1, 1], N)
    o = Outcomes("classification", np.array([0, 1, 2]), y, proba.argmax(1), proba)
    assert metric("roc_auc", o) == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"), rel=1e-12)
    assert metric("f1", o) == pytest.approx(skm.f1_score(y, proba.argmax(1), average="macro"), rel=1e-12)
    truth = RNG.normal(size=N)
    guess = truth + RNG.normal(size=N)
    r = Outcomes("regression", np.array([]), truth, guess)
    assert metric("rmse", r) == pytest.approx(skm.root_mean_squared_error(truth, guess))
    assert metric("mae", r) == pytest.approx(skm.mean_absolute_error(truth, guess))
    assert metric("r2", r) == pytest.approx(skm.r2_score(truth, guess))


def test_average_precision_mape_rmsle_and_the_positive_class_match_scikit_learn() -> None:
    o = binary(3)
    w = np.bincount(RNG.integers(0, N, N), minlength=N).astype(float)
    y, pred, p = o.y_true, o.y_pred, o.proba
    assert metric("average_precision", o, w) == pytest.approx(
        skm.average_precision_score(y == "yes", p[:, 1], sample_weight=w), rel=1e-12)
    as_no = Outcomes(o.task, o.classes, y, pred, p, positive=0)
    assert metric("average_precision", as_no) == pytest.approx(
        skm.average_precision_score(y == "no", p[:, 0]))
    assert metric("recall", as_no, w) == pytest.approx(
        skm.recall_score(y, pred, pos_label="no", sample_weight=w))
    truth = RNG.gamma(2.0, size=N) + 0.1
    guess = np.clip(truth + RNG.normal(scale=0.5, size=N), 0, None)
    r = Outcomes("regression", np.array([]), truth, guess)
    assert metric("mape", r, w) == pytest.approx(
        skm.mean_absolute_percentage_error(truth, guess, sample_weight=w))
    assert metric("rmsle", r) == pytest.approx(skm.root_mean_squared_log_error(truth, guess))


def test_a_label_the_model_never_saw_counts_as_wrong() -> None:
    classes = np.array(["a", "b"], dtype=object)
    o = Outcomes("classification", classes, np.array(["a", "b", "c"], dtype=object),
                 np.array(["a", "b", "a"], dtype=object), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    assert metric("accuracy", o) == pytest.approx(2 / 3)
    assert metric("log_loss", o) > 10  # the unseen label gets probability ~0


def test_bootstrap_interval_covers_the_value() -> None:
    o = binary()
    low, high = bootstrap_interval("roc_auc", o, confidence=0.95, resamples=300, seed=1)
    assert low < metric("roc_auc", o) < high
    assert high - low < 0.2


def test_paired_bootstrap_finds_a_better_model_and_not_a_twin() -> None:
    weak, strong = binary(seed=0, skill=0.5), binary(seed=0, skill=2.0)
    better = paired_bootstrap("roc_auc", weak, strong, margin=0.0, confidence=0.95, resamples=300, seed=1)
    assert better.significant and better.improvement > 0.1 and better.p_value < 0.05
    # Twins: as skilled, on the same rows, each wrong on other rows (its own errors). At 95 %
    # confidence about 1 in 20 pairs is called better by chance (Binomial(60, 0.05) > 7: p = 0.03).
    pairs = [(binary(seed=0, skill=0.5, noise=100 + k), binary(seed=0, skill=0.5, noise=200 + k))
             for k in range(60)]
    twins = [paired_bootstrap("roc_auc", a, b, margin=0.0, confidence=0.95, resamples=300, seed=k)
             for k, (a, b) in enumerate(pairs)]
    assert all(t.improvement != 0.0 for t in twins)
    assert sum(t.significant for t in twins) <= 7
    assert abs(np.mean([t.improvement for t in twins])) < 0.01
    # a real but small gain is not enough to clear a margin above it
    bit = binary(seed=0, skill=0.6)
    small = paired_bootstrap("roc_auc", weak, bit, margin=0.05, confidence=0.95, resamples=300, seed=1)
    assert 0 < small.improvement < 0.05 and not small.significant
    assert paired_bootstrap("roc_auc", weak, bit, margin=0.0, confidence=0.95, resamples=300,
                            seed=1).significant
    worse = paired_bootstrap("log_loss", strong, weak, margin=0.0, confidence=0.95, resamples=300, seed=1)
    assert not worse.significant and worse.improvement < 0  # lower is better: the weak one loses
