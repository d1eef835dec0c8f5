"""The MLflow pyfunc face of a registered model: labels by default, probabilities on request.

    mlflow.pyfunc.load_model(uri).predict(rows)                                      labels
    mlflow.pyfunc.load_model(uri).predict(rows, params={"predict_method": "predict_proba"})
                                                   a DataFrame, one column per class, named by it

The model is saved by MLflow's sklearn flavor (so `mlflow.sklearn.load_model` still returns
the pipeline, saved as skops), and its `python_function` flavor names this module as its
loader, because the sklearn flavor's pyfunc ignores `params`. A classifier's signature
declares the parameter (`ParamSchema`, default "predict"), so `mlflow models serve` passes an
`/invocations` body's `"params": {"predict_method": "predict_proba"}` through as well.
`Model.log(name, flavor=looml.store.pyfunc, ...)` calls `save_model` here.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["METHODS", "PREDICT_METHOD", "check_serving_example", "param_schema", "save_model"]

PREDICT_METHOD = "predict_method"
METHODS = ("predict", "predict_proba")


def param_schema() -> Any:
    """The params a classifier's signature declares: `predict_method`, "predict" by default."""
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ParamSchema([ParamSpec(PREDICT_METHOD, "string", METHODS[0])])


def check_serving_example(pipeline: Any, signature: Any, example: pd.DataFrame) -> None:
    """What MLflow's check of a logged model's input example does, on the fitted pipeline in memory:
    the example as a scoring server receives it (its `dataframe_split` JSON, read against the
    signature), predicted through this pyfunc. Raises what the signature or the model raises.

    MLflow's own check (`Model.log(validate_serving_input=True)`) loads the saved model a second
    time to do this (2-3 s for a forest; the sklearn flavor's save has already read the skops
    file back with its trusted types), and only logs a warning when it fails."""
    from mlflow.models import Model
    from mlflow.models.utils import convert_input_example_to_serving_input
    from mlflow.pyfunc import PyFuncModel
    from mlflow.pyfunc.scoring_server import _parse_json_data

    meta = Model(signature=signature)
    parsed = _parse_json_data(convert_input_example_to_serving_input(example), meta, meta.get_input_schema())
    PyFuncModel(meta, _Pyfunc(pipeline)).predict(parsed.data, params=parsed.params)


def save_model(path: str, mlflow_model: Any, **kwargs: Any) -> None:
    """Save as the sklearn flavor does (`kwargs` are its, but `Model.log`'s `validate_serving_input`),
    with this module as the pyfunc loader."""
    import mlflow.sklearn
    from mlflow.models.model import MLMODEL_FILE_NAME

    kwargs.pop("validate_serving_input", None)
    mlflow.sklearn.save_model(path=path, mlflow_model=mlflow_model, **kwargs)
    mlflow_model.flavors["python_function"]["loader_module"] = __name__
    mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))


def _load_pyfunc(path: str) -> _Pyfunc:
    """Called by `mlflow.pyfunc.load_model`: the sklearn flavor's model, with params honoured,
    read as `looml.store.trusted` reads it (skops, looml's types only), not as MLflow would."""
    from pathlib import Path

    from looml.store.trusted import load_skops_model

    folder = Path(path) if Path(path).is_dir() else Path(path).parent  # the folder, or its model.skops
    return _Pyfunc(load_skops_model(folder, str(folder)))


class _Pyfunc:
    """What `PyFuncModel` wraps: `predict(data, params)` and `get_raw_model()`."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def get_raw_model(self) -> Any:
        """The fitted scikit-learn pipeline."""
        return self.pipeline

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Labels (or values), or with `predict_method: predict_proba` one column per class."""
        method = (params or {}).get(PREDICT_METHOD) or METHODS[0]
        classes = getattr(self.pipeline, "classes_", None)
        offered = METHODS if classes is not None else METHODS[:1]
        if method not in offered:
            from mlflow.exceptions import MlflowException

            from looml.errors import did_you_mean

            hint = did_you_mean(str(method), offered)
            what = "a classifier's" if classes is not None else "a regressor's (no probabilities)"
            raise MlflowException.invalid_parameter_value(
                f"params.{PREDICT_METHOD}: {method!r} is not one of {what} methods; "
                f"{hint + ' ' if hint else ''}use {' or '.join(map(repr, offered))}")
        if method == "predict":
            return self.pipeline.predict(data)
        proba = np.asarray(self.pipeline.predict_proba(data), dtype=np.float64)
        return pd.DataFrame(proba, columns=[_name(c) for c in classes], index=getattr(data, "index", None))


def _name(label: Any) -> str:
    """A class label as a column name, written as looml writes labels ("true", "1", "yes")."""
    from looml.store.predictions import label_text

    return label_text(label) or str(label)
