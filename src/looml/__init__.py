"""looml: an end-to-end, declarative, cached and reproducible ML pipeline for tabular data.

    >>> import looml
    >>> result = looml.run("looml.yaml")
    >>> result.metrics, result.model_uri
"""

__version__ = "0.1.0"

from looml.errors import DataError, GateError, LoomlError, RegistryError, SpecError
from looml.pipeline import DataCheck, RunResult, check, run
from looml.spec import Spec, load_spec

__all__ = [
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
    "run",
]
