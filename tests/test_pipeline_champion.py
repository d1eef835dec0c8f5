"""`looml run` against the champion: the paired comparison on the holdout, and `registry.promote`.

Real runs on a real MLflow store; the tables are made so that one spec is clearly better than the
other (a column that decides the label, dropped or not), or neither.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import looml
from looml.cli import app
from looml.monitor.moves import history, promote, rollback
from looml.pipeline.compare import LINEAGE_ARTIFACT
from looml.store.versions import champion_version, model_documents


def table(rows: int, seed: int) -> pl.DataFrame:
    """`signal` decides the label (with 10% of labels flipped); `noise` says nothing about it."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=rows)
    label = (signal > 0) ^ (rng.random(rows) < 0.1)
    return pl.DataFrame({"signal": signal, "noise": rng.normal(size=rows),
                         "label": np.where(label, "yes", "no")})


def test_a_better_model_on_the_same_holdout_is_promoted_under_if_better(
        make_project: Callable[..., Path]) -> None:
    spec = make_project(table(800, 1), data_yaml="  drop_columns: [signal]\n",
                        extra="split: {folds: 2}\n")
    first = looml.run(spec)
    assert (first.champion, first.comparison) == (True, {})  # nothing to compare with
    lineage = json.loads(model_documents(first.tracking_uri, "tiny", "1", paths=(LINEAGE_ARTIFACT,))[1]
                         [LINEAGE_ARTIFACT])
    assert lineage["snapshot"] == first.data_digest and lineage["split"] == first.artifacts["split"]

    text = spec.read_text(encoding="utf-8").replace("  drop_columns: [signal]\n", "")
    spec.write_text(text.replace("model_name: tiny\n", "model_name: tiny\n  promote: if_better\n"),
                    encoding="utf-8")
    second = looml.run(spec)
    compared = second.comparison
    assert compared["status"] == "compared" and compared["champion"] == "1"
    assert compared["basis"].startswith("the same holdout")
    assert compared["rows"] == 160  # the whole holdout: 20% of 800
    assert compared["challenger_value"] == pytest.approx(second.metrics["roc_auc"])
    assert compared["champion_value"] == pytest.approx(first.metrics["roc_auc"])
    assert compared["improvement"] > 0.2 and compared["lower_bound"] > 0 and compared["significant"]
    low, high = compared["interval"]
    assert low <= compared["improvement"] <= high
    assert compared["promoted"] and second.champion
    assert champion_version(second.tracking_uri, "tiny") == second.model_version == "2"
    promoted = history(spec)[-1]
    assert (promoted.action, promoted.by, promoted.champion_before, promoted.champion_after) == \
        ("promote", "looml run", "1", "2")
    assert "better than v1" in promoted.reason
    # The same run again: the champion is this very model; it keeps the comparison it was
    # registered with, and no new version is made.
    again = looml.run(spec)
    assert (again.model_version, again.champion) == ("2", True)
    assert again.comparison["improvement"] == compared["improvement"] and again.comparison["promoted"]
    assert {s.name: s.status for s in again.stages}["register"] == "cached"
    # A promotion by the run is undone like any other.
    assert rollback(spec).champion_after == "1"

    import mlflow

    metrics = mlflow.MlflowClient(second.tracking_uri).get_run(second.run_id).data.metrics
    assert metrics["vs_champion_improvement"] == pytest.approx(compared["improvement"])
    assert metrics["champion_test_roc_auc"] == pytest.approx(compared["champion_value"])
    report = second.report_path.read_text(encoding="utf-8")
    assert "Against the champion (v1)" in report and "better than v1" in report


def test_a_model_not_shown_better_leaves_the_champion_and_says_why(make_project: Callable[..., Path]) -> None:
    spec = make_project(table(800, 2), extra="split: {folds: 2}\n")
    looml.run(spec)
    spec.write_text(spec.read_text(encoding="utf-8")
                    .replace("  target: label\n", "  target: label\n  drop_columns: [signal]\n")
                    .replace("model_name: tiny\n", "model_name: tiny\n  promote: if_better\n"),
                    encoding="utf-8")
    worse = looml.run(spec)
    assert worse.comparison["status"] == "compared" and worse.comparison["improvement"] < 0
    assert not worse.comparison["promoted"] and not worse.champion
    assert "not shown better" in worse.comparison["promotion"]
    assert champion_version(worse.tracking_uri, "tiny") == "1"
    assert [d.action for d in history(spec)] == []  # nothing was decided about the alias


