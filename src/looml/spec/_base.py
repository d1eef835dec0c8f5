"""What every section of the spec shares: the strict, frozen `_Section` base, per-field errors
raised from validators, and the task, model and metric names the sections check against."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

Task = Literal["auto", "classification", "regression"]
ModelName = Literal["linear", "ridge", "lasso", "elastic_net", "knn", "svm", "decision_tree",
                    "random_forest", "extra_trees", "hist_gradient_boosting", "lightgbm", "xgboost",
                    "mlp", "catboost"]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
ALIASES = {"logistic": "linear"}
# Without `models.candidates`: a broad search. An optional extra's family (catboost) that is not
# installed is skipped, not an error, unless the spec lists it.
DEFAULT_CANDIDATES = ("lightgbm", "linear", "catboost", "xgboost", "mlp", "extra_trees", "random_forest",
                      "hist_gradient_boosting")

CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "log_loss", "average_precision")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape", "rmsle")
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape", "rmsle"})
_METRICS = {"classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS}


def _field_errors(title: str, errors: list[tuple[tuple, str, Any, str]]) -> None:
    """Raise one pydantic error per (loc, message, value, fix), each at its own location.

    Raised inside a validator, the locations are nested under the model's own, so every
    problem keeps its YAML path and line instead of pointing at the whole section.
    """
    if errors:
        raise ValidationError.from_exception_data(title, [
            InitErrorDetails(type=PydanticCustomError("looml", message, {"fix": fix}), loc=loc,
                             input=value)
            for loc, message, value, fix in errors
        ])


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
