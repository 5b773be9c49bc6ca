"""The layout stays the pipeline it is (docs/architecture.rst), checked from the source.

Imports flow one way — the facade, then the loop, then its parts — with no
cycle among ssesync's modules; no module grows past the size one reader can
hold, the parser and the test server aside; and the ``EventSource`` facade
reaches the parser, the replay filter and the backoff only through the loop.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Optional

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ssesync"
#: The longest a module may be; the parser and the test server are allowed more.
MAX_LINES = 440
LONGER = {"_parser", "testing"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("ssesync", *parts))


def _imports(path: Path) -> set[str]:
    """The ssesync modules ``path`` imports at run time (not under TYPE_CHECKING)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith("ssesync"):
                found.add(target)
                for alias in node.names:  # "from . import x" may import a module
                    found.add(f"{target}.{alias.name}")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ssesync"))
    return found


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {
    name: {target for target in _imports(path) if target in MODULES and target != name}
    for name, path in MODULES.items()
}


def test_the_import_graph_is_read() -> None:
    assert "ssesync._loop" in GRAPH["ssesync._source"]
    assert "ssesync._transport._errors" in GRAPH["ssesync._transport._body"]


def find_cycle(graph: dict[str, set[str]]) -> Optional[list[str]]:
    """An import cycle of ``graph``, or ``None``.

    A module's package ``__init__`` is imported before it, so an ``__init__``
    that imports its own submodules makes no cycle.
    """

    def edges(name: str) -> list[str]:
        return sorted(t for t in graph[name] if not (name.startswith(t + ".") and t in graph))

    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> Optional[list[str]]:
        state[name] = 1
        path.append(name)
        for target in edges(name):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"p": {"p.x"}, "p.x": {"p"}}) is None  # a package and its module
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_there_is_no_import_cycle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name: str) -> None:
    if name.rsplit(".", 1)[-1] in LONGER:
        return
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by role"


def test_the_facade_reaches_the_loops_parts_only_through_the_loop() -> None:
    facade = GRAPH["ssesync._source"]
    for part in ("ssesync._parser", "ssesync._dedupe", "ssesync._retry"):
        assert part not in facade, f"EventSource imports {part}: that is the loop's business"
    for name, targets in GRAPH.items():
        if name.startswith(("ssesync._loop", "ssesync._drive", "ssesync._transport")):
            assert "ssesync._source" not in targets, f"{name} imports the facade"
            text = MODULES[name].read_text()
            assert not re.search(r"^\s*(import|from) blinker", text, re.M), f"{name} uses blinker"
