"""Registered models are read by skops with only looml's types trusted (src/looml/store/trusted.py):
a model folder edited to carry another type, or put back as a pickle, is refused before anything
in it is unpickled."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from skops.io import dumps, get_untrusted_types

from looml.errors import RegistryError
from looml.store.trusted import load_skops_model

X, Y = np.arange(20.0).reshape(10, 2), np.array([0, 1] * 5)


def save(model: Pipeline, folder: Path, fmt: str = "skops") -> Path:
    trusted = get_untrusted_types(data=dumps(model)) if fmt == "skops" else None
    mlflow.sklearn.save_model(model, str(folder), serialization_format=fmt, skops_trusted_types=trusted,
                              pip_requirements=[])  # inferring them took 10 s a model
    return folder


def test_a_looml_made_pipeline_loads_and_predicts(tmp_path: Path) -> None:
    model = Pipeline([("scale", StandardScaler()), ("fit", LogisticRegression())]).fit(X, Y)

    loaded = load_skops_model(save(model, tmp_path / "m"), "tiny v1")

    assert (loaded.predict(X) == model.predict(X)).all()


def test_a_model_edited_to_carry_an_untrusted_type_is_refused(tmp_path: Path) -> None:
    # As an attacker with write access to the artifact store would: the file carries os.system,
    # and the MLmodel file's trusted list was edited to name it, which MLflow's loader would obey.
    model = Pipeline([("run", FunctionTransformer(os.system)), ("fit", LogisticRegression())])

    with pytest.raises(RegistryError, match=r"registry\.model_name: the model file carries types looml does "
                                            r"not trust: (posix|os)\.system .*\n.*fix: load only models "
                                            r"registered by `looml run`"):
        load_skops_model(save(model, tmp_path / "m"), "tiny v1")


def test_a_model_saved_as_a_pickle_is_refused(tmp_path: Path) -> None:
    model = Pipeline([("fit", LogisticRegression())]).fit(X, Y)

    with pytest.raises(RegistryError, match=r"the model is saved as 'cloudpickle': looml loads only the "
                                            r"skops format"):
        load_skops_model(save(model, tmp_path / "m", "cloudpickle"), "tiny v1")


def test_a_folder_without_a_model_is_a_registry_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"not a scikit-learn model folder"):
        load_skops_model(tmp_path, "tiny v1")


def test_mlflow_pyfunc_reads_looml_models_the_same_way(tmp_path: Path) -> None:
    # `mlflow.pyfunc.load_model` of a looml model goes through looml.store.pyfunc, so it too
    # refuses an edited file instead of trusting the MLmodel's list.
    from looml.store.pyfunc import _load_pyfunc

    model = Pipeline([("run", FunctionTransformer(os.system)), ("fit", LogisticRegression())])
    folder = save(model, tmp_path / "m")

    with pytest.raises(RegistryError, match=r"carries types looml does not trust: (posix|os)\.system"):
        _load_pyfunc(str(folder / "model.skops"))


def test_a_corrupt_model_file_is_a_registry_error(tmp_path: Path) -> None:
    folder = save(Pipeline([("fit", LogisticRegression())]).fit(X, Y), tmp_path / "m")
    (folder / "model.skops").write_bytes(b"PK\x03\x04 not a zip")

    with pytest.raises(RegistryError, match=r"cannot read the model file model\.skops: .*\n"
                                            r"    fix: re-register the model with `looml run`"):
        load_skops_model(folder, "tiny v1")


def test_a_users_own_estimator_loads_once_this_machine_trusts_its_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "src" / "their_models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "class Theirs(LogisticRegression):\n    pass\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    from their_models import Theirs  # type: ignore[import-not-found]

    folder = save(Pipeline([("fit", Theirs())]).fit(X, Y), tmp_path / "m")
    monkeypatch.delenv("LOOML_TRUSTED_PACKAGES", raising=False)
    with pytest.raises(RegistryError, match=r"carries types looml does not trust: their_models\.Theirs .*\n"
                                            r"    fix: if these are your own estimators' classes, trust "
                                            r"their package on this machine: "
                                            r"LOOML_TRUSTED_PACKAGES=their_models; otherwise load only"):
        load_skops_model(folder, "tiny v1")

    monkeypatch.setenv("LOOML_TRUSTED_PACKAGES", "their_models, os")  # os is never trusted
    assert (load_skops_model(folder, "tiny v1").predict(X) == Y).mean() > 0.5
    model = Pipeline([("run", FunctionTransformer(os.system)), ("fit", LogisticRegression())])
    with pytest.raises(RegistryError, match=r"does not trust: (posix|os)\.system"):
        load_skops_model(save(model, tmp_path / "bad"), "tiny v2")
