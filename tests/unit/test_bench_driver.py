"""The benchmark driver (bench/run.py) and its parts, without running a benchmark: every
module imports, the driver knows each benchmark the docs name, in the order a run takes
them, and the report renders as it always has."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
# The order of a run without names (the order of the report's sections).
DEFAULT_ORDER = [
    "catalog",
    "seed",
    "orders",
    "security",
    "events",
    "memory",
    "operations",
    "serving",
    "variants",
    "search",
]


@pytest.fixture(scope="module")
def driver():
    """bench/run.py imported as the driver sees itself (bench/ first on the path)."""
    sys.path.insert(0, str(BENCH))
    try:
        run = importlib.import_module("run")
        run.load_benchmark_modules()
        yield run
    finally:
        sys.path.remove(str(BENCH))


def documented_names() -> list[str]:
    """The benchmark names of scripts.md's bench.sh section."""
    text = (ROOT / "scripts.md").read_text()
    section = text.split("## scripts/bench.sh", 1)[1].split("\n## ", 1)[0]
    usage = re.search(r"`NAME` is (.*?)\(default: all", section, re.S).group(1)
    return re.findall(r"`([a-z]+)`", usage)


def test_every_bench_module_imports(driver):
    modules = [p.stem for p in BENCH.glob("bench_*.py")]
    modules += [f"harness.{p.stem}" for p in (BENCH / "harness").glob("*.py")]
    for name in modules:
        importlib.import_module(name)
    assert set(modules) >= {f"bench_{name}" for name in DEFAULT_ORDER}


def test_the_driver_runs_every_documented_benchmark_in_order(driver):
    assert list(driver.BENCHMARKS) == DEFAULT_ORDER
    assert sorted(documented_names()) == sorted(DEFAULT_ORDER)
    header = (ROOT / "scripts" / "bench.sh").read_text()
    listed = re.search(r"^# NAME: (.*?) \(default: all", header, re.M).group(1)
    assert listed.split(", ") == DEFAULT_ORDER


def test_the_command_line(driver):
    args = driver.parse_args(["orders", "events", "--quick", "--workers", "3"])
    assert args.benchmarks == ["orders", "events"]
    assert (args.quick, args.workers, args.deliveries) == (True, 3, 3_000)
    assert driver.parse_args([]).deliveries == 10_000
    with pytest.raises(SystemExit):
        driver.parse_args(["no-such-benchmark"])
    with pytest.raises(SystemExit):
        driver.parse_args(["--database", "pms"])


def test_help_names_every_benchmark():
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: scripts/bench.sh")
    listed = re.search(r"run only these \((.*?)\)", " ".join(result.stdout.split())).group(1)
    assert listed.split(", ") == DEFAULT_ORDER


def test_a_report_renders_as_it_was_written(driver):
    from harness.report import render_markdown

    report = json.loads((BENCH / "results" / "2026-11-26.json").read_text())
    assert render_markdown(report) == (BENCH / "results" / "2026-11-26.md").read_text()


def test_write_report_keeps_other_sections_and_adds_description_and_notes(
    driver, tmp_path, monkeypatch
):
    from harness import report as report_module
    from harness.context import NOTES, Context

    # A run of catalog earlier that day: its section stays.
    earlier = json.loads((BENCH / "results" / "2026-11-26.json").read_text())
    earlier["benchmarks"] = {"catalog": earlier["benchmarks"]["catalog"]}
    (tmp_path / "2026-01-02.json").write_text(json.dumps(earlier))
    monkeypatch.setattr(report_module, "RESULTS_DIR", tmp_path)
    args = driver.parse_args(["seed", "--quick"])
    ctx = Context(args=args, base_env={}, current="seed")
    ctx.row("seed wall time", value="1.0 s", target="< 60 s", passed=True)
    started = report_module.dt.datetime(2026, 1, 2, 10, 0, tzinfo=report_module.dt.UTC)

    written = report_module.write_report(ctx, ["seed"], started)

    assert list(written["benchmarks"]) == ["catalog", "seed"]
    assert written["benchmarks"]["catalog"] == earlier["benchmarks"]["catalog"]
    seed = written["benchmarks"]["seed"]
    assert seed["description"].startswith("``seed_database --products 100000``")
    assert seed["notes"] == NOTES["seed"]
    assert seed["rows"][0]["pass"] is True and written["passed"] is True
    markdown = (tmp_path / "2026-01-02.md").read_text()
    assert (tmp_path / "latest.md").read_text() == markdown
    assert "| seed wall time | — | — | — | 1.0 s | < 60 s | pass | — |" in markdown


def test_ratios_pair_the_rounds_that_ran_side_by_side(driver):
    from harness.stats import aggregate, ratio_to

    def rounds(*rps):
        rows = [
            {"rps": r, "p50_ms": 1.0, "p90_ms": 1.0, "p99_ms": 2.0, "max_ms": 3.0}
            | {"cpu_ms": 0.5, "db_cpu_ms": 0.1, "requests": 10, "errors": 0}
            for r in rps
        ]
        return aggregate(rows)

    base, measured = rounds(100, 200, 100), rounds(50, 50)
    assert measured["rps"] == 50 and measured["requests"] == 20
    # Each round of ``measured`` against the mean of the base rounds around it: 50/150.
    assert ratio_to(measured, base, "rps") == pytest.approx(1 / 3)


def test_post_expecting_sends_the_key_and_names_an_unexpected_answer(driver):
    """The benchmarks' probes POST through harness.common.post_expecting: the key, JSON and
    an Idempotency-Key reach the server; an answer other than the one expected stops the
    run naming it."""
    import http.server
    import threading

    from harness.common import BenchError, post_expecting

    seen: list[tuple[dict, bytes]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((dict(self.headers), body))
            self.send_response(201 if len(seen) == 1 else 409)
            self.end_headers()
            self.wfile.write(b'{"code": "insufficient_stock"}')

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api/v1/orders/"
    try:
        body = post_expecting(url, "pms_key", {"items": [1]}, expect=201, Idempotency_Key="k-1")
        assert body == b'{"code": "insufficient_stock"}'
        headers, sent = seen[0]
        assert headers["Authorization"] == "Api-Key pms_key"
        assert headers["Idempotency-Key"] == "k-1"
        assert json.loads(sent) == {"items": [1]}
        with pytest.raises(BenchError, match=r"answered 409, expected 201.*insufficient_stock"):
            post_expecting(url, "pms_key", {}, expect=201)
    finally:
        server.shutdown()
        server.server_close()
