"""Hostile specs: random YAML and random mutations of valid specs end in a `SpecError` with a
location, never in another exception.

The seeds are the valid specs the project already has: the bundled example, the YAML blocks of
docs/spec.md, the tests' minimal spec, and the example with every key written out (its dump), with
each kind of source. Hypothesis is derandomized, so a failure reproduces; the case counts are the
`max_examples` below (2,000+ per run, in-process on text: no files, no subprocess).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from looml.cli import app
from looml.errors import SpecError
from looml.spec import Spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = "data:\n  source: data.csv\n  target: label\nregistry:\n  model_name: churn\n"
SOURCES = [
    {"kind": "sql", "url": "sqlite:///shop.db", "table": "orders"},
    {"kind": "sql", "url": "postgresql://u@h/db", "query": "SELECT * FROM t", "password_env": "PW"},
    {"kind": "http", "url": "https://api.example.com/rows", "records_path": "data.items",
     "pagination": {"kind": "cursor", "next_path": "next", "param": "cursor"}},
    {"kind": "python", "function": "loaders:load_orders", "kwargs": {"n": 3}},
    {"kind": "file", "path": "data/*.parquet", "format": "parquet", "file_column": "src"},
]


def _seeds() -> list[str]:
    example = (ROOT / "examples" / "churn" / "looml.yaml").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "spec.md").read_text(encoding="utf-8"), re.S)
    texts = [example, MINIMAL, *(b if b.startswith("seed") else MINIMAL + b for b in blocks)]
    full = parse_spec(example, ROOT).model_dump(mode="json", exclude={"project_dir"})
    texts.append(yaml.safe_dump(full, sort_keys=False))
    for source in SOURCES:
        texts.append(yaml.safe_dump({**full, "data": {**full["data"], "source": source}}, sort_keys=False))
    for text in texts:  # a seed that does not load would make every mutation of it meaningless
        parse_spec(text, ROOT)
    return texts


SEEDS = _seeds()
SEED_TREES = [yaml.safe_load(t) for t in SEEDS]
SECTIONS = [n for n in Spec.model_fields if n != "project_dir"]


def _all_keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return {str(k) for k in node} | {k for v in node.values() for k in _all_keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _all_keys(v)}
    return set()


KEYS = sorted(set().union(*(_all_keys(t) for t in SEED_TREES)))

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", "auto", "off", "no", "none", "linear", "roc_auc", "rmse", "csv", "sql", "file",
                     "http", "python", "1e400", "-1", "0", "NaN", "${HOME}", "../../etc/passwd",
                     "sqlite:///x.db", "https://x", "a:b", "10m", "1h", "weekly", "\x00", "é" * 3]),
)
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(SECTIONS), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)
odd_keys = st.one_of(keys, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))


def dump(tree: Any) -> str:
    """YAML text of `tree` (libyaml's emitter: the pure-Python one would double the test's time)."""
    return yaml.dump(tree, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                     allow_unicode=True)


def assert_spec_error_or_spec(text: str) -> None:
    """The property: a Spec, or a SpecError whose every problem has a location and a message."""
    try:
        parse_spec(text, ROOT)
    except SpecError as exc:
        assert exc.problems, text
        for problem in exc.problems:
            assert isinstance(problem.loc, str) and problem.loc, (problem, text)
            assert problem.message, (problem, text)
        json.dumps(exc.to_dict())
        assert exc.render()


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    found = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            found += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _paths(v, (*path, i))
    return found


def _parent(tree: Any, path: tuple) -> Any:
    for part in path[:-1]:
        tree = tree[part]
    return tree


@st.composite
def mutated_trees(draw: st.DrawFn) -> Any:
    """A seed's tree with 1 to 4 mutations at random places: delete, replace, retype, insert, rename."""
    tree = copy.deepcopy(draw(st.sampled_from(SEED_TREES)))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(tree)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["delete", "replace", "retype", "insert", "rename", "wrap", "copy"]))
        if not path:
            if op in ("replace", "retype"):
                tree = draw(values)
            continue
        parent, last = _parent(tree, path), path[-1]
        current = parent[last]
        if op == "delete":
            del parent[last]
        elif op == "replace":
            parent[last] = draw(values)
        elif op == "retype":  # the same value as another type: 5 -> "5", [a] -> "a", {..} -> [..]
            parent[last] = (str(current) if not isinstance(current, str) else
                            draw(st.sampled_from([[current], {current: current}, len(current), None])))
        elif op == "insert" and isinstance(current, dict):
            current[draw(odd_keys)] = draw(values)
        elif op == "insert" and isinstance(current, list):
            current.insert(draw(st.integers(0, len(current))), draw(values))
        elif op == "rename" and isinstance(parent, dict):
            new = draw(st.one_of(keys, st.just(str(last)[:-1]), st.just(str(last).upper()), odd_keys))
            parent[new] = parent.pop(last)
        elif op == "wrap":
            parent[last] = draw(st.sampled_from([[current], {"value": current}, [current, current]]))
        elif op == "copy":  # a valid value moved where another belongs
            other = draw(st.sampled_from(paths))
            source = tree
            for part in other:
                source = source[part]
            parent[last] = copy.deepcopy(source)
    return tree


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    """A seed's text edited as a person (or a bad merge) might: lines dropped, duplicated, swapped,
    re-indented, truncated, or YAML's special syntax dropped in."""
    lines = draw(st.sampled_from(SEEDS)).splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        op = draw(st.sampled_from(["drop", "dup", "swap", "indent", "dedent", "cut", "insert", "chars"]))
        if not lines:
            lines = [""]
        if op == "drop":
            lines.pop(i)
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = draw(st.sampled_from(["  ", "\t", " "])) + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip()
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
            lines = lines[: i + 1]
        elif op == "insert":
            lines.insert(i, draw(st.sampled_from([
                "x: &a [1, 2]", "y: *a", "<<: *a", "? [a, b]\n: c", "!!python/object/apply:os.system [ls]",
                "data: !!binary aGVsbG8=", "seed: !!float 1e400", "--- ", "...", "%YAML 1.1", "{", "]",
                "key: 'unterminated", "- a", "seed: 0x1F", "seed: 1_000", "seed: 2001-01-01",
                "registry: {model_name: ~}", "data: {source: {kind: sql}}", "\ufeffseed: 1", "seed: \x85",
            ])))
        else:
            text = lines[i]
            k = draw(st.integers(0, len(text)))
            lines[i] = text[:k] + draw(st.text(max_size=4)) + text[k + draw(st.integers(0, 3)):]
    return "\n".join(lines) + "\n"


