"""Evaluate on the holdout: analysed columns beside the features, and plot data that are
aggregated points, never the rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import brier_score_loss

from looml.learn.evaluate import evaluate
from looml.spec import EvaluationSpec


def _binary(n: int = 5000) -> tuple[LogisticRegression, pd.DataFrame, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    y = np.where(X["x"] + rng.normal(size=n) > 0.5, "yes", "no")
    extra = pd.DataFrame({"sex": rng.choice(["F", "M"], n)})
    return LogisticRegression().fit(X, y), X, y, extra


def test_sensitive_columns_come_beside_the_features() -> None:
    model, X, y, extra = _binary(1500)
    settings = EvaluationSpec(sensitive_columns=["sex"], slices=["sex", "x"])
    found, _ = evaluate(model, X, y, "classification", settings, primary="roc_auc", seed=1, extra=extra)
    assert {g["group"] for g in found.fairness["columns"]["sex"]} == {"F", "M"}
    assert set(found.slices["columns"]) == {"sex", "x"}  # a feature can be a slice too
    assert set(found.intervals) == set(found.metrics) and found.confidence == 0.95
    off, _ = evaluate(model, X, y, "classification", EvaluationSpec(analysis=False), extra=extra)
    assert off.intervals == {} and off.fairness is None and off.slices is None


def test_binary_plot_data_are_aggregated_points() -> None:
    model, X, y, _ = _binary()
    plots = evaluate(model, X, y, "classification")[0].plots
    proba = model.predict_proba(X)[:, 1]
    cal = plots["calibration"]
    assert sum(cal["count"]) == len(y) and len(cal["count"]) == 10
    assert cal["brier"] == pytest.approx(brier_score_loss(y == "yes", proba))
    assert cal["observed"][0] < cal["observed"][-1]
    gain = plots["gain"]
    assert gain["population"][0] == 0 and gain["captured"][-1] == 1.0 and len(gain["population"]) == 51
    assert gain["captured"][10] > gain["population"][10]  # better than random in the top 20%
    assert len(plots["pr"]["recall"]) <= 1000
    assert plots["pr"]["prevalence"] == pytest.approx(np.mean(y == "yes"))


def test_regression_residuals_are_a_histogram_of_every_row() -> None:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x": rng.normal(size=3000)})
    y = 2 * X["x"].to_numpy() + rng.normal(size=3000)
    found, predictions = evaluate(LinearRegression().fit(X, y), X, y, "regression")
    spread = found.plots["residuals"]
    assert sum(spread["counts"]) == 3000 and len(spread["edges"]) == 31
    assert spread["edges"][0] == pytest.approx(np.min(y - predictions))
