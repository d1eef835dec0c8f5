"""What a run logs as MLflow params: the spec's settings by dotted path, secrets redacted, values
cut to MLflow's limits."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "param_value", "settings_params"]

# A setting whose key names one of these holds a secret (an `..._env` key holds a variable's name).
_SECRET_KEY = re.compile(r"pass(word)?|pwd|secret|token|credential|api_?key|access_?key|auth|cookie|"
                         r"headers?|webhook", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/@\s:]*:)[^/@\s]*@", re.IGNORECASE)
_QUERY_SECRET = re.compile(r"(?P<key>[?&;](?:pass(?:word)?|pwd|secret|token|api_?key|access_?key|"
                           r"sig(?:nature)?|X-Amz-Credential|X-Amz-Signature)=)[^&;#\s]*", re.IGNORECASE)
REDACTED = "***"
_MAX_KEY = 250  # MLflow's limit on a param key (MAX_ENTITY_KEY_LENGTH)
_MAX_VALUE = 6000  # ... and on a param value (MAX_PARAM_VAL_LENGTH)


def settings_params(settings: Mapping[str, Any], prefix: str = "spec") -> dict[str, str]:
    """The spec's settings as MLflow params: one per scalar, under its dotted path
    (`spec.split.folds`, `spec.models.candidates.0.name`); a list of scalars as JSON text; None
    (unset) left out. A value under a key that names a secret (password, token, headers...) is
    `***`, a URL's password and secret query values too; values are cut to MLflow's limit."""
    out: dict[str, str] = {}

    def walk(value: Any, path: list[str]) -> None:
        key = ".".join(path)
        if isinstance(value, Mapping):
            for name, inner in value.items():
                walk(inner, [*path, str(name)])
            return
        if value is None or len(key) > _MAX_KEY:
            return
        if isinstance(value, list | tuple):
            if not all(isinstance(v, str | int | float | bool) for v in value):
                for i, inner in enumerate(value):  # candidates: spec.models.candidates.0.name ...
                    walk(inner, [*path, str(i)])
                return
            value = json.dumps(list(value))
        elif not isinstance(value, str | int | float | bool):
            return
        secret = any(_SECRET_KEY.search(p) and not p.endswith("_env") for p in path[1:])
        out[key] = REDACTED if secret else param_value(value)

    walk(settings, [prefix])
    return out


def param_value(value: Any) -> str:
    """A param value as MLflow stores it: text without URL passwords or secret query values, cut
    to MLflow's length limit."""
    text = str(value)
    if "://" in text:
        text = _QUERY_SECRET.sub(lambda m: m["key"] + REDACTED, _URL_PASSWORD.sub(
            lambda m: m["head"] + REDACTED + "@", text))
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE - 3] + "..."