FAST = settings(max_examples=700, derandomize=True, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))


@FAST
@given(mutated_trees())
def test_mutated_spec_trees_end_in_a_spec_error(tree: Any) -> None:
    assert_spec_error_or_spec(dump(tree))


@FAST
@given(mutated_texts())
def test_edited_spec_texts_end_in_a_spec_error(text: str) -> None:
    assert_spec_error_or_spec(text)


@settings(FAST, max_examples=400)
@given(st.dictionaries(st.one_of(st.sampled_from(SECTIONS), odd_keys), values, max_size=6))
def test_random_yaml_mappings_end_in_a_spec_error(tree: dict) -> None:
    assert_spec_error_or_spec(dump(tree))


@settings(FAST, max_examples=300)
@given(st.one_of(values, st.text(max_size=60), st.binary(max_size=60).map(
    lambda b: b.decode("utf-8", "replace"))))
def test_random_yaml_documents_end_in_a_spec_error(doc: Any) -> None:
    text = doc if isinstance(doc, str) else dump(doc)
    assert_spec_error_or_spec(text)


@st.composite
def yaml_tricks(draw: st.DrawFn) -> str:
    """What a parser chokes on, spliced into a seed: nesting, alias chains, self-reference, numbers
    and dates YAML cannot construct, tags."""
    depth = draw(st.integers(1, 400))
    fanout = draw(st.integers(1, 12))
    levels = draw(st.integers(1, 8))
    trick = draw(st.sampled_from([
        "data: " + "[" * depth + "]" * depth,
        "data: " + "{a: " * depth + "1" + "}" * depth,
        "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]\n"
                                   for i in range(1, levels + 1)),
        "a: &a {b: [1, {c: *a}]}", "a: &a [*a]",
        "seed: " + "9" * draw(st.integers(1, 6000)),
        "seed: 20{:02d}-{:02d}-{:02d}".format(*draw(st.tuples(*[st.integers(0, 39)] * 3))),
        "seed: !!int x", "seed: !!float x", "seed: !!timestamp x", "data: !!map [1]", "data: !!set [a]",
        "seed: !!str", "data: !!omap [{a: 1}, {a: 2}]", "data: !!pairs [[1, 2]]", "seed: !custom 3",
    ]))
    lines = draw(st.sampled_from(SEEDS)).splitlines()
    at = draw(st.integers(0, len(lines)))
    return "\n".join([*lines[:at], trick, *lines[at:]]) + "\n"


@settings(FAST, max_examples=200)
@given(yaml_tricks())
def test_yaml_that_chokes_parsers_ends_in_a_spec_error(text: str) -> None:
    assert_spec_error_or_spec(text)


def test_a_hostile_spec_exits_2_from_the_cli(tmp_path: Path) -> None:
    (tmp_path / "looml.yaml").write_text("a: &a [*a]\n" + MINIMAL, encoding="utf-8")

    result = CliRunner().invoke(app, ["validate", str(tmp_path / "looml.yaml")])

    assert result.exit_code == 2, result.output
    assert "an alias refers to the list or mapping that contains it" in result.output
    assert "Traceback" not in result.output
