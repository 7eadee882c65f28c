#!/usr/bin/env python3
"""The project's import graph, app by app, from grimp (the graph import-linter checks).

    .venv/bin/python scripts/ci/import_graph.py            # app -> app edges with counts
    .venv/bin/python scripts/ci/import_graph.py --detail   # and each file-level import
                                                           #   against the target direction

An edge's count is the number of (importing file, imported module) pairs; "lazy" ones are
imports inside functions. Edges that run against the target direction
(orders -> inventory -> catalog -> platform, webhooks -> platform; the platform is
pms_backend + audit) are marked "against", except from the composition-root files, which
assemble the project and may name every app.
"""

from __future__ import annotations

import argparse
import ast
import functools
import sys
from collections import Counter
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
APPS = ("pms_backend", "audit", "catalog", "inventory", "orders", "webhooks")
PLATFORM = frozenset({"pms_backend", "audit"})
# What each domain may import besides the platform (and itself).
ALLOWED = {
    "catalog": frozenset(),
    "inventory": frozenset({"catalog"}),
    "orders": frozenset({"inventory", "catalog"}),
    "webhooks": frozenset(),
}
COMPOSITION_ROOT = frozenset(
    f"pms_backend.{name}" for name in ("settings", "urls", "asgi", "wsgi", "celery")
)


def build(exclude_type_checking: bool = False) -> grimp.ImportGraph:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return grimp.build_graph(
        *APPS, exclude_type_checking_imports=exclude_type_checking, cache_dir=None
    )


def app_of(module: str) -> str:
    return module.split(".", 1)[0]


def allowed(importer: str, imported: str) -> bool:
    source, target = app_of(importer), app_of(imported)
    if source == target or target in PLATFORM or importer in COMPOSITION_ROOT:
        return True
    if source in PLATFORM:
        return False
    return target in ALLOWED[source]


@functools.cache
def function_level_lines(module: str) -> frozenset[int]:
    """The line numbers of the import statements inside a function of this module."""
    path = ROOT.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines.update(
                inner.lineno
                for inner in ast.walk(node)
                if isinstance(inner, ast.Import | ast.ImportFrom)
            )
    return frozenset(lines)


def imports(graph: grimp.ImportGraph):
    """Yield (importer, imported, lazy) for every direct import between two modules; lazy
    when every statement of it sits inside a function (it runs at call time, not at import
    time)."""
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            details = graph.get_import_details(importer=importer, imported=imported)
            inside = function_level_lines(importer)
            lazy = bool(details) and all(d["line_number"] in inside for d in details)
            yield importer, imported, lazy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--detail", action="store_true", help="list each import against the target direction"
    )
    args = parser.parse_args()
    graph = build()
    edges: Counter[tuple[str, str]] = Counter()
    lazy_edges: Counter[tuple[str, str]] = Counter()
    against: list[tuple[str, str, bool]] = []
    for importer, imported, lazy in imports(graph):
        key = (app_of(importer), app_of(imported))
        if key[0] == key[1]:
            continue
        edges[key] += 1
        lazy_edges[key] += lazy
        if not allowed(importer, imported):
            against.append((importer, imported, lazy))
    bad_edges = Counter((app_of(a), app_of(b)) for a, b, _ in against)
    for (source, target), count in sorted(edges.items()):
        line = f"{source:>11} -> {target:<11} {count:4d} imports"
        if lazy_edges[(source, target)]:
            line += f" ({lazy_edges[(source, target)]} lazy)"
        if bad_edges[(source, target)]:
            line += f"   against: {bad_edges[(source, target)]}"
        print(line)
    print(f"{len(against)} imports against the target direction")
    if args.detail:
        for importer, imported, lazy in against:
            print(f"  {importer} -> {imported}{'  (lazy)' if lazy else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
