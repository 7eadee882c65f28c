"""Every environment variable the code reads is documented: in README's configuration
table, or in a document that section links to (docs/deployment.md, scripts.md).

The names are found by reading the code (settings, the web tier's launcher, gunicorn's
configuration, every module of the platform and the domains, the scripts), so a new
variable without a line in the docs fails here.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON_SOURCES = ["pms_backend", "catalog", "inventory", "orders", "audit", "webhooks"]
# The operator's scripts (scripts/ci/ is CI's own machinery).
SHELL_SOURCES = ["scripts/*.sh", "scripts/lib/*.sh"]

# Read, but not configuration: set by our own code for the processes it starts.
INTERNAL = {
    "DJANGO_SETTINGS_MODULE",  # every entry point sets it
    "PMS_BEHIND_FRONT",  # server.py tells its gunicorn processes they sit behind nginx
}
# The shell's own variables.
SHELL_BUILTINS = {
    "PWD",
    "HOME",
    "PATH",
    "UID",
    "EUID",
    "BASH_SOURCE",
    "OSTYPE",
    "USER",
    "LANG",
    "SECONDS",
    "TMPDIR",
}

# ``env.str("NAME")``, ``env("NAME")``, ``os.environ.get("NAME")``, ``os.getenv("NAME")``,
# and the launcher's ``env.get("NAME")`` / ``_whole(env, "NAME", …)`` on a copy of it.
_READER = re.compile(r"env(\.\w+)?|os\.environ(\.(get|setdefault|pop))?|os\.getenv")


def _name_nodes(node: ast.AST):
    """The argument nodes of ``node`` that name an environment variable, if it reads one."""
    if isinstance(node, ast.Call):
        args = node.args
        if args and _READER.fullmatch(ast.unparse(node.func)):
            yield args[0]
        for before, arg in itertools.pairwise(args):
            if ast.unparse(before) in ("env", "dict(env)", "os.environ"):
                yield arg
    elif (
        isinstance(node, ast.Subscript)
        and ast.unparse(node.value) == "os.environ"
        and isinstance(node.ctx, ast.Load)
    ):
        yield node.slice


def _names_in_python(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        found.value
        for node in ast.walk(tree)
        for found in _name_nodes(node)
        if isinstance(found, ast.Constant)
        and isinstance(found.value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9_]+", found.value)
    }


def _names_in_shell(path: Path) -> set[str]:
    text = path.read_text()
    read = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", text))
    return read - SHELL_BUILTINS


def variables_read() -> dict[str, set[str]]:
    where: dict[str, set[str]] = {}
    for folder in PYTHON_SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for name in _names_in_python(path):
                where.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    for pattern in SHELL_SOURCES:
        for path in ROOT.glob(pattern):
            for name in _names_in_shell(path):
                where.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return {name: files for name, files in where.items() if name not in INTERNAL}


def documentation() -> str:
    """README's configuration section and every document it links to."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    linked = {
        target.split("#", 1)[0]
        for target in re.findall(r"\]\(([^)\s]+)\)", section)
        if not target.startswith(("http:", "https:", "#"))
    }
    return "\n".join([section, *((ROOT / path).read_text() for path in sorted(linked))])


def test_the_scan_finds_the_variables_it_should():
    found = variables_read()
    for name in ("DATABASE_URL", "PMS_BLIND_INDEX_KEY", "WEB_TIMEOUT", "NGINX_WORKERS"):
        assert name in found, name
    assert "PMS_BEHIND_FRONT" not in found
    assert len(found) > 50


def test_every_environment_variable_is_documented():
    docs = documentation()

    missing = {
        name: sorted(files)
        for name, files in variables_read().items()
        if not re.search(rf"(?<![A-Z0-9_]){name}(?![A-Z0-9_])", docs)
    }

    assert not missing, f"read by the code, documented nowhere README links to: {missing}"


def test_the_secrets_that_guard_the_data_are_in_readmes_own_table():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| `")}

    for name in ("DJANGO_SECRET_KEY", "PMS_ENCRYPTION_KEYS", "PMS_BLIND_INDEX_KEY"):
        assert f"`{name}`" in rows, name
    assert "`PMS_AUDIT_CHAIN_KEY`" in rows
