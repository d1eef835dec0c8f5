"""Split: a deterministic, seeded train / holdout split of the rows that have a target, and the CV
folds of the training split.

Three ways, by `split.by`:

- random (the default): shuffled, stratified for classification; CV folds likewise.
- time (`{time: COLUMN}`): the holdout is the latest `test_size` share of rows by the column,
  and the CV folds chain forward: fold i trains on the first i blocks in time and scores the
  next. Rows with the same time are always on one side of a cut, so a cut never splits a day.
- group (`{group: COLUMN}`): every row of a group is on one side, in the holdout and in each
  fold; the holdout keeps every class on both sides (drawn again until it does), the folds are
  `StratifiedGroupKFold` for classification and `GroupKFold` otherwise. A row without a group
  is a group of its own.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold, train_test_split

from looml.errors import DataError, Problem

__all__ = ["cv_folds", "split", "split_keys"]

_GROUP_DRAWS = 200  # holdout draws tried for one that keeps every class on both sides


def split_keys(column: pl.Series, kind: str) -> np.ndarray:
    """What a time or group split reads from its column: for time, each row's moment as a float
    (NaN where missing); for group, an integer group code (a row without a group has its own)."""
    if kind == "time":
        values = column.to_physical() if column.dtype.is_temporal() else column
        return values.cast(pl.Float64).fill_nan(None).to_numpy().astype(float)
    present = column.is_not_null().to_numpy()
    codes = np.empty(len(column), dtype=np.int64)
    _, inverse = np.unique(column.cast(pl.String).drop_nulls().to_numpy(), return_inverse=True)
    codes[present] = inverse
    missing = int((~present).sum())
    codes[~present] = (inverse.max() + 1 if len(inverse) else 0) + np.arange(missing)
    return codes


def split(target: pl.Series, task: str, test_size: float, seed: int, kind: str | None = None,
          keys: np.ndarray | None = None, column: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Row indexes of the training and holdout splits.

    Rows whose target is null are in neither split, nor, in a time split, rows without a time.
    `kind` is None (random, stratified for classification), 'time' or 'group', with `keys` from
    `split_keys` and `column` its name (for messages). Raises `DataError` when the split cannot
    be made (one distinct time; a class found in one group only).
    """
    present = target.is_not_null().to_numpy()
    if kind == "time":
        assert keys is not None
        present &= ~np.isnan(keys)
    rows = np.flatnonzero(present)
    labels = target.gather(rows).to_numpy()
    if kind == "time":
        assert keys is not None
        train, test = _latest(rows, keys[rows], test_size, column)
        if task == "classification":
            _classes_on_both_sides(target, train, test, column)
    elif kind == "group":
        assert keys is not None
        train, test = _by_group(rows, keys[rows], labels if task == "classification" else None,
                                test_size, seed, column)
    else:
        stratify = labels if task == "classification" else None
        train, test = train_test_split(rows, test_size=test_size, random_state=seed, shuffle=True,
                                       stratify=stratify)
    return np.sort(train), np.sort(test)


def _classes_on_both_sides(target: pl.Series, train: np.ndarray, test: np.ndarray, column: str) -> None:
    """A binary time split needs both classes in the latest period (its metrics are undefined
    otherwise), and every class needs training rows."""
    seen, held = set(target.gather(train).to_list()), set(target.gather(test).to_list())
    every = seen | held
    missing = sorted(map(str, every - seen))
    if missing:
        raise DataError(Problem(loc="split.by.time", value=column,
                                message=f"class(es) {', '.join(missing[:10])} occur only in the latest "
                                        f"period by {column!r}: the model would never learn them",
                                fix="drop those rows, lower split.test_size, or remove split.by"))
    if len(every) == 2 and len(held) < 2:
        raise DataError(Problem(loc="split.by.time", value=column,
                                message=f"the latest period by {column!r} has only class "
                                        f"{next(iter(held))!r}: its ROC AUC and recall are undefined",
                                fix="raise split.test_size, or remove split.by"))


