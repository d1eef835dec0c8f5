"""looml.run with split.by on small real tables: the holdout is the latest period (or whole
groups), the positive class and sample weights reach the metrics, and a re-run is cached."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import looml
from looml.store.artifacts import ArtifactStore

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus"))


def project(folder: Path, frame: pl.DataFrame, data: str, split: str, extra: str = "") -> Path:
    frame.write_parquet(folder / "data.parquet")
    spec = folder / "looml.yaml"
    spec.write_text(f"seed: 5\ndata: {{source: data.parquet, {data}}}\nsplit: {split}\n"
                    "models: {candidates: [linear]}\ntuning: {trials: 2}\nregistry: {model_name: m}\n"
                    + extra,
                    encoding="utf-8")
    return spec


def indices(folder: Path, digest: str) -> tuple[np.ndarray, np.ndarray]:
    raw = np.load(io.BytesIO(ArtifactStore(folder / ".looml" / "artifacts").get_bytes(digest)))
    return raw[1:int(raw[0]) + 1], raw[int(raw[0]) + 1:]


def test_a_time_split_run_holds_out_the_latest_period(tmp_path: Path) -> None:
    frame = pl.read_parquet(CORPUS / "email_spam.parquet").sample(n=400, seed=0)
    spec = project(tmp_path, frame, "target: spam, positive_class: 0",
                   "{test_size: 0.25, folds: 3, by: {time: time}}")
    result = looml.run(spec)
    train, test = indices(tmp_path, result.artifacts["split"])
    assert frame["time"].gather(train).max() < frame["time"].gather(test).min()
    assert len(test) == 100 and result.search["folds"] == 3
    html = result.report_path.read_text(encoding="utf-8")
    assert "3-fold forward-chaining cross-validation; the holdout is the latest period by time" in html
    # positive class 0 (not spam, 91% of rows): its average precision is near 1, spam's far lower
    assert result.metrics["average_precision"] > 0.85
    again = looml.run(spec)
    assert {s.name: s.status for s in again.stages}["train"] == "cached"


def test_a_grouped_weighted_regression_run_ranked_by_a_custom_metric(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rating_metrics.py").write_text(
        "import numpy as np\n\n"
        "def off_by_two(y_true, y_pred, sample_weight=None):\n"
        "    return float(np.average(np.abs(y_true - y_pred) >= 2, weights=sample_weight))\n\n"
        "off_by_two.greater_is_better = False\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    frame = pl.read_parquet(CORPUS / "ethz_course_rating.parquet").sample(n=400, seed=1).with_columns(
        (pl.col("studage") / 2).alias("w"))
    spec = project(tmp_path, frame, "target: y, task: regression, sample_weight: w, id_columns: [s]",
                   "{folds: 3, by: {group: d}}",
                   "evaluation: {primary_metric: 'rating_metrics:off_by_two',\n"
                   "             gate: {max: {off_by_two: 0.9}}}\n")
    result = looml.run(spec)
    assert result.primary_metric == "off_by_two" and 0 <= result.metrics["off_by_two"] <= 1
    scores = [r["mean"]["off_by_two"] for r in result.leaderboard if r["state"] == "complete"]
    assert scores == sorted(scores)  # lower is better, as the function says
    train, test = indices(tmp_path, result.artifacts["split"])
    lecturers = frame["d"].to_numpy()
    assert set(lecturers[train]).isdisjoint(lecturers[test])
    assert {"rmse", "mae", "r2", "mape", "rmsle"} <= set(result.metrics)
    assert "by whole groups of d, as is the holdout" in result.report_path.read_text(encoding="utf-8")
    checked = looml.check(spec).report
    assert "w" not in checked.features and "data.sample_weight" in checked.dropped["w"]
