"""The house rules of ``../shared/docs/architecture.md``, checked on the package's own imports.

Every ``import`` in ``src/rlselector`` counts, at module level or inside a function (a lazy import
hides a circle, it does not remove it). Arrows point down the layers; no module imports itself
through others; methods never import each other; nothing imports the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rlselector"

LAYERS = {
    "cli": 7,
    "bench": 6,
    "api": 5, "loop": 5, "lightning": 5,
    "methods": 4,
    "selection": 3, "agent": 3, "recipes": 3,
    "cover": 2, "bank": 2, "train": 2,
    "data": 1, "models": 1,
    "io": 0, "errors": 0, "progress": 0, "version": 0,
}
"""Rank of each top-level module or package: an import may only reach an equal or lower rank."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Modules of ``rlselector`` that ``path`` imports (``from X import name`` counts ``X.name`` when
    that is a module, else ``X``)."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("rlselector")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("rlselector"):
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
    found.discard(own)
    return found


MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}
GRAPH = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_top_level_module_has_a_layer():
    assert {top(m) for m in MODULES} - {""} <= set(LAYERS), "a new top-level module needs a rank in LAYERS"


def test_arrows_point_down():
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in GRAPH.items() if top(source)  # the package's own __init__ is the public facade
        for target in targets if top(target) and LAYERS[top(target)] > LAYERS[top(source)]
    )
    assert not upward, "imports that run back up the layers:\n" + "\n".join(upward)


def test_no_import_circle():
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:  # depth-first; 1 = on the current trail, 2 = done
        state[node] = 1
        for nxt in sorted(GRAPH.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(GRAPH):
        if top(module) and module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_methods_never_import_each_other_and_selection_never_imports_methods():
    bad = sorted(
        f"{source} -> {target}"
        for source, targets in GRAPH.items()
        for target in targets
        if (top(source) == "methods" and top(target) == "methods" and target != "rlselector.methods" and source != "rlselector.methods")
        or (top(source) == "selection" and top(target) in ("methods", "api"))
    )
    assert not bad, "\n".join(bad)


def test_nothing_imports_the_command_line():
    assert not [source for source, targets in GRAPH.items() if "rlselector.cli" in targets]


@pytest.mark.parametrize(
    "source, target, check",
    [
        ("rlselector.selection.method", "rlselector.methods", "test_arrows_point_down"),
        ("rlselector.selection.method", "rlselector.methods.random", "test_methods_never_import_each_other_and_selection_never_imports_methods"),
        ("rlselector.methods.el2n", "rlselector.methods.grand", "test_methods_never_import_each_other_and_selection_never_imports_methods"),
        ("rlselector.selection.proxy", "rlselector.selection.method", "test_no_import_circle"),
        ("rlselector.train.loop", "rlselector.cli", "test_nothing_imports_the_command_line"),
    ],
)
def test_the_checks_catch_a_broken_house(source, target, check, monkeypatch):
    """Each rule fails on the import it forbids (the checks are not vacuous)."""
    monkeypatch.setitem(GRAPH, source, GRAPH[source] | {target})
    with pytest.raises(AssertionError):
        globals()[check]()
