"""The holdout split and the CV folds: random, by time (the holdout is the latest period, folds
chain forward, ties never cut) and by group (no group on both sides), on corpus tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from looml.data.split import cv_folds, split, split_keys
from looml.errors import DataError

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"))


def corpus(name: str, rows: int, seed: int = 0) -> pl.DataFrame:
    frame = pl.read_parquet(CORPUS / f"{name}.parquet")
    return frame.sample(n=min(rows, frame.height), seed=seed)


def test_a_time_split_holds_out_only_later_rows_on_a_dated_table() -> None:
    frame = corpus("email_spam", 400)  # e-mails Jan-Mar 2012, a send timestamp
    keys = split_keys(frame["time"], "time")
    train, test = split(frame["spam"], "classification", 0.25, 0, "time", keys, "time")
    times = frame["time"]
    assert times.gather(train).max() < times.gather(test).min()
    assert len(test) == pytest.approx(100, abs=2) and len(train) + len(test) == 400
    folds = cv_folds(frame["spam"].gather(train).to_numpy(), "classification", 4, 0, "time", keys[train])
    assert len(folds) == 4
    train_times = times.gather(train)
    for i, (fit_rows, score_rows) in enumerate(folds):
        assert train_times.gather(fit_rows).max() < train_times.gather(score_rows).min()  # past -> next block
        if i:
            assert len(fit_rows) > len(folds[i - 1][0])  # forward-chaining: the past grows
    scored = np.concatenate([s for _, s in folds])
    assert len(scored) == len(np.unique(scored)) and len(scored) > 0.7 * len(train)


def test_rows_with_the_same_time_stay_on_one_side_of_every_cut() -> None:
    frame = corpus("dunn_run_time", 978)  # two race dates only: the cut falls between them
    keys = split_keys(frame["date"], "time")
    train, test = split(frame["run_time_minutes"], "regression", 0.2, 0, "time", keys, "date")
    assert set(keys[train]).isdisjoint(set(keys[test])) and len(np.unique(keys[test])) == 1
    ties = np.repeat(np.arange(10.0), 30)  # 10 periods of 30 rows
    folds = cv_folds(np.zeros(300), "regression", 4, 0, "time", ties)
    for fit_rows, score_rows in folds:
        assert set(ties[fit_rows]).isdisjoint(set(ties[score_rows]))
        assert ties[fit_rows].max() < ties[score_rows].min()


def test_a_numeric_time_column_and_missing_times() -> None:
    year = pl.Series("year", [2001, 2003, None, 2002, 2005, 2004, 2006, 2007, 2008, 2009])
    keys = split_keys(year, "time")
    train, test = split(pl.Series("y", np.arange(10.0)), "regression", 0.3, 0, "time", keys, "year")
    assert 2 not in train and 2 not in test  # no time: in neither split
    assert keys[train].max() < keys[test].min() and len(test) == 3


def test_one_distinct_time_has_no_later_period() -> None:
    keys = np.zeros(20)
    with pytest.raises(DataError, match=r"split.by.time.*'day' has one distinct value"):
        split(pl.Series("y", np.arange(20.0)), "regression", 0.2, 0, "time", keys, "day")


def test_a_group_split_keeps_each_group_on_one_side_and_every_class_on_both() -> None:
    frame = corpus("ethz_course_rating", 600)  # ratings by student `s` of lecturer `d`
    groups = split_keys(frame["d"], "group")
    y = frame["service"]
    train, test = split(y, "classification", 0.25, 3, "group", groups, "d")
    assert set(groups[train]).isdisjoint(groups[test])
    assert set(y.gather(train)) == set(y.gather(test)) == set(y)
    assert 0.15 < len(test) / len(frame) < 0.4
    folds = cv_folds(y.gather(train).to_numpy(), "classification", 4, 3, "group", groups[train])
    for fit_rows, score_rows in folds:
        assert set(groups[train][fit_rows]).isdisjoint(groups[train][score_rows])
    regression = cv_folds(frame["y"].gather(train).to_numpy().astype(float), "regression", 4, 3, "group",
                          groups[train])
    assert sorted(np.concatenate([s for _, s in regression]).tolist()) == list(range(len(train)))


def test_rows_without_a_group_are_groups_of_their_own() -> None:
    codes = split_keys(pl.Series("g", ["a", None, "b", "a", None]), "group")
    assert codes[0] == codes[3] and len({codes[1], codes[4], codes[0], codes[2]}) == 4


def test_a_class_in_one_group_only_cannot_be_on_both_sides() -> None:
    y = pl.Series("y", ["a"] * 10 + ["b"] * 10 + ["rare"] * 2)
    groups = np.array([i % 5 for i in range(20)] + [7, 7])
    with pytest.raises(DataError, match=r"class\(es\) rare occur in one group of 'shop' only"):
        split(y, "classification", 0.25, 0, "group", groups, "shop")


def test_too_few_groups_for_the_folds() -> None:
    with pytest.raises(DataError, match=r"the training split has 3 groups of 'shop', fewer than the 5 folds"):
        cv_folds(np.zeros(30), "regression", 5, 0, "group", np.arange(30) % 3, "shop")


def test_the_random_split_is_unchanged() -> None:
    y = pl.Series("y", ["a", "b"] * 50)
    _, test = split(y, "classification", 0.2, 0)
    assert len(test) == 20 and sorted(y.gather(test).value_counts()["count"].to_list()) == [10, 10]


def test_forward_folds_whose_past_has_one_class_are_left_out() -> None:
    y = np.array(["no"] * 40 + ["yes", "no"] * 30)  # the first 40 rows in time are all "no"
    folds = cv_folds(y, "classification", 4, 0, "time", np.arange(100.0))
    assert len(folds) == 2 and all(len(set(y[fit_rows])) == 2 for fit_rows, _ in folds)  # blocks of 20
    with pytest.raises(DataError, match=r"too few forward-chaining folds have more than one class"):
        cv_folds(np.array(["no"] * 90 + ["yes"] * 10), "classification", 3, 0, "time", np.arange(100.0), "t")


def test_a_binary_time_split_needs_both_classes_late_and_every_class_early() -> None:
    keys = np.arange(100.0)
    late_only = pl.Series("y", ["a", "b"] * 45 + ["c"] * 10)
    with pytest.raises(DataError, match=r"class\(es\) c occur only in the latest period by 'day'"):
        split(late_only, "classification", 0.1, 0, "time", keys, "day")
    with pytest.raises(DataError, match=r"the latest period by 'day' has only class 'no'"):
        split(pl.Series("y", ["yes", "no"] * 40 + ["no"] * 20), "classification", 0.2, 0, "time", keys, "day")
