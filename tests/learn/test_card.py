"""The model card: every section from the run's facts, and the limitations it must name."""

from __future__ import annotations

import numpy as np
import polars as pl

from looml.data.profile import profile
from looml.learn.card import CardFacts, model_card
from looml.learn.fairness import fairness


def _facts(**changes: object) -> CardFacts:
    rng = np.random.default_rng(0)
    n = 300
    frame = pl.DataFrame({
        "income": [None if rng.random() < 0.5 else float(x) for x in rng.normal(size=n)],
        "sex": rng.choice(["F", "M"], n),
        "when": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 1) + pl.duration(days=n - 1), eager=True),
        "y": rng.choice(["a", "b", "rare"], n, p=[0.5, 0.45, 0.05]),
    })
    classes = np.array(["a", "b"])
    fair = fairness("classification", classes, classes[rng.integers(0, 2, 100)],
                    classes[rng.integers(0, 2, 100)],
                    {"sex": rng.choice(["F", "M", "X"], 100, p=[.45, .45, .1])}, min_rows=30)
    evaluation = {"metrics": {"roc_auc": 0.81, "accuracy": 0.7}, "rows": 100, "confidence": 0.95,
                  "intervals": {"roc_auc": [0.74, 0.88], "accuracy": [0.61, 0.79]}, "fairness": fair,
                  "slices": {"primary_metric": "roc_auc", "overall": 0.81, "min_rows": 30,
                             "worst": [{"column": "sex", "slice": "F", "rows": 45, "value": 0.7, "low": 0.6,
                                        "high": 0.8, "drop": 0.11}]}}
    facts = dict(model_name="churn", task="classification", target="y", best_model="lightgbm",
                 primary_metric="roc_auc", data_digest="ab" * 32, spec_hash="cd" * 32, rows=n, train_rows=200,
                 test_rows=100, features={"income": "numeric", "when": "datetime"},
                 profile=profile(frame, target="y", seed=1).to_dict(),
                 classes={"a": 150, "b": 135, "rare": 15},
                 evaluation=evaluation, importance={"income": 0.7, "when": 0.3, "sex": 0.0})
    return CardFacts(**{**facts, **changes})


def test_the_card_states_data_metrics_slices_fairness_features_limits_and_how_to_reproduce() -> None:
    card = model_card(_facts())
    assert card.startswith("# Model card: churn\n")
    assert "A 3-class classification model predicting `y` (lightgbm" in card
    assert f"snapshot digest: `{'ab' * 32}`" in card and "rows: 300 (200 training, 100 holdout)" in card
    assert "period: `when` from 2024-01-01" in card
    assert "| roc_auc (primary) | 0.81 | [0.74, 0.88] |" in card
    assert "| sex | F | 45 | 0.7 | [0.6, 0.8] | 0.11 |" in card
    assert "| sex | demographic_parity_difference |" in card
    assert "1. `income`: 70.0%" in card and "`sex`" not in card.split("## Top features")[1].split("##")[0]
    assert "`income` is missing in 46% of the rows" in card
    assert "class `rare` has only 15 rows" in card
    assert "groups of `sex` too small to judge: X" in card
    assert f"spec hash: `{'cd' * 32}`" in card and f"looml run looml.yaml --snapshot {'ab' * 6}" in card


def test_a_card_without_analysis_or_importance_says_so() -> None:
    card = model_card(_facts(evaluation={"metrics": {"rmse": 1.5}, "rows": 10}, importance=None,
                             task="regression", classes={},
                             gate_failures=["evaluation.gate.max.rmse: too high"]))
    assert "A regression model" in card and "| rmse | 1.5 |  |" in card
    assert "No slices were asked for" in card and "No sensitive columns were named" in card
    assert "Not computed for this model." in card
    assert "The evaluation gate failed; this model was not registered" in card


def test_a_binary_cards_calibration_names_the_brier_score_the_worst_bin_and_the_threshold() -> None:
    reliability = {"predicted": [0.1, 0.5, 0.9], "observed": [0.12, 0.3, 0.88], "count": [40, 20, 40],
                   "brier": 0.1234}
    evaluation = {"metrics": {"roc_auc": 0.9}, "rows": 100, "plots": {"calibration": reliability}}
    decision = {"calibration": "sigmoid", "calibration_asked": "auto", "threshold": 0.3712,
                "positive_class": "yes", "objective": "f1"}
    card = model_card(_facts(evaluation=evaluation, decision=decision))
    section = card.split("## Calibration and decision")[1].split("##")[0]
    assert "Brier score on the holdout: 0.1234" in section
    assert "largest gap between the predicted and the observed rate is 0.200 (predicted 0.500, " \
           "observed 0.300, 20 holdout rows)" in section
    assert "calibration: sigmoid (auto asked)" in section
    assert "decision threshold: 0.3712 on the probability of `yes`, chosen for f1" in section
    plain = model_card(_facts(evaluation=evaluation))
    assert "calibration: none" in plain and "decision: the most probable class" in plain
    assert "## Calibration" not in model_card(_facts())  # a multiclass model without either
