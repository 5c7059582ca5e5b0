"""The domain layer stands alone: no framework or driver, and no import cycle (counting the
imports made only for type checking)."""

from __future__ import annotations

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FORBIDDEN = frozenset(
    {
        "strawberry",
        "starlette",
        "pymongo",
        "bson",
        "schema",
        "resolvers",
        "store",
        "server",
    }
)


def _imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in DOMAIN.glob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[f"domain.{path.stem}"] = names
    return found


def test_the_domain_imports_no_framework_driver_or_outer_layer() -> None:
    offending = {
        module: sorted(n for n in names if n.split(".")[0] in FORBIDDEN)
        for module, names in _imports().items()
    }
    assert {m: n for m, n in offending.items() if n} == {}


def test_the_domain_has_no_import_cycle() -> None:
    graph = {m: {n for n in names if n.startswith("domain.")} for m, names in _imports().items()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            cycle = " -> ".join((*path[path.index(module) :], module))
            raise AssertionError(f"import cycle: {cycle}")
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
