"""Messages say "1 entry" and "67 entries", never "entr(y/ies)": the counting helper, and a
scan of the code and templates that fails on any "(s)", "(es)" or "(y/ies)" a person would
read (string literals of non-test code, template text and the strings of their scripts)."""

import ast
import re
from pathlib import Path

import pytest

from pms_backend.plurals import counted, noun

ROOT = Path(__file__).resolve().parents[2]
# Everything whose words reach a person: the apps, the operators' scripts and the production
# check (its lines are quoted in scripts.md).
SOURCES = ["pms_backend", "catalog", "orders", "inventory", "webhooks", "audit", "scripts", "bench"]
OPERATOR_FILES = ["tests/production/check_production.py"]
HEDGED = re.compile(r"[A-Za-z]\((?:s|es|ies|y/ies)\)")


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0 entries"),
        (1, "1 entry"),
        (2, "2 entries"),
        (67, "67 entries"),
        (1024, "1,024 entries"),
    ],
)
def test_counted_fits_the_noun_to_the_count(count, expected):
    assert counted(count, "entry", "entries") == expected


def test_the_plural_defaults_to_an_added_s():
    assert counted(1, "row") == "1 row"
    assert counted(3, "row") == "3 rows"
    assert counted(100_000, "row") == "100,000 rows"


def test_noun_counts_a_list_by_its_length():
    assert f"Unknown {noun(['colour'], 'column')}: colour" == "Unknown column: colour"
    assert noun(["a", "b"], "column") == "columns"
    assert noun([], "setting") == "settings"
    assert noun({"x"}, "delivery", "deliveries") == "delivery"
    assert noun(2, "delivery", "deliveries") == "deliveries"


def _python_files() -> list[Path]:
    files = [p for source in SOURCES for p in sorted((ROOT / source).rglob("*.py"))]
    return files + [ROOT / name for name in OPERATOR_FILES]


def _docstrings(tree: ast.AST) -> set[int]:
    """Return the ids of the docstring nodes (they may hedge: a reader of code reads them)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def hedged_strings(source: str) -> list[tuple[int, str]]:
    """Return ``(line, text)`` for each string literal, f-string parts included, that
    says "(s)", "(es)" or "(y/ies)"; docstrings are left out."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and HEDGED.search(node.value)
    ]


def hedged_template_text(text: str) -> list[str]:
    """Return the hedged words of a template: in its markup, and in the string literals
    of its scripts (``esc(s)`` in a script is code, not words)."""
    text = re.sub(r"{% comment %}.*?{% endcomment %}|{#.*?#}", "", text, flags=re.S)
    found = []
    for script in re.findall(r"<script\b.*?</script>", text, flags=re.S):
        for literal in re.findall(r"\"[^\"\n]*\"|'[^'\n]*'|`[^`]*`", script):
            found += [m.group(0) for m in HEDGED.finditer(literal)]
    markup = re.sub(r"<script\b.*?</script>", "", text, flags=re.S)
    return found + [m.group(0) for m in HEDGED.finditer(markup)]


def test_the_scan_finds_what_it_is_for():
    source = (
        '"""Return the row(s)."""\n'
        "def f(n, s):\n"
        '    """Count the entr(y/ies)."""\n'
        "    x = g(s)  # row(s)\n"
        '    return f"Sealed {n} entr(y/ies)", "2 mismatch(es)", "3 rows"\n'
    )
    assert sorted(hedged_strings(source)) == [(5, " entr(y/ies)"), (5, "2 mismatch(es)")]
    template = (
        "{% comment %}says error(s){% endcomment %}<p>{{ n }} error(s)</p>\n"
        '<script>function esc(s) { return "x"; } const t = `${n} row(s)`;</script>'
    )
    assert sorted(hedged_template_text(template)) == ["r(s)", "w(s)"]


def test_no_message_hedges_its_plural():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in _python_files()
        for line, text in hedged_strings(path.read_text())
    ]
    templates = [
        path
        for source in SOURCES
        for path in sorted((ROOT / source).rglob("*"))
        if "templates" in path.parts and path.suffix in {".html", ".txt"}
    ]
    assert templates, "no templates found: the scan looks in the wrong place"
    for path in templates:
        words = hedged_template_text(path.read_text())
        found += [f"{path.relative_to(ROOT)}: {word!r}" for word in words]
    assert not found, "Say '1 row' / '2 rows' (pms_backend.plurals), not 'row(s)':\n" + "\n".join(
        found
    )
