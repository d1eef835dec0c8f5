"""Live performance: a drop is flagged only on enough labels and a whole confidence interval;
unlabelled traffic gets a labelled-as-estimate accuracy from the probabilities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from looml.monitor.performance import live_performance
from looml.spec import PerformanceSpec

START = datetime(2026, 11, 1, tzinfo=UTC)


def joined(n: int, skill: float, labelled: float = 1.0, seed: int = 0) -> pl.DataFrame:
    """A joined prediction log of a calibrated binary classifier of the given skill."""
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n) * skill
    p = 1 / (1 + np.exp(-score))
    truth = rng.random(n) < p  # calibrated by construction
    label = np.where(truth, "yes", "no").astype(object)
    label[rng.random(n) >= labelled] = None
    return pl.DataFrame({
        "timestamp": [START + timedelta(hours=i * 48 / n) for i in range(n)],
        "model_version": ["1"] * n,
        "prediction": np.where(p > 0.5, "yes", "no"),
        "proba_no": 1 - p, "proba_yes": p,
        "label": pl.Series(label.tolist(), dtype=pl.String),
    })


def test_a_model_as_good_as_on_holdout_is_ok() -> None:
    frame = joined(2000, skill=3.0)
    holdout = live_performance(frame, "roc_auc", None, PerformanceSpec()).value
    result = live_performance(frame, "roc_auc", holdout, PerformanceSpec(resamples=200))
    assert result.verdict == "ok" and not result.dropped
    low, high = result.interval
    assert low < result.value < high
    assert [w["labelled"] for w in result.windows] == [1000, 1000]  # two days


def test_a_drop_beyond_the_limit_is_flagged_with_its_interval() -> None:
    result = live_performance(joined(2000, skill=0.5), "roc_auc", 0.9,
                              PerformanceSpec(max_drop=0.05, resamples=200))
    assert result.dropped and result.verdict == "drop"
    assert result.interval[1] < result.limit == pytest.approx(0.85)


def test_a_lower_is_better_metric_drops_upwards_and_relative_limits_scale() -> None:
    result = live_performance(joined(2000, skill=0.5), "log_loss", 0.3,
                              PerformanceSpec(max_drop=0.1, relative=True, resamples=200))
    assert result.limit == pytest.approx(0.33)
    assert result.dropped and result.interval[0] > 0.33


def test_too_few_labels_give_no_verdict() -> None:
    result = live_performance(joined(2000, skill=0.2, labelled=0.02), "roc_auc", 0.99,
                              PerformanceSpec(min_labels=100))
    assert result.verdict == "too few labels" and not result.dropped and result.labelled < 100


def test_unlabelled_rows_get_an_estimate_close_to_the_truth() -> None:
    frame = joined(6000, skill=2.0, labelled=0.2, seed=3)
    result = live_performance(frame, "accuracy", None, PerformanceSpec())
    estimate = result.estimate
    assert estimate["calibrated"] and estimate["rows"] == frame["label"].is_null().sum()
    # the truth the estimate should find: accuracy of a calibrated model is E[max(p, 1-p)]
    p = frame.filter(pl.col("label").is_null())["proba_yes"].to_numpy()
    assert estimate["accuracy"] == pytest.approx(np.maximum(p, 1 - p).mean(), abs=0.03)
    assert 0.5 < estimate["roc_auc"] < 1.0
