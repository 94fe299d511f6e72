"""The layout's invariants: every module is reached under `dfft.` (the rooms through the symlinks in dfft/), and no
two modules import each other, directly or round a loop -- counting imports inside functions, which grimp sees too.
The layering of the rooms (cli > plugins > web > api > whatif > engine > rules) is import-linter's contract in pyproject.toml,
run by `lint-imports` in .ci/run."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("rules", "jurisdictions", "engine", "api", "whatif", "plugins", "web")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("dfft", cache_dir=None)


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    g = grimp.ImportGraph()
    for m in ("a", "a.x", "a.y", "a.z"):
        g.add_module(m)
    g.add_import(importer="a.x", imported="a.y")
    g.add_import(importer="a.y", imported="a.z")
    g.add_import(importer="a.z", imported="a.x")
    assert cycles(g) == [["a.x", "a.y", "a.z"]]
    g.remove_import(importer="a.z", imported="a.x")
    assert cycles(g) == []


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_every_room_is_reached_through_the_facade(graph):
    for room in ROOMS:
        link = ROOT / "dfft" / room
        assert link.is_symlink() and link.resolve() == ROOT / room, f"dfft/{room} must be a symlink to ../{room}"
        assert f"dfft.{room}" in graph.modules
    assert {
        "dfft.engine.core",
        "dfft.api.app",
        "dfft.whatif.scenario",
        "dfft.plugins.guard",
        "dfft.cli.options",
    } <= graph.modules


def test_no_module_imports_a_room_by_its_bare_name():
    # `import engine` (instead of dfft.engine or a relative import) would load a second copy of the room from a checkout
    external = grimp.build_graph("dfft", include_external_packages=True, cache_dir=None).modules - set(
        grimp.build_graph("dfft", cache_dir=None).modules
    )
    assert not external & set(ROOMS), sorted(external & set(ROOMS))
