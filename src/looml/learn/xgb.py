"""XGBoost's classifier for any labels (XGBoost itself wants the classes 0..k-1)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import LabelEncoder
from xgboost import XGBClassifier

__all__ = ["XGBLabelClassifier"]


class XGBLabelClassifier(XGBClassifier):
    """`xgboost.XGBClassifier` fitted on encoded labels; predicts the original ones.

    Takes XGBClassifier's parameters. Learned state beyond XGBoost's: `label_encoder_`.
    """

    def fit(self, X: Any, y: Any, **kwargs: Any) -> XGBLabelClassifier:
        """Fit on the labels encoded as 0..k-1."""
        self.__dict__.pop("label_encoder_", None)  # XGBoost checks `classes_` against 0..k-1
        encoder = LabelEncoder().fit(y)
        super().fit(X, encoder.transform(y), **kwargs)
        self.label_encoder_ = encoder
        return self

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Predicted labels, in the original label values."""
        return self.label_encoder_.inverse_transform(np.asarray(super().predict(X, **kwargs), dtype=int))

    @property
    def classes_(self) -> np.ndarray:
        """The original labels once fitted (0..k-1 while XGBoost fits)."""
        encoder = self.__dict__.get("label_encoder_")
        return encoder.classes_ if encoder is not None else np.arange(self.n_classes_)
