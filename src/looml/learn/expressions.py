"""A restricted expression language for derived columns, parsed with `ast` and never `eval`-ed.

Allowed: numbers, column names (`back ticks` around names that are not identifiers),
arithmetic (+ - * / ** %, unary -), comparisons (chained too), and / or / not, and the
functions log, log1p, exp, sqrt, abs, min, max, clip, where. Anything else (attributes,
subscripts, calls of other names, strings, lambdas ...) is an `ExpressionError` that names
the position. Values are float arrays; comparisons give 1.0 / 0.0; a result that is not
finite (log of 0, division by 0) is NaN, which the imputers fill.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FUNCTIONS", "Expression", "ExpressionError", "parse"]

# name -> (fewest, most arguments, numpy function)
FUNCTIONS: dict[str, tuple[int, int, Any]] = {
    "log": (1, 1, np.log), "log1p": (1, 1, np.log1p), "exp": (1, 1, np.exp), "sqrt": (1, 1, np.sqrt),
    "abs": (1, 1, np.abs), "min": (2, 8, np.minimum), "max": (2, 8, np.maximum),
    "clip": (3, 3, np.clip), "where": (3, 3, None),
}
_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide,
           ast.Pow: np.power, ast.Mod: np.mod}
_COMPARE = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
            ast.Eq: np.equal, ast.NotEq: np.not_equal}
_BACKTICKED = re.compile(r"`([^`]*)`")


class ExpressionError(ValueError):
    """An expression that is not valid in the language; `fix` says what to write instead."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, syntax tree and the columns it reads."""

    text: str
    tree: ast.Expression
    aliases: dict[str, str]  # placeholder identifier -> back-ticked column name
    columns: tuple[str, ...]

    def evaluate(self, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """The expression over float arrays of `rows` values; non-finite results become NaN."""
        with np.errstate(all="ignore"):
            value = _evaluate(self.tree.body, columns, self.aliases)
        value = np.broadcast_to(np.asarray(value, dtype="float64"), (rows,))
        return np.where(np.isfinite(value), value, np.nan)


def parse(text: str) -> Expression:
    """Parse and check `text`; raise `ExpressionError` (with the position) if it is not allowed."""
    aliases: dict[str, str] = {}

    def alias(match: re.Match[str]) -> str:
        if not match.group(1):
            raise ExpressionError(f"empty back-quoted name at position {match.start() + 1}",
                                  "write a column name between the back ticks")
        # as wide as the original where possible, so positions in error messages stay right
        key = f"_q{len(aliases)}_".ljust(len(match.group(0)), "_")
        aliases[key] = match.group(1)
        return key

    if text.count("`") % 2:
        raise ExpressionError(f"unmatched back tick at position {text.rindex('`') + 1}",
                              "close the back-quoted column name")
    source = _BACKTICKED.sub(alias, text)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error at position {exc.offset or 1}: {exc.msg}",
                              "check the parentheses and operators near that position") from exc
    columns: list[str] = []
    for node in ast.walk(tree.body):
        _check(node, text)
        if isinstance(node, ast.Name) and not _is_function(node, tree):
            name = aliases.get(node.id, node.id)
            if name not in columns:
                columns.append(name)
    return Expression(text=text, tree=tree, aliases=aliases, columns=tuple(columns))


def _is_function(name: ast.Name, tree: ast.Expression) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(tree))


_ALLOWED = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call, ast.Name, ast.Constant,
            ast.Load, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, *_BINARY, *_COMPARE)


def _check(node: ast.AST, text: str) -> None:
    where = f" at position {node.col_offset + 1}" if hasattr(node, "col_offset") else ""
    if not isinstance(node, _ALLOWED):
        raise ExpressionError(f"{type(node).__name__.lower()} is not allowed{where}",
                              "use arithmetic, comparisons, and/or/not, numbers, column names and "
                              f"the functions {', '.join(FUNCTIONS)}")
    if isinstance(node, ast.Constant) and (isinstance(node.value, bool)
                                           or not isinstance(node.value, int | float)):
        raise ExpressionError(f"only numbers are allowed as constants{where}, not {node.value!r}",
                              "refer to columns by name (back ticks for names with spaces)")
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            from looml.errors import did_you_mean

            hint = did_you_mean(str(name), FUNCTIONS)
            raise ExpressionError(f"unknown function {name or ast.unparse(node.func)!r}{where}",
                                  hint or f"the functions are {', '.join(FUNCTIONS)}")
        low, high, _ = FUNCTIONS[name]
        if node.keywords or not low <= len(node.args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise ExpressionError(f"{name}() takes {count} positional arguments{where}",
                                  f"call {name} with {count} arguments")


def _evaluate(node: ast.AST, columns: dict[str, np.ndarray], aliases: dict[str, str]) -> Any:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return columns[aliases.get(node.id, node.id)]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, columns, aliases),
                                      _evaluate(node.right, columns, aliases))
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, columns, aliases)
        if isinstance(node.op, ast.Not):
            return np.logical_not(_truth(value)).astype("float64")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BoolOp):
        values = [_truth(_evaluate(v, columns, aliases)) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        return combine.reduce(np.broadcast_arrays(*values)).astype("float64")
    if isinstance(node, ast.Compare):
        left, result = _evaluate(node.left, columns, aliases), True
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(right_node, columns, aliases)
            result = np.logical_and(result, _COMPARE[type(op)](left, right))
            left = right
        return np.asarray(result, dtype="float64")
    return _call(node, columns, aliases)


def _call(node: Any, columns: dict[str, np.ndarray], aliases: dict[str, str]) -> Any:
    name = node.func.id
    args = [_evaluate(a, columns, aliases) for a in node.args]
    if name == "where":
        return np.where(_truth(args[0]), args[1], args[2])
    if name in ("min", "max"):
        return FUNCTIONS[name][2].reduce(np.broadcast_arrays(*args))
    return FUNCTIONS[name][2](*args)


def _truth(value: Any) -> np.ndarray:
    """Non-zero is true; NaN (a gap) is false."""
    value = np.asarray(value, dtype="float64")
    return np.nan_to_num(value, nan=0.0) != 0
