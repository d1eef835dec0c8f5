"""Reading looml.yaml's text into YAML nodes (for line numbers) and Python values, safely.

One parse gives both the node tree and the values (libyaml's parser when PyYAML has it). Before
anything walks the tree it is bounded: YAML aliases can make a few lines expand to millions of
values ("billion laughs") or refer to themselves, and brackets can nest deeper than Python
recurses; each of those, and a value YAML cannot construct (a 5,000-digit number, the date
2001-13-45), is a `SpecError` naming the file, never a hang or a traceback.
"""

from __future__ import annotations

from typing import Any

import yaml

from looml.errors import Problem, SpecError

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A real spec has a few hundred values; these bounds leave room for generous lists and stop
# what only an alias bomb or a generator reaches.
MAX_VALUES = 100_000
MAX_DEPTH = 50


def read_yaml(text: str, name: str) -> tuple[yaml.Node | None, Any]:
    """The node tree and the values of `text`; raise `SpecError` (located at `name`) if either
    cannot be made or the tree is too deep or too large."""
    try:
        return _read(_Loader, text, name)
    except SpecError as exc:
        if _Loader is yaml.SafeLoader or not isinstance(exc.__cause__, yaml.YAMLError):
            raise
        if "maximum nesting depth" in str(exc.__cause__):  # libyaml stops at 1,000 levels; PyYAML
            raise SpecError(_too_deep(name)) from exc.__cause__  # would recurse there for seconds
        # libyaml words its errors tersely; PyYAML's own parser says the same thing better
        # (and the bounds hold for it as well), and errors are rare enough to parse twice.
        return _read(yaml.SafeLoader, text, name)


def _read(loader_class: Any, text: str, name: str) -> tuple[yaml.Node | None, Any]:
    loader = None
    try:
        loader = loader_class(text)  # the pure-Python reader checks the characters here
        node = loader.get_single_node()
        if node is not None:
            _check_bounds(node, name)
        raw = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_problem(exc, name)) from exc
    except RecursionError as exc:
        raise SpecError(_too_deep(name)) from exc
    except (ValueError, OverflowError, TypeError, AttributeError, KeyError, IndexError) as exc:
        # what PyYAML's constructors raise on a tagged value they cannot build: `!!timestamp x` is an
        # AttributeError (its regex does not match), a 5,000-digit integer a ValueError
        raise SpecError(Problem(
            loc=name, message=f"malformed YAML: a value cannot be read: {exc}",
            fix="quote the value to make it a string, or correct the number or date")) from exc
    finally:
        if loader is not None:
            loader.dispose()
    return node, raw


def _too_deep(name: str) -> Problem:
    return Problem(loc=name, message="malformed YAML: brackets or indentation nested too deeply to read",
                   fix=f"a spec nests a few levels; flatten it (at most {MAX_DEPTH} levels)")


def _yaml_problem(exc: yaml.YAMLError, name: str) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    reason = getattr(exc, "problem", None) or str(exc)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        reason += f" ({context} that starts on line {context_mark.line + 1})"
    return Problem(loc=name, line=line, message=f"malformed YAML: {reason}",
                   fix="check indentation and quoting near that line")


def _check_bounds(root: yaml.Node, name: str) -> None:
    """Refuse a node graph with a cycle, more than MAX_DEPTH levels or more than MAX_VALUES values
    once aliases are expanded; each shared node is sized once, so this is linear in the text."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded values, depth)
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            below = [sizes[id(c)] for c in children]
            total = 1 + sum(s for s, _ in below)
            depth = 1 + max((d for _, d in below), default=0)
            sizes[key] = (total, depth)
            if depth > MAX_DEPTH:
                raise SpecError(Problem(
                    loc=name, line=node.start_mark.line + 1,
                    message=f"malformed YAML: nested more than {MAX_DEPTH} levels deep",
                    fix="a spec nests a few levels; flatten the lists and mappings near that line"))
            if total > MAX_VALUES:
                raise SpecError(Problem(
                    loc=name, line=node.start_mark.line + 1,
                    message=f"malformed YAML: expands to more than {MAX_VALUES:,} values (YAML aliases "
                            "repeating aliases?)",
                    fix="write the values out, or use fewer `*alias` references"))
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise SpecError(Problem(
                loc=name, line=node.start_mark.line + 1,
                message="malformed YAML: an alias refers to the list or mapping that contains it",
                fix="a spec cannot contain itself; replace the `*alias` with the values"))
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            cid = id(child)
            if cid in on_path:
                raise SpecError(Problem(
                    loc=name, line=child.start_mark.line + 1,
                    message="malformed YAML: an alias refers to the list or mapping that contains it",
                    fix="a spec cannot contain itself; replace the `*alias` with the values"))
            if cid not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
