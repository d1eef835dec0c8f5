"""Split: a deterministic, seeded train / holdout split of the rows that have a target."""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.model_selection import train_test_split

__all__ = ["split"]


def split(target: pl.Series, task: str, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indexes of the training and holdout splits, stratified for classification.

    Rows whose target is null are in neither split.
    """
    rows = np.flatnonzero(target.is_not_null().to_numpy())
    stratify = target.gather(rows).to_numpy() if task == "classification" else None
    train, test = train_test_split(rows, test_size=test_size, random_state=seed, shuffle=True,
                                   stratify=stratify)
    return np.sort(train), np.sort(test)
