"""No module of the service imports itself back through others: the import graph of ``nexus_backend`` (built by
grimp, import-linter's graph library, from the source; imports inside functions count too) has no cycle."""

from __future__ import annotations

import grimp


def cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as one cycle through it."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in sorted(modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(_one_cycle(edges, set(group)))

    for module in edges:
        if module not in index:
            visit(module)
    return found


def _one_cycle(edges: dict[str, list[str]], group: set[str]) -> list[str]:
    """A path from the group's first module back to itself, inside the group (breadth first: a shortest one)."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for target in edges[module]:
            if target == start:
                return [*paths[module], start]
            if target in group and target not in paths:
                paths[target] = [*paths[module], target]
                queue.append(target)
    return sorted(group)  # unreachable: a strongly connected group always closes


def test_cycles_are_found_where_they_exist():
    """The finder itself: a graph with a known cycle reports it."""
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert cycles(graph, {"pkg.a", "pkg.b", "pkg.c"}) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_the_service_has_no_module_import_cycle():
    graph = grimp.build_graph("nexus_backend", cache_dir=None)
    modules = set(graph.find_descendants("nexus_backend"))
    assert len(modules) > 100  # the whole package was read (a namespace folder without __init__.py is skipped)
    found = cycles(graph, modules)
    assert not found, "module import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)
