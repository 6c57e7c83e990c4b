"""The package's import graph: no cycles between modules, and every import points down the documented layers.

The layers are the map of ``docs/architecture.md``; a module may import from its own layer or a lower one, never a
higher one. Imports under ``if TYPE_CHECKING:`` are ignored (they never run); imports inside functions count (a
function-level import is still a dependency, and the usual way a cycle hides).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monai_bone"

#: Layer of each top-level part of ``monai_bone`` (lower numbers are lower layers).
LAYERS: dict[str, int] = {
    "_version": 0,
    "constants": 0,
    "tasks": 1,
    "utils": 1,
    "data": 2,
    "networks": 2,
    "losses": 2,
    "metrics": 2,
    "transforms": 3,
    "engines": 4,
    "handlers": 5,
    "synthetic": 6,
    "bundle": 6,
    "results": 7,
    "cv": 7,
    "label": 7,
    "demo": 8,
    "cli": 9,
    "__main__": 9,
    "__init__": 9,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> set[str]:
    """Absolute names of the ``monai_bone`` modules (or names) imported by ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.split(".")[0] == "monai_bone")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - child.level + 1]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                if mod.split(".")[0] == "monai_bone":
                    found.update(f"{mod}.{a.name}" for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def _graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (a ``from pkg import name`` counts as ``pkg.name`` when a module)."""
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def _package_inits_excluded(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph without the re-exporting package ``__init__`` modules (a package importing its own modules)."""
    inits = {m for m in graph if (PACKAGE.parent / m.replace(".", "/") / "__init__.py").is_file()}
    return {m: {t for t in ts if t not in inits} for m, ts in graph.items() if m not in inits}


def test_every_part_has_a_layer():
    parts = {_part(m) for m in _graph()}
    assert parts <= set(LAYERS), f"parts without a layer in this test and docs/architecture.md: {parts - set(LAYERS)}"


def test_no_import_cycles_between_modules():
    cycles = _cycles(_package_inits_excluded(_graph()))
    assert not cycles, f"import cycles: {cycles}"


def test_imports_point_down_the_layers():
    upward = sorted(
        f"{src} -> {dst}"
        for src, targets in _graph().items()
        for dst in targets
        if _part(src) != "__init__" and LAYERS[_part(dst)] > LAYERS[_part(src)]
    )
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


@pytest.mark.parametrize(
    "graph, expected",
    [({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]), ({"a": {"b"}, "b": {"c"}, "c": set()}, [])],
)
def test_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected
