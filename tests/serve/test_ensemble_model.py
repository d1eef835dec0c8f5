"""A registered voting ensemble: registered, loaded for serving and scored like any model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
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
