"""Bootstrap intervals: the vectorised metrics equal `metrics.score`, the intervals are seeded,
and they cover the true value at about the stated rate."""

from __future__ import annotations

import numpy as np
import pytest

from looml.learn.intervals import bootstrap_weights, intervals, weighted_metrics
from looml.learn.metrics import score


def _classified(k: int, n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = np.array([f"c{i}" for i in range(k)])
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[truth]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    proba[:5] = np.round(proba[:5], 1)  # some tied scores
    proba /= proba.sum(axis=1, keepdims=True)
    return classes, classes[truth], classes[proba.argmax(axis=1)], proba


@pytest.mark.parametrize("k", [2, 4])
def test_classification_metrics_equal_score(k: int) -> None:
    classes, y, pred, proba = _classified(k)
    expected = score("classification", classes, y, pred, proba)
    found = weighted_metrics("classification", classes, y, pred, proba, np.ones((1, len(y))))
    for name, value in expected.items():
        assert found[name][0] == pytest.approx(value, rel=1e-9), name


def test_a_weight_row_is_the_metric_of_the_rows_it_counts() -> None:
    classes, y, pred, proba = _classified(2)
    rows = np.arange(0, 600, 3)
    W = np.zeros((1, 600))
    W[0, rows] = 1.0
    expected = score("classification", classes, y[rows], pred[rows], proba[rows])
    found = weighted_metrics("classification", classes, y, pred, proba, W)
    assert {m: found[m][0] for m in expected} == pytest.approx(expected, rel=1e-9)


def test_regression_metrics_equal_score() -> None:
    rng = np.random.default_rng(3)
    y = rng.gamma(2.0, size=500)
    pred = y + rng.normal(scale=0.5, size=500)
    expected = score("regression", np.array([]), y, pred, None)
    found = weighted_metrics("regression", np.array([]), y, pred, None, np.ones((1, 500)))
    for name, value in expected.items():
        assert found[name][0] == pytest.approx(value, rel=1e-9), name


def test_a_resample_without_a_class_has_no_auc() -> None:
    classes, y, pred, proba = _classified(2, n=50)
    W = (y == classes[1]).astype(float)[None, :]  # positives only
    assert np.isnan(weighted_metrics("classification", classes, y, pred, proba, W)["roc_auc"][0])


def test_resamples_are_seeded_and_draw_n_rows() -> None:
    first = np.vstack(list(bootstrap_weights(40, 30, seed=5)))
    assert first.shape == (30, 40) and np.all(first.sum(axis=1) == 40)
    assert np.array_equal(first, np.vstack(list(bootstrap_weights(40, 30, seed=5))))
    assert not np.array_equal(first, np.vstack(list(bootstrap_weights(40, 30, seed=6))))
    classes, y, pred, proba = _classified(2)
    a = intervals("classification", classes, y, pred, proba, confidence=0.9, seed=1)
    assert a == intervals("classification", classes, y, pred, proba, confidence=0.9, seed=1)
    low, high = a["roc_auc"]
    assert low < score("classification", classes, y, pred, proba)["roc_auc"] < high


def test_intervals_cover_the_true_value_at_about_the_stated_rate() -> None:
    # A model right with probability 0.8 on each of 150 rows: its true accuracy is 0.8, and a
    # 90% interval from each of 200 holdouts should hold it about 180 times (sd 4).
    rng = np.random.default_rng(11)
    classes = np.array(["a", "b"])
    covered = {"accuracy": 0, "mae": 0}
    repeats = 200
    for i in range(repeats):
        y = classes[rng.integers(0, 2, 150)]
        right = rng.random(150) < 0.8
        pred = np.where(right, y, np.where(y == "a", "b", "a"))
        low, high = intervals("classification", classes, y, pred, None, confidence=0.9, seed=i,
                              resamples=400)["accuracy"]
        covered["accuracy"] += low <= 0.8 <= high
        error = rng.exponential(1.0, 150)  # true mean absolute error: 1
        low, high = intervals("regression", np.array([]), np.zeros(150), error, None, confidence=0.9,
                              seed=i, resamples=400)["mae"]
        covered["mae"] += low <= 1.0 <= high
    for name, hits in covered.items():
        assert 0.84 <= hits / repeats <= 0.96, (name, hits)


def test_sample_weights_weigh_the_rows() -> None:
    # Weight 2 on a row is the same as that row twice.
    classes, y, pred, proba = _classified(2, n=200)
    w = np.where(np.arange(200) < 100, 2.0, 1.0)
    doubled = np.concatenate([np.arange(200), np.arange(100)])
    weighted = weighted_metrics("classification", classes, y, pred, proba, w[None, :])
    repeated = score("classification", classes, y[doubled], pred[doubled], proba[doubled])
    assert {m: weighted[m][0] for m in repeated} == pytest.approx(repeated, rel=1e-9)
