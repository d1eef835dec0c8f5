"""Slices: metrics per value or quantile bin, and the worst slice found is the planted one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from looml.learn.metrics import score
from looml.learn.slices import MISSING, OTHER, group_labels, slice_metrics

CLASSES = np.array(["no", "yes"])


def _planted(n: int = 2000, seed: int = 0) -> dict:
    """A good model everywhere but in region 'south' and for ages 60+, where it guesses."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], n)
    age = rng.uniform(20, 80, n)
    truth = rng.integers(0, 2, n)
    signal = np.where(truth == 1, 0.8, 0.2) + rng.normal(scale=0.15, size=n)
    p = np.clip(np.where(region == "south", rng.random(n), signal), 0.001, 0.999)
    proba = np.c_[1 - p, p]
    return {"y": CLASSES[truth], "pred": CLASSES[(p > 0.5).astype(int)], "proba": proba,
            "columns": {"region": region, "age": age}}


def test_the_worst_slice_is_the_planted_one() -> None:
    d = _planted()
    found = slice_metrics("classification", CLASSES, d["y"], d["pred"], d["proba"], d["columns"],
                          primary="roc_auc", min_rows=30, confidence=0.95, seed=0)
    worst = found["worst"][0]
    assert (worst["column"], worst["slice"]) == ("region", "south")
    mask = d["columns"]["region"] == "south"
    own = score("classification", CLASSES, d["y"][mask], d["pred"][mask], d["proba"][mask])["roc_auc"]
    assert worst["value"] == pytest.approx(own)
    assert worst["low"] < own < worst["high"] < found["overall"]
    assert worst["drop"] == pytest.approx(found["overall"] - own)
    bins = [e["slice"] for e in found["columns"]["age"]]
    assert len(bins) == 4 and bins[0].startswith("[") and bins[-1].endswith("]")
    assert sum(e["rows"] for e in found["columns"]["age"]) == 2000


def test_lower_is_better_metrics_and_small_slices() -> None:
    rng = np.random.default_rng(1)
    plan = np.where(np.arange(500) < 10, "rare", rng.choice(["basic", "pro"], 500))
    y = rng.normal(size=500)
    pred = y + np.where(plan == "pro", 2.0, 0.1) * rng.normal(size=500)
    pred[:10] = y[:10] + 5  # the rare plan is worst by far, but too small to count
    found = slice_metrics("regression", np.array([]), y, pred, None, {"plan": plan}, primary="rmse",
                          min_rows=30, confidence=0.95, seed=0)
    assert [w["slice"] for w in found["worst"]] == ["pro"]
    rare = next(e for e in found["columns"]["plan"] if e["slice"] == "rare")
    assert rare["small"] and rare["rows"] == 10


def test_group_labels() -> None:
    assert list(group_labels(pd.Series(["a", None, "b", "a"]))) == ["a", MISSING, "b", "a"]
    many = group_labels(np.array([f"v{i % 30}" for i in range(300)] + ["v0"] * 50))
    assert OTHER in set(many) and len(set(many)) == 21
    coded = group_labels(np.array([1, 2, 2, 1, 2]))  # few numeric values: sliced by value
    assert set(coded) == {"1", "2"}
    binned = group_labels(np.r_[np.arange(100.0), np.nan])
    assert binned[-1] == MISSING and len(set(binned[:-1])) == 4
    days = group_labels(pd.Series(pd.date_range("2024-01-01", periods=100, freq="D", tz="UTC")))
    assert sorted(set(days))[0] == "[2024-01-01, 2024-01-25)" and len(set(days)) == 4