def cv_folds(y: np.ndarray, task: str, folds: int, seed: int, kind: str | None = None,
             keys: np.ndarray | None = None, column: str = "") -> list[tuple[np.ndarray, np.ndarray]]:
    """The CV folds of the training rows (positions into `y`), the same for every trial.

    random: (stratified) shuffled k-fold; time: `folds` forward-chaining blocks (for
    classification, less the first folds whose past has one class only); group: grouped k-fold,
    stratified for classification.
    """
    if kind == "time":
        assert keys is not None
        chained = _forward(keys, folds, column)
        if task == "classification":
            # A model cannot be fitted on one class: the earliest folds may have too short a past.
            chained = [(train, test) for train, test in chained if len(np.unique(y[train])) > 1]
            if len(chained) < 2:
                raise DataError(Problem(loc="split.by.time", value=column,
                                        message="too few forward-chaining folds have more than one class "
                                                f"in their past (the earliest rows by {column!r} are all one "
                                                "class)", fix="lower split.folds, or add earlier rows"))
        return chained
    if kind == "group":
        assert keys is not None
        n_groups = len(np.unique(keys))
        if n_groups < folds:
            raise DataError(Problem(loc="split.folds", value=folds,
                                    message=f"the training split has {n_groups} groups of {column!r}, "
                                            f"fewer than the {folds} folds",
                                    fix=f"set split.folds to {max(2, n_groups)} or fewer"))
        grouped: StratifiedGroupKFold | GroupKFold = (
            StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed) if task == "classification"
            else GroupKFold(n_splits=folds, shuffle=True, random_state=seed))
        return [(train, test) for train, test in grouped.split(np.zeros(len(y)), y, groups=keys)]
    splitter = (StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
                if task == "classification" else KFold(n_splits=folds, shuffle=True, random_state=seed))
    return [(train, test) for train, test in splitter.split(np.zeros(len(y)), y)]


def _cuts(sorted_keys: np.ndarray, wanted: list[float]) -> list[int]:
    """Positions in `sorted_keys` nearest each wanted position where the value changes (a cut
    there keeps equal values on one side); increasing, without repeats, inside (0, n)."""
    changes = np.flatnonzero(np.diff(sorted_keys) != 0) + 1
    cuts: list[int] = []
    for want in wanted:
        if not len(changes):
            break
        cut = int(changes[np.argmin(np.abs(changes - want))])
        if not cuts or cut > cuts[-1]:
            cuts.append(cut)
    return cuts


def _latest(rows: np.ndarray, keys: np.ndarray, test_size: float,
            column: str) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    n = len(rows)
    cuts = _cuts(keys[order], [n - math.ceil(n * test_size)])
    if not cuts:
        raise DataError(Problem(loc="split.by.time", value=column,
                                message=f"{column!r} has one distinct value in the rows with a target: "
                                        "there is no later period to hold out",
                                fix="split by a column that orders the rows, or remove split.by"))
    return rows[order[:cuts[0]]], rows[order[cuts[0]:]]


def _forward(keys: np.ndarray, folds: int, column: str) -> list[tuple[np.ndarray, np.ndarray]]:
    order = np.argsort(keys, kind="stable")
    n = len(keys)
    cuts = _cuts(keys[order], [n * i / (folds + 1) for i in range(1, folds + 1)])
    if len(cuts) < 2:
        raise DataError(Problem(loc="split.by.time", value=column,
                                message=f"the training split has too few distinct values of {column!r} "
                                        f"for forward-chaining folds ({len(cuts) + 1} blocks)",
                                fix="split by a finer time column, or lower split.folds"))
    edges = [0, *cuts, n]
    return [(np.sort(order[:edges[i]]), np.sort(order[edges[i]:edges[i + 1]]))
            for i in range(1, len(edges) - 1)]


def _by_group(rows: np.ndarray, groups: np.ndarray, labels: np.ndarray | None, test_size: float,
              seed: int, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Whole groups drawn at random into the holdout until it holds `test_size` of the rows; for
    classification, drawn again until both sides have every class."""
    unique, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if len(unique) < 2:
        raise DataError(Problem(loc="split.by.group", value=column,
                                message=f"{column!r} has one group in the rows with a target",
                                fix="split by a column with several groups, or remove split.by"))
    wanted = math.ceil(len(rows) * test_size)
    classes = np.unique(labels) if labels is not None else None
    if classes is not None:
        spread = {c: len(np.unique(groups[labels == c])) for c in classes}
        single = [str(c) for c, n in spread.items() if n < 2]
        if single:
            raise DataError(Problem(loc="split.by.group", value=column,
                                    message=f"class(es) {', '.join(single[:10])} occur in one group of "
                                            f"{column!r} only, so they cannot be on both sides of a grouped "
                                            "split",
                                    fix="merge or drop those classes, or split by another column"))
    rng = np.random.default_rng(seed)
    for _ in range(_GROUP_DRAWS):
        shuffled = rng.permutation(len(unique))
        taken = np.cumsum(counts[shuffled])
        last = int(np.searchsorted(taken, wanted))  # the draw's groups up to this one
        chosen = np.zeros(len(unique), dtype=bool)
        chosen[shuffled[:min(last + 1, len(unique) - 1)]] = True
        in_test = chosen[inverse]
        if classes is None or (len(np.unique(labels[in_test])) == len(classes)
                               and len(np.unique(labels[~in_test])) == len(classes)):
            return rows[~in_test], rows[in_test]
    raise DataError(Problem(loc="split.by.group", value=column,
                            message=f"no draw of whole groups of {column!r} in {_GROUP_DRAWS} tries put "
                                    "every class on both sides of the holdout",
                            fix="raise split.test_size, or split by a column with more groups"))
