"""No leakage: with random labels, every configured preprocessing and feature path scores at chance in CV.

Each path is the real pipeline (`build_preprocessor` + `wrap_model`), cross-validated with
scikit-learn on 600 seeded rows whose labels are coin flips (two draws, averaged). Anything
fitted on the validation fold's labels would lift ROC AUC above 0.5; the last test shows the
check catching a leak.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import TargetEncoder

from looml.learn.features import build_preprocessor
from looml.learn.rows import wrap_model
from looml.spec import FeaturesSpec, PreprocessingSpec

ROWS = 600
CHANCE = 0.08
FEATURES = {"a": "numeric", "b": "numeric", "c": "numeric", "plan": "categorical", "shop": "categorical",
            "note": "text", "when": "datetime"}
WORDS = ["late", "early", "refund", "broken", "great", "slow", "fast", "price", "support", "delivery"]


def frame(seed: int = 0) -> pd.DataFrame:
    """Numbers with gaps and outliers, a small and a high-cardinality category, text, dates."""
    rng = np.random.default_rng(seed)
    gaps = rng.random(ROWS) < 0.1
    return pd.DataFrame({
        "a": np.where(gaps, np.nan, rng.normal(size=ROWS)),
        "b": rng.lognormal(0, 1.5, ROWS),
        "c": rng.normal(size=ROWS) * 3 + np.where(rng.random(ROWS) < 0.02, 50, 0),
        "plan": rng.choice(["basic", "pro", "team", None], ROWS),
        "shop": [f"s{i}" for i in rng.integers(0, 60, ROWS)],  # > 50 values: target encoded by default
        "note": [" ".join(rng.choice(WORDS, 6)) for _ in range(ROWS)],
        "when": pd.to_datetime(rng.integers(1_500_000_000, 1_700_000_000, ROWS), unit="s"),
    })


def random_labels(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, ROWS)


def cv_auc(model: Any, X: pd.DataFrame, y: np.ndarray) -> float:
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    return float(np.mean(cross_val_score(model, X, y, cv=folds, scoring="roc_auc")))


PATHS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    **{f"impute_{m}": ({"numeric": {"impute": m}}, {}) for m in
       ("median", "mean", "most_frequent", "constant", "iterative", "knn")},
    **{f"scale_{m}": ({"numeric": {"scale": m}}, {}) for m in ("standard", "robust", "minmax", "none")},
    "power": ({"numeric": {"power": "yeo-johnson"}}, {}),
    "clip_iqr": ({"numeric": {"clip": "iqr"}}, {}),
    "clip_zscore": ({"numeric": {"clip": "zscore", "clip_threshold": 2.0}}, {}),
    **{f"encoding_{m}": ({"categorical": {"encoding": m}}, {})
       for m in ("auto", "onehot", "ordinal", "target")},
    "text": ({"text": {"max_features": 300, "min_df": 1}}, {}),
    "datetime_cyclic": ({"datetime": {"cyclic": True, "parts": ["month", "dayofweek", "hour"]}}, {}),
    "column_overrides": ({"columns": {"b": {"impute": "mean", "scale": "robust"},
                                      "shop": {"encoding": "target"}}}, {}),
    "derived": ({}, {"derived": [{"name": "ratio", "expr": "log1p(b) / (abs(c) + 1)"},
                                 {"name": "flag", "expr": "where(a > 0 and c < 1, 1, 0)"}]}),
    "polynomial": ({}, {"polynomial": {"columns": ["a", "b", "c"], "degree": 2}}),
    "binning": ({}, {"binning": {"columns": ["b", "c"], "bins": 5, "strategy": "quantile"}}),
    "variance": ({}, {"selection": {"variance_threshold": 0.01}}),
    "correlation": ({}, {"selection": {"correlation_threshold": 0.5}}),
    "mutual_info": ({}, {"selection": {"mutual_info_k": 10}}),
    "rfe": ({}, {"selection": {"rfe": {"n_features": 10}}}),
    "rfecv": ({}, {"selection": {"rfe": {"n_features": 5, "cv": True}}}),
    "model_importance": ({}, {"selection": {"model_importance": {"threshold": "median"}}}),
    "pca": ({}, {"pca": {"components": 0.9}}),
    "oversample": ({"imbalance": "oversample"}, {}),
    "undersample": ({"imbalance": "undersample"}, {}),
    "class_weight": ({"imbalance": "class_weight"}, {}),
    "outlier_rows": ({"outlier_rows": "isolation_forest"}, {}),
    "drop_duplicates": ({"drop_duplicates": True}, {}),
}


def pipeline(preprocessing: dict[str, Any], engineering: dict[str, Any]) -> Pipeline:
    pre = PreprocessingSpec.model_validate(preprocessing)
    eng = FeaturesSpec.model_validate(engineering)
    return Pipeline([*build_preprocessor(FEATURES, pre, eng, "classification", 0).steps,
                     ("model", wrap_model(LogisticRegression(max_iter=300), pre, "classification", 0))])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # unscaled paths
@pytest.mark.parametrize("path", list(PATHS))
def test_random_labels_score_at_chance(path: str) -> None:
    # Two label draws: one draw's CV AUC has a standard deviation of about 0.024 here, the mean
    # of two about 0.017, so 0.08 is far out for chance and far in for a leak (next test).
    aucs = [cv_auc(pipeline(*PATHS[path]), frame(), random_labels(seed)) for seed in (1, 2)]
    assert abs(np.mean(aucs) - 0.5) < CHANCE, f"{path}: ROC AUC {aucs} on random labels"


def test_the_check_catches_a_target_encoder_fitted_before_the_split() -> None:
    X, y = frame(), random_labels()
    leaky = TargetEncoder(target_type="binary").fit(X[["shop"]], y)  # sees every row's label
    encoded = pd.DataFrame(leaky.transform(X[["shop"]]), columns=["shop"])
    auc = cv_auc(LogisticRegression(), encoded, y)
    assert auc - 0.5 > CHANCE, f"the leak went unnoticed: ROC AUC {auc:.3f}"
