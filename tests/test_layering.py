"""Layering: stages never import stores, the server, the runner or the CLI.

Checked on the source with `ast`, so an import inside a function counts as much as one at
the top of the module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "looml"
FORBIDDEN_IN_STAGES = ("looml.store", "looml.cli", "looml.serve", "looml.pipeline", "looml.runner")
STAGE_MODULES = sorted([*(SRC / "data").rglob("*.py"), *(SRC / "learn").rglob("*.py")])
CORE_PACKAGES = ("looml.spec", "looml.errors", "looml.schedule", "looml.usercache")
CORE_MODULES = sorted([*(SRC / "spec").rglob("*.py"), SRC / "errors.py", SRC / "schedule.py",
                       SRC / "usercache.py"])


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module an import statement anywhere in `source` names, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            found.add(target)
            # `from looml import store` imports the module looml.store
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return found


def imports_of(path: Path) -> set[str]:
    return imported_modules(path.read_text(encoding="utf-8"), module_name(path),
                            is_package=path.name == "__init__.py")


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def forbidden(names: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {n for n in names if under(n, prefixes)}


def test_the_stage_packages_are_found() -> None:
    names = {module_name(p) for p in STAGE_MODULES}

    assert {"looml.data.sources", "looml.data.sources.files", "looml.data.validate", "looml.learn.train",
            "looml.learn.zoo"} <= names


@pytest.mark.parametrize("path", STAGE_MODULES, ids=module_name)
def test_stages_do_not_import_stores_server_runner_or_cli(path: Path) -> None:
    assert forbidden(imports_of(path), FORBIDDEN_IN_STAGES) == set()


def test_the_core_modules_are_found() -> None:
    names = {module_name(p) for p in CORE_MODULES}

    assert {"looml.spec", "looml.spec.data", "looml.spec.operations", "looml.errors",
            "looml.schedule", "looml.usercache"} <= names


@pytest.mark.parametrize("path", CORE_MODULES, ids=module_name)
def test_the_core_modules_import_only_each_other(path: Path) -> None:
    own = {n for n in imports_of(path) if under(n, ("looml",))}

    assert {n for n in own if not under(n, CORE_PACKAGES)} == set()


def test_the_compiled_scorers_depend_on_the_scoring_contract_not_on_the_served_model() -> None:
    # serve.model loads a version and compiles its scorer: serve.compiled must not import it back.
    package = sorted((SRC / "serve" / "compiled").rglob("*.py"))
    assert package, "serve/compiled is not where this test looks"
    for path in [*package, SRC / "serve" / "scoring.py"]:
        assert forbidden(imports_of(path), ("looml.serve.model", "looml.serve.app")) == set(), path


@pytest.mark.parametrize("path", sorted([*(SRC / "store").rglob("*.py"), *(SRC / "monitor").rglob("*.py")]),
                         ids=module_name)
def test_the_stores_and_monitoring_do_not_import_the_server(path: Path) -> None:
    # the prediction log and the feedback store are storage that the server writes and monitoring reads
    assert forbidden(imports_of(path), ("looml.serve", "looml.cli")) == set()


@pytest.mark.parametrize(("module", "above"), [
    ("routes", ("looml.serve.app", "looml.serve.server")),
    ("holder", ("looml.serve.app", "looml.serve.routes", "looml.serve.server")),
    ("openapi", ("looml.serve.app", "looml.serve.routes", "looml.serve.server")),
])
def test_the_server_modules_import_one_way(module: str, above: tuple[str, ...]) -> None:
    # app assembles routes, which use the holder and the OpenAPI schemas: never back up
    assert forbidden(imports_of(SRC / "serve" / f"{module}.py"), above) == set()


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `graph` (module -> modules it imports): each strongly connected set of
    two or more modules, sorted (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            part = [stack.pop()]
            while part[-1] != node:
                part.append(stack.pop())
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_module_sits_in_an_import_circle() -> None:
    # A circle, even through an import inside a function or under TYPE_CHECKING, means two modules
    # are one concept split wrong; the fix is to move what both need into a module of its own.
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    graph = {name: {n for n in imports_of(path) if n in modules and n != name}
             for name, path in modules.items()}

    assert circles(graph) == []


def test_the_circle_check_finds_a_circle_through_any_number_of_modules() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"g"}, "g": {"f"}}

    assert circles(graph) == [["a", "b", "c"], ["f", "g"]]


@pytest.mark.parametrize(("source", "module", "expected"), [
    ("import looml.store.tracking", "looml.data.x", {"looml.store.tracking"}),
    ("def f():\n    from looml.cli import app\n", "looml.learn.x", {"looml.cli", "looml.cli.app"}),
    ("from looml import pipeline", "looml.learn.x", {"looml.pipeline"}),
    ("from ..store import artifacts", "looml.data.x", {"looml.store", "looml.store.artifacts"}),
    ("from ..runner import Runner", "looml.learn.x", {"looml.runner", "looml.runner.Runner"}),
    ("from looml import errors, serve", "looml.data.x", {"looml.serve"}),
    ("from . import store", "looml", {"looml.store"}),
    ("from .split import split", "looml.data.x", set()),
    ("import looml.storefront", "looml.data.x", set()),
])
def test_the_check_catches_every_way_of_importing(source: str, module: str,
                                                  expected: set[str]) -> None:
    names = imported_modules(source, module, is_package=module == "looml")

    assert forbidden(names, FORBIDDEN_IN_STAGES) == expected


def test_importing_looml_and_its_wiring_loads_no_heavy_library() -> None:
    # A fully cached `looml run` imports only this much: scikit-learn, pandas, MLflow and SHAP
    # are imported by the stages that run (a cached run had paid 6 s for one import at the top).
    import subprocess
    import sys

    code = ("import sys, looml, looml.pipeline, looml.cli\n"
            "print(sorted(m for m in ('sklearn', 'pandas', 'mlflow', 'shap', 'lightgbm', 'ray') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
