"""The one exception tree of looml.

```
LoomlError                 code="looml"       anything looml raises on purpose
├── SpecError              code="spec"        looml.yaml is unreadable or invalid
├── DataError              code="data"        the data cannot be read or fails validation
├── GateError              code="gate"        the model did not pass the evaluation gate
├── RegistryError          code="registry"    tracking / registry refused a change
├── ServeError             code="serve"       the server cannot start (a busy port)
└── RequestError           code="request"     a served request is malformed or fails its schema
```

Every error carries a list of `Problem`s, so that all problems are reported at once,
in pydantic's shape: a count, then for each its location, message, value and fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BusyError",
    "DataError",
    "GateError",
    "LoomlError",
    "Problem",
    "RegistryError",
    "RequestError",
    "SpecError",
    "StorageError",
    "did_you_mean",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where it is, what is wrong, the offending value and the fix."""

    loc: str
    message: str
    value: Any = None
    fix: str = ""
    line: int | None = None

    def render(self) -> str:
        """One readable line (plus a fix line) for a terminal."""
        where = f"{self.loc} (line {self.line})" if self.line else self.loc
        text = f"{where}: {self.message}" if where else self.message
        if self.value is not None:
            # Parentheses, not brackets: rich (the CLI's console) reads "[got ...]" as markup.
            text += f" (got {self.value!r})"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form for `--json` output."""
        value = self.value if isinstance(self.value, str | int | float | bool | None) else repr(
            self.value
        )
        return {"loc": self.loc, "line": self.line, "msg": self.message, "value": value,
                "fix": self.fix}


class LoomlError(Exception):
    """Base class: a user-facing error with a stable `code` and one or more problems."""

    code = "looml"
    title = "looml failed"

    def __init__(self, problems: Problem | Sequence[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(loc="", message=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        """The full message: a count, then one block per problem."""
        n = len(self.problems)
        head = f"{self.title}: {n} problem{'s' if n != 1 else ''}"
        return "\n".join([head, *(f"  - {p.render()}" for p in self.problems)])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form for `--json` output."""
        return {"error": self.code, "count": len(self.problems),
                "problems": [p.to_dict() for p in self.problems]}


class SpecError(LoomlError):
    """looml.yaml is missing, is not valid YAML, or does not match the spec schema."""

    code = "spec"
    title = "invalid spec"


class DataError(LoomlError):
    """The data cannot be read, or fails validation against the spec."""

    code = "data"
    title = "invalid data"


class GateError(LoomlError):
    """The evaluated model did not reach the thresholds of `evaluation.gate`."""

    code = "gate"
    title = "evaluation gate failed"


class RegistryError(LoomlError):
    """The tracking server or model registry refused a change."""

    code = "registry"
    title = "registry error"


class StorageError(LoomlError):
    """looml could not write its own files: a full disk, a file-size limit, a read-only folder.
    What was being written is not kept half-written; a re-run resumes from the cached stages."""

    code = "storage"
    title = "cannot write"


class BusyError(LoomlError):
    """Another looml process is changing the project (`store.lock`): nothing was changed."""

    code = "busy"
    title = "project busy"


class ServeError(LoomlError):
    """The server cannot start: the address or port cannot be bound."""

    code = "serve"
    title = "cannot serve"


class RequestError(LoomlError):
    """A request to the server is malformed, too large, or fails the model's input schema.

    `status` is the HTTP status to answer with (400 malformed, 413 too large, 415 media type,
    422 schema, 404 unknown model, 401 unauthorized).
    """

    code = "request"
    title = "invalid request"

    def __init__(self, problems: Problem | Sequence[Problem] | str, status: int = 400) -> None:
        self.status = status
        super().__init__(problems)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A 'did you mean ...?' hint for a misspelt name, or '' when nothing is close."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"did you mean {close[0]!r}?" if close else ""
