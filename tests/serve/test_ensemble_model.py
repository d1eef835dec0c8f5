"""A registered voting ensemble: registered, loaded for serving and scored like any model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.datasets import make_friedman1
from sklearn.ensemble import VotingRegressor

import looml
from looml.serve.model import load_model


def test_a_kept_voting_ensemble_is_served_with_the_pipelines_predictions(
        make_project: Callable[..., Path]) -> None:
    X, y = make_friedman1(n_samples=600, noise=1.0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(label=y)
    project = make_project(pl.from_pandas(frame), extra="split:\n  folds: 3\n"
                                                        "tuning: {method: bayesian, trials: 8}\n")
    project.write_text(project.read_text().replace("[linear]", "[decision_tree, knn, linear]"))
    result = looml.run(project)
    assert result.best_model == "voting_ensemble"

    served = load_model(result.tracking_uri, result.model_name)

    assert isinstance(served.pipeline.named_steps["model"], VotingRegressor)
    assert served.features == {f"x{i}": "numeric" for i in range(10)} and served.task == "regression"
    rows = frame.drop(columns="label").head(50)
    batch = {name: rows[name].tolist() for name in rows.columns}
    got = served.predict(batch)
    np.testing.assert_allclose(np.asarray(got.labels, dtype=float), served.pipeline.predict(rows), rtol=1e-12)


@pytest.mark.parametrize("task", ["classification", "regression", "multiclass"])
def test_the_default_vote_is_served_compiled_and_matches_the_pipeline(
        make_project: Callable[..., Path], task: str) -> None:
    # `looml init`'s candidates, voted (decision 42): the server must not fall back to the pipeline.
    rng = np.random.default_rng(1)  # a table where the vote beats each member in nested CV
    rows = 900
    x = rng.normal(size=rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    z = rng.normal(size=rows)
    signal = 2 * x + (plan == "pro") + 2 * np.sin(3 * z) + rng.normal(size=rows)  # linear and not
    label = (signal if task == "regression" else np.where(signal > 0.5, "y", "n") if task == "classification"
             else np.digitize(signal, [-0.5, 1.5]).astype(str))
    shop = rng.choice([f"s{i}" for i in range(80)], rows)  # > high_cardinality: target-encoded
    frame = pd.DataFrame({"x": np.where(rng.random(rows) < 0.1, np.nan, x), "z": z, "plan": plan,
                          "shop": shop, "label": label})
    project = make_project(pl.from_pandas(frame), extra="split:\n  folds: 3\n")
    project.write_text(project.read_text().replace("[linear]", "[lightgbm, linear, random_forest]"))
    result = looml.run(project)
    assert result.best_model == "voting_ensemble"

    served = load_model(result.tracking_uri, result.model_name)

    assert served.scorer.name.startswith("compiled:vote("), served.scorer.name
    member = served.pipeline.named_steps["model"].estimators_[0]
    branches = {name for name, _, cols in member.named_steps["columns"].transformers_ if len(cols)}
    assert "categorical_target" in branches, branches
    X = frame.drop(columns="label").head(200)
    got = served.predict({c: X[c].tolist() for c in X.columns})
    if task == "regression":
        np.testing.assert_allclose(np.asarray(got.labels, dtype=float), served.pipeline.predict(X), rtol=1e-9)
    else:
        np.testing.assert_allclose(got.proba, served.pipeline.predict_proba(X), atol=1e-9)
        assert list(got.labels) == list(served.pipeline.predict(X))


@pytest.mark.parametrize("model", ["lightgbm", "linear"])
def test_text_and_target_encoded_columns_compile(make_project: Callable[..., Path], model: str) -> None:
    rng = np.random.default_rng(3)
    rows = 700
    words = np.array(["late", "early", "refund", "broken", "great", "slow", "fast", "price", "box", "call"])
    note = [" ".join(rng.choice(words, int(rng.integers(2, 9)))) + f" order {i}" for i in range(rows)]
    shop = rng.choice([f"s{i}" for i in range(80)], rows)
    signal = np.array([n.count("late") - n.count("great") for n in note]) + rng.normal(size=rows)
    frame = pd.DataFrame({"note": note, "shop": shop, "x": rng.normal(size=rows),
                          "label": np.where(signal > 0, "bad", "good")})
    project = make_project(pl.from_pandas(frame), extra="split:\n  folds: 2\n")
    project.write_text(project.read_text().replace("[linear]", f"[{model}]"))
    result = looml.run(project)

    served = load_model(result.tracking_uri, result.model_name)

    branches = {name for name, _, cols in served.pipeline.named_steps["columns"].transformers_ if len(cols)}
    assert {"text", "categorical_target"} <= branches, branches
    assert served.scorer.name.startswith("compiled:"), served.scorer.name
    X = frame.drop(columns="label").head(100).assign(note=lambda f: f["note"].mask(f.index % 9 == 0))
    got = served.predict({c: X[c].tolist() for c in X.columns})
    np.testing.assert_allclose(got.proba, served.pipeline.predict_proba(X), atol=1e-9)
