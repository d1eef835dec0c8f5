"""How well `learn.treecost` predicts what TreeSHAP costs, on corpus tables and looml's tree models.

For each table and tree family (looml's default params, `make_estimator`, one thread): the
pipeline is fitted on up to 20,000 rows through looml's default preprocessing, then SHAP values
of 20 rows are timed through `explainer_for(pipeline).explain` (the fastest of 2 calls) and set
beside `Explainer.seconds_per_row`, the estimate from the trees' structure that decides how many
rows and trees a model version's explanations use. A ratio (measured / estimated) near 1 keeps
the explanations stage near its 10 s; the stage itself is timed at the end, on the largest model.

Usage: .venv/bin/python bench/explain_cost.py [TABLE ...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get("LOOML_CORPUS", HERE.parents[1] / "shared" / "corpus"))
TABLES = {"crash_fatality": "dead", "storm_status": "status",
          "anchorage_inspection_score": "inspection_score"}
FAMILIES = ("random_forest", "extra_trees", "lightgbm", "xgboost", "hist_gradient_boosting")
ROWS, EXPLAINED, SEED = 20_000, 20, 42


def load(name: str, target: str) -> tuple[object, np.ndarray, dict[str, str], str]:
    """Up to 20,000 rows; numbers numeric, text of at most 50 values categorical, the rest left out."""
    frame = pl.read_parquet(CORPUS / f"{name}.parquet").drop_nulls(target)
    frame = frame.sample(n=min(ROWS, frame.height), seed=SEED)
    features = {}
    for column, dtype in frame.drop(target).schema.items():
        if dtype.is_numeric():
            features[column] = "numeric"
        elif dtype == pl.String and frame[column].n_unique() <= 50:
            features[column] = "categorical"
    numeric = frame[target].dtype.is_numeric() and frame[target].n_unique() > 20
    task = "regression" if numeric else "classification"
    y = frame[target].to_numpy()
    return (frame.select(list(features)).to_pandas(), y if task == "regression" else y.astype(str), features,
            task)


def main(tables: list[str]) -> None:
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    from looml.learn.explain import explainer_for
    from looml.learn.explanations import summarise_explanations
    from looml.learn.features import build_preprocessor
    from looml.learn.zoo import make_estimator
    from looml.spec import PreprocessingSpec

    warnings.simplefilter("ignore")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    print(f"commit {commit}; {os.cpu_count()} cores; {EXPLAINED} rows explained, one thread")
    print("| table | model | trees | estimated s/row | measured s/row | measured / estimated |")
    print("|---|---|---:|---:|---:|---:|")
    largest: tuple[float, object, object, dict[str, str]] | None = None
    for name in tables:
        X, y, features, task = load(name, TABLES[name])
        for family in FAMILIES:
            pre = build_preprocessor(features, PreprocessingSpec(), task=task, seed=SEED)
            pipeline = Pipeline([*pre.steps, ("model", make_estimator(family, task, {}, SEED, 2))]).fit(X, y)
            explainer = explainer_for(pipeline)
            rows = X.iloc[:EXPLAINED]
            with threadpool_limits(limits=1):
                took = []
                for _ in range(2):
                    began = time.perf_counter()
                    explainer.explain(rows)
                    took.append((time.perf_counter() - began) / EXPLAINED)
            model = pipeline.steps[-1][1]
            trees = len(getattr(model, "estimators_", [])) or getattr(model, "n_estimators", "")
            measured, estimated = min(took), explainer.seconds_per_row
            print(f"| {name} | {family} | {trees} | {estimated:.2g} | {measured:.2g} | "
                  f"{measured / estimated:.2f} |", flush=True)
            if largest is None or estimated > largest[0]:
                largest = (estimated, pipeline, X, features)
    assert largest is not None
    _, pipeline, X, features = largest
    began = time.perf_counter()
    with threadpool_limits(limits=1, user_api="openmp"):
        logged = summarise_explanations(pipeline, X.iloc[:4000], features, {}, SEED)
    print(f"\nexplanations of the costliest model ({type(pipeline.steps[-1][1]).__name__}, "
          f"{largest[0]:.2g} s a row for all its trees) on 4,000 holdout rows: "
          f"{time.perf_counter() - began:.1f} s; {logged.get('note', 'every row and tree')}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(TABLES))
