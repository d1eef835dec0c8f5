"""Calibration (`evaluation.calibration`): fitted on out-of-fold predictions of the rows `fit` is
given, kept as arrays the compiled scorer reproduces, and `auto` only when it helps."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.naive_bayes import GaussianNB
from sklearn.utils.estimator_checks import parametrize_with_checks

from looml.learn.decision import DecisionModel, _fit_calibrators, apply_calibration

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"))

def _expected_failures(estimator: DecisionModel) -> dict[str, str]:
    return {"check_classifiers_train": "predict cuts at the chosen threshold, not at argmax"}


# GaussianNB: fast, and dense only, so the sparse checks only check the refusal.
@parametrize_with_checks([DecisionModel(GaussianNB(), calibration="sigmoid", objective="f1", folds=3)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_estimator_contract(estimator, check) -> None:
    check(estimator)


def _attrition(rows: int = 700) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The employee attrition table's numeric columns, split 60/40 (seeded)."""
    frame = pl.read_parquet(CORPUS / "employee_attrition.parquet").sample(rows, seed=0)
    numeric = [c for c, t in frame.schema.items() if t.is_numeric()]
    X = frame.select(numeric).to_numpy().astype(float)
    y = (frame["Attrition"] == "Yes").to_numpy().astype(int)
    cut = int(rows * 0.6)
    return X[:cut], y[:cut], X[cut:], y[cut:]


@pytest.mark.parametrize("model", [GaussianNB(), RandomForestClassifier(n_estimators=5, random_state=0)])
def test_calibration_improves_the_holdout_log_loss_of_a_miscalibrated_model(model) -> None:
    X, y, X_test, y_test = _attrition()

    raw = log_loss(y_test, np.clip(model.fit(X, y).predict_proba(X_test), 1e-12, 1))
    calibrated = DecisionModel(model, calibration="auto", folds=5, random_state=0).fit(X, y)

    assert calibrated.calibration_ in ("sigmoid", "isotonic")
    assert calibrated.log_loss_[calibrated.calibration_] < calibrated.log_loss_["none"] * 0.99
    assert log_loss(y_test, calibrated.predict_proba(X_test)) < raw * 0.98
    # the holdout rows were never given to fit: the same rows without them give the same model
    again = DecisionModel(model, calibration="auto", folds=5, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X_test), calibrated.predict_proba(X_test))


def test_auto_leaves_a_well_calibrated_model_alone() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    y = (rng.random(600) < 1 / (1 + np.exp(-X @ [1.5, -1.0, 0.5]))).astype(int)

    model = DecisionModel(LogisticRegression(), calibration="auto", random_state=0).fit(X, y)

    assert model.calibration_ == "none" and model.calibrators_ == []
    assert set(model.log_loss_) == {"none", "sigmoid"}  # isotonic only from 1,000 rows
    np.testing.assert_array_equal(model.predict_proba(X), model.estimator_.predict_proba(X))


def test_isotonic_arrays_map_as_scikit_learn_s_isotonic_regression() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(400)
    y = (rng.random(400) < p ** 2).astype(int)
    proba = np.column_stack([1 - p, p])

    calibrators = _fit_calibrators("isotonic", proba, y, None)

    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
    fresh = rng.random(100) * 1.2 - 0.1  # some outside the fitted range
    got = apply_calibration(np.column_stack([1 - fresh, fresh]), calibrators)
    np.testing.assert_allclose(got[:, 1], reference.predict(fresh), atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)


def test_several_classes_are_calibrated_one_against_the_rest_and_sum_to_one() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 4))
    y = np.digitize(X[:, 0] + rng.normal(scale=0.5, size=300), [-0.5, 0.5])

    model = DecisionModel(GaussianNB(), calibration="sigmoid", objective="f1").fit(X, y)

    proba = model.predict_proba(X)
    assert len(model.calibrators_) == 3 and model.threshold_ is None  # no threshold for 3 classes
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])
