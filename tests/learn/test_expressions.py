"""The derived-column language: parsed with `ast`, checked node by node, never `eval`-ed."""

from __future__ import annotations

import numpy as np
import pytest

from looml.learn.expressions import ExpressionError, parse


def run(text: str, **columns: list[float]) -> list[float]:
    arrays = {k: np.asarray(v, dtype="float64") for k, v in columns.items()}
    return parse(text).evaluate(arrays, len(next(iter(arrays.values())))).tolist()


def test_arithmetic_functions_and_backticked_names() -> None:
    assert parse("weight / (`height cm` / 100) ** 2").columns == ("weight", "height cm")
    assert run("weight / (`height cm` / 100) ** 2", weight=[81.0], **{"height cm": [180.0]}) == [25.0]
    assert run("-a % 3 + abs(b) * sqrt(4)", a=[4.0], b=[-1.5]) == [5.0]
    assert run("clip(a, 0, 1) + max(a, b, 0.5) + min(a, b)", a=[2.0], b=[-1.0]) == [1.0 + 2.0 - 1.0]
    assert run("log(exp(a)) + log1p(0)", a=[3.0]) == [3.0]


def test_comparisons_and_logic_give_ones_and_zeros() -> None:
    assert run("where(a > 1 and not b, 10, 20)", a=[2.0, 2.0, 0.0], b=[0.0, 1.0, 0.0]) == [10.0, 20.0, 20.0]
    assert run("0 < a <= 2 or b == 5", a=[1.0, 3.0, 3.0], b=[0.0, 0.0, 5.0]) == [1.0, 0.0, 1.0]


def test_gaps_and_impossible_values_become_nan() -> None:
    out = run("log(a) + 1 / b", a=[np.nan, 0.0, 1.0], b=[1.0, 1.0, 0.0])
    assert all(np.isnan(out))
    assert run("7", a=[1.0, 2.0]) == [7.0, 7.0]  # a constant fills the column


@pytest.mark.parametrize(("text", "message", "fix"), [
    ("a +* b", r"syntax error at position \d+", "parentheses"),
    ("(a + b", r"syntax error at position \d+", "parentheses"),
    ("lg(a)", r"unknown function 'lg' at position 1", "did you mean 'log'"),
    ("a * __import__('os').system('rm -rf /')", "is not allowed|unknown function", "the functions are log"),
    ("open('f')", "unknown function 'open'", "the functions are log, log1p"),
    ("a.real", "attribute is not allowed at position 1", "use arithmetic, comparisons"),
    ("a[0]", "subscript is not allowed", "use arithmetic, comparisons"),
    ("'text' + a", "only numbers are allowed as constants at position 1", "refer to columns by name"),
    ("True + a", "only numbers are allowed", "refer to columns by name"),
    ("[a for a in b]", "listcomp is not allowed", "use arithmetic, comparisons"),
    ("lambda: a", "lambda is not allowed", "use arithmetic, comparisons"),
    ("a if b else c", "ifexp is not allowed", "where"),
    ("max(a)", r"max\(\) takes 2 to 8 positional arguments", "call max with 2 to 8"),
    ("log(a, base=2)", r"log\(\) takes 1 positional arguments", "call log with 1"),
    ("a + `b", "unmatched back tick at position 5", "close"),
    ("a + ``", "empty back-quoted name at position 5", "a column name between the back ticks"),
])
def test_anything_else_is_refused_with_its_position(text: str, message: str, fix: str) -> None:
    with pytest.raises(ExpressionError, match=message) as exc:
        parse(text)
    assert fix and fix in exc.value.fix  # every refusal names its fix
