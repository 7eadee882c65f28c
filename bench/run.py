"""Benchmark driver behind ``scripts/bench.sh``: parses the command line, runs the chosen
benchmarks and writes the report (``bench/results/<date>.json``, ``<date>.md``,
``latest.md``).

Each benchmark lives in a file of its own, ``bench/bench_<name>.py``: a function
decorated with ``@benchmark("name")`` (``harness.context``) that receives the run's
``Context``. The shared machinery is the ``harness`` package beside this file: the
run's context and registry (``context``), servers (``servers``), load generation
(``loadgen``), statistics (``stats``), databases and Redis (``services``), seeded data
(``fixtures``), event delivery (``events``, ``ws_subscribers``) and the report
(``report``). Adding a benchmark is adding such a file (and its name to ``BENCHMARK_MODULES``
for its place in the default order).

Only the standard library, plus psycopg and redis (websockets for the events benchmark)
from the project's venv.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import importlib
import os
import secrets
import shutil
import signal
import sys
from pathlib import Path

from harness.common import TMP_DIR, BenchError, log
from harness.context import BENCHMARKS, Context
from harness.report import load_average, render_markdown, write_report
from harness.services import BENCH_DATABASE, check_redis_url
from harness.ws_subscribers import ws_subscribers_main

# The benchmarks in the order a run without names runs them.
BENCHMARK_MODULES = (
    "bench_catalog",
    "bench_seed",
    "bench_orders",
    "bench_security",
    "bench_events",
    "bench_memory",
    "bench_operations",
    "bench_serving",
    "bench_variants",
    "bench_search",
)


def load_benchmark_modules() -> None:
    """Import the benchmark modules (each registers its benchmark): those of
    ``BENCHMARK_MODULES`` in that order, then any other ``bench/bench_*.py``."""
    others = sorted(p.stem for p in Path(__file__).resolve().parent.glob("bench_*.py"))
    for module in (*BENCHMARK_MODULES, *(m for m in others if m not in BENCHMARK_MODULES)):
        importlib.import_module(module)


def parse_args(argv: list[str]) -> argparse.Namespace:
    load_benchmark_modules()
    parser = argparse.ArgumentParser(
        prog="scripts/bench.sh",
        description="Run the benchmarks against the production server and write a report "
        "to bench/results/. Exit status 0 when every target is met, 3 when one is missed.",
    )
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar="NAME",
        help=f"run only these ({', '.join(BENCHMARKS)}); default all",
    )
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "2")),
        help="server processes (default $WEB_CONCURRENCY or 2)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument(
        "--duration",
        type=int,
        default=None,
        help="seconds per round of each load (default 2)",
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds per load (default 8, quick 2)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="warm-up seconds per load (default 2, quick 1)"
    )
    parser.add_argument("--small", type=int, default=1_000, help="products, first pass")
    parser.add_argument("--large", type=int, default=100_000, help="products, second pass")
    parser.add_argument(
        "--database",
        default=os.environ.get("BENCH_DATABASE", "pms_bench"),
        help="PostgreSQL database to (re)create (default pms_bench)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=4,
        help="events: Celery worker processes (default 4)",
    )
    parser.add_argument(
        "--deliveries",
        type=int,
        default=None,
        help="events: webhook deliveries for the worker memory check (default 10000, quick 3000)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown:
        named = "benchmark" if len(unknown) == 1 else "benchmarks"
        parser.error(f"unknown {named} {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    if args.deliveries is None:
        args.deliveries = 3_000 if args.quick else 10_000
    if not BENCH_DATABASE.fullmatch(args.database):
        parser.error(f"--database must be pms_bench or pms_bench_<suffix>, not {args.database!r}")
    return args


def base_env(workers: int, redis_url: str) -> dict[str, str]:
    """The environment of every process a benchmark starts: this one's without the
    project's settings, plus production mode on loopback with fresh keys."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PMS_", "DATABASE_", "REDIS_", "CELERY_"))
    }
    env.update(
        {
            # Production mode, plain HTTP on loopback.
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "PMS_ENCRYPTION_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
            "PMS_AUDIT_CHAIN_KEY": secrets.token_urlsafe(32),
            "REDIS_URL": redis_url,
            "WEB_CONCURRENCY": str(workers),
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            # One client on loopback is every client here: keep the limiter's work in the
            # measurement, but never let it refuse a request.
            "PMS_RATE_LIMIT_IP": "1000000000/minute",
            "PMS_RATE_LIMIT_KEY": "1000000000/minute",
        }
    )
    return env


def run_one(ctx: Context, name: str) -> None:
    """Run the benchmark ``name``; stop its servers whatever happens (showing the log of
    one that died)."""
    ctx.current = name
    log(f"benchmark {name}" + (" (quick)" if ctx.args.quick else ""))
    try:
        BENCHMARKS[name](ctx)
    finally:
        for server in ctx.servers:
            if server.process and server.process.poll() is not None:
                log(f"server log:\n{server.log_tail()}")
        ctx.stop_servers()


def finish(ctx: Context, done: list[str], started: dt.datetime) -> None:
    """Stop what is left, remove the run's scratch files, write and print the report of
    the benchmarks that ran."""
    ctx.stop_servers()
    for leftover in [*TMP_DIR.glob(f"wrk-{os.getpid()}-*.lua"), *TMP_DIR.glob("timed-*.log")]:
        leftover.unlink(missing_ok=True)
    if done:
        report = write_report(ctx, done, started)
        print(render_markdown({**report, "benchmarks": {n: report["benchmarks"][n] for n in done}}))
        log(f"report: bench/results/{started.date().isoformat()}.json / .md, latest.md")


def on_signal(signum, frame):
    log(f"interrupted ({signal.Signals(signum).name}): stopping")
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    names = args.benchmarks or list(BENCHMARKS)
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed (scripts/bench.sh installs it)")
    TMP_DIR.mkdir(parents=True, exist_ok=True)
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
    check_redis_url(redis_url)
    ctx = Context(args=args, base_env=base_env(args.workers, redis_url))
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = dt.datetime.now(dt.UTC)
    ctx.load_before = load_average()
    done: list[str] = []
    try:
        for name in names:
            run_one(ctx, name)
            done.append(name)
    finally:
        finish(ctx, done, started)
    return 0 if all(row.get("pass", True) for row in ctx.rows) else 3


if __name__ == "__main__":
    if sys.argv[1:2] == ["_ws"]:
        sys.exit(ws_subscribers_main(sys.argv[2:]))
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