def test_auto_compares_and_keeps_the_alias_and_never_takes_even_a_free_one(
        make_project: Callable[..., Path]) -> None:
    spec = make_project(table(600, 3), extra="split: {folds: 2}\n")
    text = spec.read_text(encoding="utf-8")
    spec.write_text(text.replace("model_name: tiny\n", "model_name: tiny\n  promote: never\n"),
                    encoding="utf-8")
    first = looml.run(spec)
    assert not first.champion and champion_version(first.tracking_uri, "tiny") is None

    spec.write_text(text.replace("seed: 3\n", "seed: 4\n"), encoding="utf-8")  # auto, the default
    second = looml.run(spec)
    assert second.champion and second.comparison == {}  # no champion to compare with: it takes the alias
    spec.write_text(text.replace("seed: 3\n", "seed: 5\n"), encoding="utf-8")
    third = looml.run(spec)
    # Another seed splits the same snapshot otherwise: v2 (refit on every row) saw the whole holdout.
    assert third.comparison["status"] == "not compared"
    assert "0 of the 120 holdout rows are new to v2" in third.comparison["reason"]
    assert not third.champion
    assert third.comparison["promotion"] == "v2 stays champion: registry.promote is 'auto'"
    # The champion moves by hand; the same run again is a re-run: the comparison it made, the
    # same version, and nothing done on a comparison with a champion that is gone.
    promote(spec, "1")
    again = looml.run(spec)
    assert again.model_version == "3" and {s.name: s.status for s in again.stages}["register"] == "cached"
    assert again.comparison["champion"] == "2"
    assert "the champion is now v1, not v2" in again.comparison["promotion"]


def test_new_rows_compare_the_registered_champion_on_the_rows_it_never_saw(
        make_project: Callable[..., Path]) -> None:
    old = table(600, 4)
    spec = make_project(old, extra="split: {folds: 2}\n")
    first = looml.run(spec)
    grown = pl.concat([old, table(1400, 5)])
    grown.write_csv(spec.parent / "data.csv")
    spec.write_text(spec.read_text(encoding="utf-8").replace(
        "model_name: tiny\n", "model_name: tiny\n  promote: if_better\n"), encoding="utf-8")
    second = looml.run(spec)
    compared = second.comparison
    assert second.data_digest != first.data_digest and compared["status"] == "compared"
    test_rows = 400  # 20% of 2,000
    assert compared["basis"] == f"the {compared['rows']} holdout rows new to v1"
    assert 200 < compared["rows"] < test_rows  # about 70% of the holdout is new
    # The same model on more data of the same kind is not shown better: v1 stays.
    assert not compared["promoted"] and champion_version(second.tracking_uri, "tiny") == "1"

    result = CliRunner().invoke(app, ["run", str(spec)])
    assert result.exit_code == 0, result.output
    assert "against v1  roc_auc" in result.output and "holdout rows new to v1" in result.output
    assert "v1 stays champion: this model is not shown better" in result.output


def test_a_lineage_that_names_paths_instead_of_digests_is_not_followed(tmp_path: Path) -> None:
    # The lineage comes from the registry, which others may write: "../" must not leave the store.
    from looml.pipeline.compare import _digests

    good = {"snapshot": "a" * 64, "split": "b" * 64, "evaluated_pipeline": "c" * 64}
    assert _digests(json.dumps(good)) == good
    for bad in ({**good, "snapshot": "../../../etc/passwd"}, {**good, "evaluated_pipeline": "C" * 64},
                {"snapshot": "a" * 64}, ["a" * 64], {**good, "split": 3}):
        assert _digests(json.dumps(bad)) is None, bad
    assert _digests("{not json") is None
