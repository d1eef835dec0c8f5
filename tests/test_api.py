"""The public API: a few names, pinned, each importable and documented."""

from __future__ import annotations

import importlib
import inspect
from importlib import metadata

import pytest

import looml
from looml import errors


def test_exported_members() -> None:
    assert looml.__all__ == [
        "DataCheck",
        "DataError",
        "GateError",
        "LoomlError",
        "RegistryError",
        "RunResult",
        "Spec",
        "SpecError",
        "__version__",
        "check",
        "load_spec",
        "monitor",
        "run",
    ]


@pytest.mark.parametrize("name", looml.__all__)
def test_every_exported_name_is_importable(name: str) -> None:
    module = importlib.import_module("looml")

    member = getattr(module, name)

    assert member is not None
    if name != "__version__":
        assert inspect.getdoc(member), f"looml.{name} has no docstring"


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from looml import *", namespace)  # the star import is what is tested

    assert sorted(k for k in namespace if k != "__builtins__") == sorted(looml.__all__)


def test_version_matches_the_installed_distribution() -> None:
    assert looml.__version__ == metadata.version("looml")


def test_exception_tree_and_codes_are_stable() -> None:
    codes = {cls.__name__: cls.code for cls in (errors.LoomlError, errors.SpecError,
                                                  errors.DataError, errors.GateError,
                                                  errors.RegistryError)}

    assert codes == {"LoomlError": "looml", "SpecError": "spec", "DataError": "data",
                     "GateError": "gate", "RegistryError": "registry"}
    for cls in (errors.SpecError, errors.DataError, errors.GateError, errors.RegistryError):
        assert cls.__bases__ == (errors.LoomlError,)
    assert errors.LoomlError.__bases__ == (Exception,)


def test_an_error_renders_a_count_then_each_problem() -> None:
    exc = errors.DataError([
        errors.Problem(loc="data.target", message="no such column", value="lable",
                       fix="did you mean 'label'?"),
        errors.Problem(loc="split.folds", message="too many folds", line=4),
    ])

    assert str(exc) == ("invalid data: 2 problems\n"
                        "  - data.target: no such column (got 'lable')\n"
                        "    fix: did you mean 'label'?\n"
                        "  - split.folds (line 4): too many folds")
    assert exc.to_dict() == {"error": "data", "count": 2, "problems": [
        {"loc": "data.target", "line": None, "msg": "no such column", "value": "lable",
         "fix": "did you mean 'label'?"},
        {"loc": "split.folds", "line": 4, "msg": "too many folds", "value": None, "fix": ""},
    ]}
    assert str(errors.SpecError("plain text")) == "invalid spec: 1 problem\n  - plain text"


def test_did_you_mean() -> None:
    assert errors.did_you_mean("traget", ["source", "target"]) == "did you mean 'target'?"
    assert errors.did_you_mean("LABEL", ["x", "label"]) == "did you mean 'label'?"
    assert errors.did_you_mean("zzz", ["source", "target"]) == ""
