"""Helpers shared by the wire formats of `looml.serve.protocols` and `looml.serve.mlflow_scoring`:
body size and JSON checks, records to a `Batch`, and problems that name rows."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from looml.errors import Problem, RequestError
from looml.serve.scoring import Batch

__all__ = ["SHOWN", "check_body_size", "kind_of", "load_json", "number_like", "parameters_of", "plain_list",
           "problems_json", "records_batch", "rows_problem"]

SHOWN = 5  # offending rows or values named in one message; the rest are counted

def check_body_size(n_bytes: int, limit: int) -> None:
    """Raise `RequestError` (413) when a body of `n_bytes` is over `limit` (serve.max_body_bytes)."""
    if n_bytes > limit:
        raise RequestError(Problem(loc="body", message=f"{n_bytes} bytes, more than the server's limit of "
                                   f"{limit}", fix="send the rows in smaller requests, or raise "
                                   "serve.max_body_bytes in looml.yaml"), status=413)


def records_batch(records: Any, loc: str) -> Batch:
    if not isinstance(records, list):
        raise RequestError(Problem(loc=loc, message=f"a JSON {kind_of(records)}, not a list of records",
                                   fix='[{"column": value, ...}, ...]'))
    bad = [(r, kind_of(v)) for r, v in enumerate(records) if not isinstance(v, dict)]
    if bad:
        raise RequestError(rows_problem(loc, bad, "rows that are not JSON objects; found",
                                         'send each row as {"column": value, ...}'))
    if not records:
        return {}
    keys = list(records[0])
    if set(map(len, records)) == {len(keys)}:
        if not keys:
            rows = f"{len(records)} row{'s' if len(records) > 1 else ''}"
            raise RequestError(Problem(loc=loc, message=f"every record is an empty object ({rows}): no "
                                       "column has a value", fix='send each row as {"column": value, ...} '
                                       "with the model's feature columns"), status=422)
        # As many keys in every record, and each has the first's (else KeyError): the same keys.
        # Transposed in C, with no Python loop per value.
        try:
            if len(keys) == 1:
                return {keys[0]: list(map(itemgetter(keys[0]), records))}
            by_row = list(map(itemgetter(*keys), records))
        except KeyError:
            pass
        else:
            return dict(zip(keys, map(list, zip(*by_row, strict=True)), strict=True))
    names = dict.fromkeys(k for r in records for k in r)
    return {k: [r.get(k) for r in records] for k in names}


def problems_json(exc: RequestError) -> list[dict[str, Any]]:
    """The problems as JSON objects; an offending integer beyond 64 bits (which orjson refuses) as text."""
    found = [p.to_dict() for p in exc.problems]
    for problem in found:
        value = problem["value"]
        if type(value) is int and not -(2**63) <= value < 2**64:
            problem["value"] = str(value)
    return found


def parameters_of(value: Any, loc: str, problems: list[Problem]) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    problems.append(Problem(loc=loc, value=value, message="must be a JSON object"))
    return {}


def load_json(body: bytes, what: str) -> Any:
    if not body:
        raise RequestError(Problem(loc="body", message=f"empty: {what} needs a JSON body",
                                   fix="send the JSON object in the request body"))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(Problem(loc="body", message=f"not valid JSON: {exc}",
                                   fix="send UTF-8 JSON (check quotes, commas and brackets)")) from exc


def number_like(value: Any) -> bool:
    if value is None or isinstance(value, int | float):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def rows_problem(loc: str, found: list[tuple[int, Any]], message: str, fix: str) -> Problem:
    """One problem naming the first rows and their values, and how many there are in all."""
    shown = found[:SHOWN]
    more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    rows = ", ".join(str(r) for r, _ in shown)
    values = ", ".join(repr(v) for _, v in shown)
    return Problem(loc=f"{loc} row{'s' if len(found) > 1 else ''} {rows}{more}",
                   message=f"{message}: {values}{more} ({len(found)} row{'s' if len(found) > 1 else ''})",
                   fix=fix)


def plain_list(values: Any) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def kind_of(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")
