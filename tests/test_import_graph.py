"""The import graph of kfp-bot's own code: layers that point one way, and no module cycles.

`bot` → `deploy` → `handlers` → `pipeline_registry` → `kfp_bot_errors` (README, "Layout"): a
module may import its own layer and the layers below it, never one above. Imports are read from
the source with `ast` (every `import`, also those inside functions and under TYPE_CHECKING, since
each is a dependency a reader has to follow), so a lazy import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Bottom first: each layer may import the ones before it.
LAYERS = ("kfp_bot_errors", "pipeline_registry", "handlers", "deploy", "bot")
# No module of these imports another that imports it back, however indirectly.
ACYCLIC = LAYERS


def module_name(path: Path) -> str:
    """`bot/github/__init__.py` → `bot.github`; `bot/cli.py` → `bot.cli`."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the four layers and the errors' home, by dotted name."""
    found = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            if "templates" not in path.relative_to(ROOT).parts:
                found[module_name(path)] = path
    return found


def _own(name: str) -> str | None:
    """The nearest of our modules `name` lies in (`bot.store.rows.X` → `bot.store.rows`)."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports_of(name: str) -> frozenset[str]:
    """Our modules `name` imports. `from package import submodule` counts as the submodule."""
    path = modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(filter(None, (_own(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            submodules = [f"{source}.{alias.name}" for alias in node.names
                          if f"{source}.{alias.name}" in modules()]
            found.update(submodules)
            if len(submodules) < len(node.names) and (own := _own(source)):
                found.add(own)
    found.discard(name)
    return frozenset(found)


def layer(name: str) -> int:
    return LAYERS.index(name.split(".")[0])


def cycles(names: set[str], imports: Callable[[str], frozenset[str]] = imports_of) -> list[list[str]]:
    """Strongly connected groups of more than one module among `names` (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(imports(node) & names):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(names):
        if node not in index:
            visit(node)
    return found


def test_every_layer_is_found() -> None:
    assert {name.split(".")[0] for name in modules()} == set(LAYERS)
    assert {"bot.wiring", "handlers.routes", "deploy.pipelines", "pipeline_registry.planner"} <= set(modules())


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_imports_a_layer_above_its_own(name: str) -> None:
    upward = sorted(other for other in imports_of(name) if layer(other) > layer(name))
    assert upward == [], f"{name} ({LAYERS[layer(name)]}) imports a layer above it: {upward}"


def test_the_errors_home_imports_nothing_of_ours() -> None:
    assert {other for name in modules() if name.startswith("kfp_bot_errors")
            for other in imports_of(name) if not other.startswith("kfp_bot_errors")} == set()


@pytest.mark.parametrize("package", ACYCLIC)
def test_no_modules_import_each_other_in_a_circle(package: str) -> None:
    assert cycles({name for name in modules() if name.split(".")[0] == package}) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: modules importing each other, also through a third, are reported."""
    graph = {"a": frozenset("b"), "b": frozenset("ca"), "c": frozenset(), "d": frozenset("e"),
             "e": frozenset("f"), "f": frozenset("d")}
    assert cycles(set(graph), lambda name: graph[name]) == [["a", "b"], ["d", "e", "f"]]


def test_the_root_error_is_imported_from_its_home() -> None:
    """`KfpBotError` comes from `kfp_bot_errors`, not through a layer that happens to import it."""
    elsewhere = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.ImportFrom) and node.module != "kfp_bot_errors"
                    and any(alias.name == "KfpBotError" for alias in node.names)):
                elsewhere.append(f"{name}: from {node.module} import KfpBotError")
    assert elsewhere == []
