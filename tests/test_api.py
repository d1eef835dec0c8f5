"""The public API: a few names, pinned, each importable and documented."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
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


# Where each exported name is defined: `looml.X` is that object itself, not a copy or a wrapper.
HOMES = {"DataCheck": "looml.pipeline", "DataError": "looml.errors", "GateError": "looml.errors",
         "LoomlError": "looml.errors", "RegistryError": "looml.errors", "RunResult": "looml.pipeline",
         "Spec": "looml.spec", "SpecError": "looml.errors", "check": "looml.pipeline",
         "load_spec": "looml.spec", "monitor": "looml", "run": "looml.pipeline"}

# The calls as README.md and docs/spec.md show them: the spec first, by position; every option
# by keyword only, with these defaults; the typed result.
SIGNATURES = {
    "run": "(spec, *, force=False, snapshot=None, on_start=None, on_finish=None) -> RunResult",
    "check": "(spec, *, snapshot=None, on_start=None, on_finish=None) -> DataCheck",
    "monitor": "(spec, *, data=None, last=None, rows=None, since=None, until=None, version=None, "
               "out_dir=None) -> MonitorResult",
    "load_spec": "(path) -> Spec",
}


def bare_signature(function: object) -> str:
    """The parameters, their kinds and defaults, and the return type's name, without annotations."""
    signature = inspect.signature(function)  # type: ignore[arg-type]
    parameters = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    text = str(signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty))
    return f"{text} -> {signature.return_annotation}"


@pytest.mark.parametrize("name", [n for n in looml.__all__ if n != "__version__"])
def test_every_exported_name_is_the_object_its_module_defines(name: str) -> None:
    member = getattr(importlib.import_module("looml"), name)

    assert (member.__module__, member.__qualname__) == (HOMES[name], name)
    assert getattr(importlib.import_module(HOMES[name]), name) is member
    assert inspect.getdoc(member), f"looml.{name} has no docstring"
    if inspect.isfunction(member):
        assert bare_signature(member) == SIGNATURES[name]


def test_the_exported_names_are_of_their_kinds() -> None:
    assert sorted(HOMES) == sorted(n for n in looml.__all__ if n != "__version__")
    assert sorted(n for n in HOMES if inspect.isfunction(getattr(looml, n))) == sorted(SIGNATURES)
    assert all(issubclass(getattr(looml, n), errors.LoomlError) for n in HOMES if n.endswith("Error"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", looml.__version__)
    # what README.md reads from a run's result, and from a check
    assert {"metrics", "leaderboard", "model_uri", "report_path", "run_id"} <= {
        f.name for f in dataclasses.fields(looml.RunResult)}
    assert [f.name for f in dataclasses.fields(looml.DataCheck)] == ["profile", "report", "data_digest",
                                                                     "stages"]


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
