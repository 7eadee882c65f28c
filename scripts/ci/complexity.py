#!/usr/bin/env python3
"""Fail on any function whose cyclomatic complexity (radon's count) is above the limit.

    .venv/bin/python scripts/ci/complexity.py [--max 15] [paths...]

Every Python file of the project except tests/, migrations and the virtualenv. radon's
ranks (A 1-5, B 6-10, C 11-20) cannot say 15, hence this script over radon's API.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".venv", "tests", "migrations", "node_modules", "build", ".git"}


def python_files(paths: list[Path]):
    for path in paths:
        if path.is_file():
            yield path
            continue
        for file in sorted(path.rglob("*.py")):
            if not SKIP.intersection(file.relative_to(ROOT).parts):
                yield file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=15, help="the highest complexity allowed")
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: all)")
    args = parser.parse_args()
    paths = [path.resolve() for path in args.paths] or [ROOT]
    over = []
    for file in python_files(paths):
        # Functions and methods (a class's own figure sums its methods: not counted).
        for block in cc_visit(file.read_text(encoding="utf-8")):
            if block.complexity > args.max and not hasattr(block, "methods"):
                over.append((file.relative_to(ROOT) if file.is_relative_to(ROOT) else file, block))
    for path, item in over:
        print(f"{path}:{item.lineno}: {item.fullname} has complexity {item.complexity}")
    if over:
        print(
            f"{len(over)} function{'s' if len(over) > 1 else ''} above complexity"
            f" {args.max}: split {'them' if len(over) > 1 else 'it'}",
            file=sys.stderr,
        )
        return 1
    print(f"no function above complexity {args.max}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
