"""Loading a registered model without trusting its files: the skops format only, and only the
types a looml pipeline is made of.

MLflow's `mlflow.sklearn.load_model` takes the serialization format and skops' trusted types from
the model's own MLmodel file, so an artifact edited in the artifact store (a pickle put in its
place, `builtins.eval` added to its types) would run code when the server loads it. looml reads
the skops file itself, asks skops which types it holds, and refuses the model if any lies outside
the libraries a pipeline is built from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from looml.errors import Problem, RegistryError

__all__ = ["TRUST_ENV", "load_skops_model"]

# The packages of the user's own estimators (`estimator: 'their_pkg.models:Model'`) are trusted
# when the machine that loads the model says so, never because the model's files say so.
TRUST_ENV = "LOOML_TRUSTED_PACKAGES"
# Modules whose functions run programs or code: no setting trusts them.
_NEVER_TRUSTED = frozenset({"builtins", "os", "posix", "nt", "subprocess", "sys", "shutil", "importlib",
                            "runpy", "pickle", "marshal", "ctypes", "socket", "code", "pty", "io"})

# What a looml pipeline is made of. MLflow's own loader trusts whatever types (and format: pickle
# included) the model's MLmodel file lists, so an edited artifact could run any code on load;
# looml reads the skops file itself and unpickles only these.
_TRUSTED_ROOTS = ("sklearn.", "numpy.", "scipy.", "pandas.", "lightgbm.", "xgboost.", "catboost.", "looml.")
_TRUSTED_BUILTINS = frozenset(f"builtins.{t}" for t in (
    "dict", "list", "tuple", "set", "frozenset", "slice", "int", "float", "complex", "str", "bytes", "bool",
    "bytearray", "range", "NoneType", "type", "object")) | {"collections.OrderedDict",
                                                           "collections.defaultdict"}


def load_skops_model(folder: Path, what: str) -> Any:
    """The fitted pipeline in an MLflow sklearn model folder, read by skops with only looml's types
    trusted; a `RegistryError` for a pickle, or for any other type the file carries."""
    import yaml
    from skops.io import get_untrusted_types, load

    try:
        flavor = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))["flavors"]["sklearn"]
        fmt, path = flavor.get("serialization_format"), folder / flavor["pickled_model"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise RegistryError(Problem(loc="registry.model_name", value=what,
                                    message=f"not a scikit-learn model folder: {exc}",
                                    fix="register the model with `looml run`")) from exc
    if fmt != "skops":
        raise RegistryError(Problem(loc="registry.model_name", value=what,
                                    message=f"the model is saved as {fmt!r}: looml loads only the skops "
                                            "format, which unpickles nothing it does not trust",
                                    fix="re-register it with `looml run` (it saves skops)"))
    try:
        found = get_untrusted_types(file=path)
        roots = _TRUSTED_ROOTS + _operator_roots()
        refused = sorted(t for t in found if not (t.startswith(roots) or t in _TRUSTED_BUILTINS))
        if refused:
            packages = sorted({t.split(".")[0] for t in refused})
            edited = "load only models registered by `looml run`; if this file was edited, re-register " \
                     "the model"
            raise RegistryError(Problem(
                loc="registry.model_name", value=what,
                message=f"the model file carries types looml does not trust: {', '.join(refused)}",
                fix=edited if set(packages) & _NEVER_TRUSTED else
                f"if these are your own estimators' classes, trust their package on this machine: "
                f"{TRUST_ENV}={','.join(packages)}; otherwise {edited}"))
        return load(path, trusted=found)
    except RegistryError:
        raise
    except Exception as exc:  # skops: a corrupt zip, a schema it cannot read
        raise RegistryError(Problem(loc="registry.model_name", value=what,
                                    message=f"cannot read the model file {path.name}: {exc}",
                                    fix="re-register the model with `looml run`")) from exc


def _operator_roots() -> tuple[str, ...]:
    names = (n.strip() for n in os.environ.get(TRUST_ENV, "").split(","))
    return tuple(f"{n}." for n in names if n and n not in _NEVER_TRUSTED)
