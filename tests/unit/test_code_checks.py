"""The scripts behind scripts/check.sh that are the project's own: the file-level import
cycle finder and the complexity gate."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "scripts" / "ci"


def _load(name: str):
    sys.path.insert(0, str(CI))  # import_cycles imports its sibling import_graph
    try:
        spec = importlib.util.spec_from_file_location(name, CI / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(CI))


def test_cycles_are_found_with_a_shortest_example():
    cycles = _load("import_cycles")
    edges = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},
        "d": {"e"},
        "e": {"d"},
        "f": {"a"},
        "g": set(),
    }

    found = cycles.strongly_connected(sorted(edges), edges)

    assert sorted(found) == [["a", "b", "c"], ["d", "e"]]
    assert cycles.shortest_cycle("a", {"a", "b", "c"}, edges) == ["a", "b", "c", "a"]
    assert cycles.strongly_connected(["x", "y"], {"x": {"y"}}) == []


def test_the_app_graph_knows_the_allowed_direction():
    graph = _load("import_graph")

    assert graph.allowed("orders.services", "inventory.services")
    assert graph.allowed("inventory.services", "catalog.models")
    assert graph.allowed("webhooks.services", "pms_backend.events.models")
    assert graph.allowed("pms_backend.urls", "catalog.api.urls")  # the composition root
    assert not graph.allowed("catalog.admin", "inventory.models")
    assert not graph.allowed("pms_backend.events.relay", "webhooks.services")
    assert not graph.allowed("audit.services", "orders.models")
    assert not graph.allowed("webhooks.services", "orders.models")


def test_the_complexity_gate_names_a_function_above_the_limit(tmp_path):
    branches = "\n".join(f"    if x == {n}:\n        return {n}" for n in range(16))
    source = tmp_path / "module.py"
    source.write_text(f"def simple(x):\n    return x\n\n\ndef branchy(x):\n{branches}\n")

    def gate(limit: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(CI / "complexity.py"), "--max", str(limit), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )

    refused = gate(15)
    assert refused.returncode == 1
    assert "branchy has complexity 17" in refused.stdout and "simple" not in refused.stdout
    assert gate(17).returncode == 0
