#!/usr/bin/env python3
"""Fail on any import cycle between files of the project's packages.

    .venv/bin/python scripts/ci/import_cycles.py

A cycle counts the imports that run when a module is imported: those at module level
(including class bodies). Imports inside a function run at call time and break a cycle; the
rule allows one only where the cycle is otherwise impossible, with a one-line comment giving
the reason (on the import's line or the line above): one without such a comment fails too.
--lazy lists them all. Imports under `if TYPE_CHECKING:` never run and are left out.
import-linter's contracts cannot express this (its acyclic_siblings contract compares whole
packages, not files), hence this script.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque

from import_graph import ROOT, build, imports


def strongly_connected(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def shortest_cycle(start: str, members: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path start -> ... -> start inside one component (breadth first)."""
    parents: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(edges.get(node, ()) & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [*reversed(path), start]
            if child not in parents:
                parents[child] = node
                queue.append(child)
    return [start]


def has_reason(module: str, line_number: int) -> bool:
    """A comment on the import's line or alone on the line above it."""
    path = ROOT.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    lines = path.read_text(encoding="utf-8").splitlines()
    return "#" in lines[line_number - 1] or lines[line_number - 2].lstrip().startswith("#")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lazy", action="store_true", help="also list the imports inside functions"
    )
    args = parser.parse_args()
    graph = build(exclude_type_checking=True)
    edges: dict[str, set[str]] = {}
    lazy: list[tuple[str, str]] = []
    unexplained: set[tuple[str, int, str]] = set()
    for importer, imported, is_lazy in imports(graph):
        if not is_lazy:
            edges.setdefault(importer, set()).add(imported)
            continue
        lazy.append((importer, imported))
        for detail in graph.get_import_details(importer=importer, imported=imported):
            if not has_reason(importer, detail["line_number"]):
                unexplained.add((importer, detail["line_number"], detail["line_contents"]))
    components = strongly_connected(sorted(graph.modules), edges)
    for component in components:
        members = set(component)
        print(f"import cycle among {len(component)} modules: {', '.join(component)}")
        print("  e.g. " + " -> ".join(shortest_cycle(component[0], members, edges)))
    if args.lazy:
        print(f"{len(lazy)} imports inside functions:")
        for importer, imported in lazy:
            print(f"  {importer} -> {imported}")
    for module, line_number, contents in sorted(unexplained):
        print(f"import inside a function without a reason: {module}:{line_number}: {contents}")
    if components or unexplained:
        print(
            f"{len(components)} import cycles between files, {len(unexplained)} imports"
            " inside functions without a reason",
            file=sys.stderr,
        )
        return 1
    print("no import cycles between files; every import inside a function gives its reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
