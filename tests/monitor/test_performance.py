"""Live performance: a drop is flagged only on enough labels and a whole confidence interval;
unlabelled traffic gets a labelled-as-estimate accuracy from the probabilities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from looml.monitor.performance import live_performance, watched_metric
from looml.spec import PerformanceSpec, validate_spec

START = datetime(2026, 11, 1, tzinfo=UTC)


def served(n: int, skill: float, sharpen: float = 1.0, seed: int = 0) -> pl.DataFrame:
    """A fully labelled prediction log of a binary classifier of the given skill.

    The labels are drawn from sigmoid(score); the model serves sigmoid(sharpen * score), so it is
    calibrated at `sharpen=1`, overconfident above and underconfident below, with the same ranking.
    """
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n) * skill
    truth = rng.random(n) < 1 / (1 + np.exp(-score))
    p = 1 / (1 + np.exp(-sharpen * score))
    return pl.DataFrame({
        "timestamp": [START + timedelta(hours=i * 48 / n) for i in range(n)],
        "model_version": ["1"] * n,
        "prediction": np.where(p > 0.5, "yes", "no"),
        "proba_no": 1 - p, "proba_yes": p,
        "label": np.where(truth, "yes", "no"),
    })


def hold_back(frame: pl.DataFrame, labelled: float, seed: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`frame` with all but a `labelled` fraction of its labels removed, and the held-back rows."""
    keep = pl.Series(np.random.default_rng(seed).random(frame.height) < labelled)
    return frame.with_columns(pl.when(keep).then(pl.col("label")).alias("label")), frame.filter(~keep)


def joined(n: int, skill: float, labelled: float = 1.0, seed: int = 0) -> pl.DataFrame:
    """A joined prediction log of a calibrated binary classifier with a `labelled` fraction of labels."""
    return hold_back(served(n, skill, seed=seed), labelled, seed=seed + 1)[0]


def auc(frame: pl.DataFrame) -> float:
    """The realised ROC AUC of a labelled log, by scikit-learn."""
    return float(roc_auc_score(frame["label"] == "yes", frame["proba_yes"]))


def accuracy(frame: pl.DataFrame) -> float:
    """The realised accuracy of a labelled log."""
    return float((frame["prediction"] == frame["label"]).mean())


def test_a_model_as_good_as_on_holdout_is_ok_and_a_worse_one_drops() -> None:
    reference = auc(served(1000, skill=3.0, seed=1))  # the model's holdout, other rows than live
    spec = PerformanceSpec(max_drop=0.03, resamples=200)

    live = served(2000, skill=3.0, seed=2)
    result = live_performance(live, "roc_auc", reference, spec)
    assert result.value == pytest.approx(auc(live))
    assert result.verdict == "ok" and not result.dropped
    low, high = result.interval
    assert low < result.value < high and low < reference < high
    assert [w["labelled"] for w in result.windows] == [1000, 1000]  # two days

    worse = served(2000, skill=1.5, seed=2)
    assert auc(worse) < reference - 0.03
    result = live_performance(worse, "roc_auc", reference, spec)
    assert result.value == pytest.approx(auc(worse))
    assert result.verdict == "drop" and result.interval[1] < result.limit == pytest.approx(reference - 0.03)


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


@pytest.mark.parametrize("sharpen", [1.0, 4.0, 0.3])  # calibrated, over- and underconfident
def test_the_estimate_finds_the_realised_metric_of_the_held_back_rows(sharpen: float) -> None:
    frame, held = hold_back(served(6000, skill=2.0, sharpen=sharpen, seed=3), labelled=0.2)
    estimate = live_performance(frame, "accuracy", None, PerformanceSpec()).estimate

    assert estimate["calibrated"] and estimate["rows"] == held.height
    assert estimate["accuracy"] == pytest.approx(accuracy(held), abs=0.02)
    assert estimate["roc_auc"] == pytest.approx(auc(held), abs=0.02)


@pytest.mark.parametrize(("sharpen", "off"), [(4.0, 1), (0.3, -1)])
def test_a_miscalibrated_model_with_too_few_labels_gets_a_flagged_estimate_that_is_off(
    sharpen: float, off: int,
) -> None:
    frame, held = hold_back(served(6000, skill=2.0, sharpen=sharpen, seed=3), labelled=0.005)
    result = live_performance(frame, "accuracy", None, PerformanceSpec())
    estimate = result.estimate

    assert result.labelled < 50 and not estimate["calibrated"]  # the model's own probabilities
    p = held["proba_yes"].to_numpy()
    assert estimate["accuracy"] == pytest.approx(np.maximum(p, 1 - p).mean())
    # an overconfident model promises more than it delivers, an underconfident one less
    assert off * (estimate["accuracy"] - accuracy(held)) > 0.1
    assert off * (estimate["roc_auc"] - auc(held)) > 0.1


def test_a_custom_primary_metric_is_watched_as_the_tasks_default() -> None:
    spec = validate_spec({"data": {"source": "d.csv", "target": "y"}, "registry": {"model_name": "m"},
                          "evaluation": {"primary_metric": "shop.metrics:cost"}}, project_dir=Path("."))
    assert watched_metric(spec, {"accuracy": 0.9, "cost": 1.0}) == "roc_auc"
    assert watched_metric(spec, {"rmse": 1.0}) == "rmse"
    assert watched_metric(spec.model_copy(update={"evaluation": spec.evaluation.model_copy(
        update={"primary_metric": "average_precision"})}), {"accuracy": 0.9}) == "average_precision"
