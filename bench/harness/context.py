"""The run's state, as every benchmark sees it (``Context``): the command line's options,
the servers it started, the rows measured; and the registry of benchmarks.

A benchmark is a function decorated with ``@benchmark("name")`` in a module
``bench/bench_<name>.py`` that receives the run's ``Context``; it measures with
``ctx.measure(server, [Load(...), ...])`` or ``ctx.run_timed(...)`` and records rows with
``ctx.row(...)``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import loadgen
from harness.common import PYTHON, ROOT, TMP_DIR, BenchError, counted, http_get, log
from harness.loadgen import Load
from harness.servers import AppServer, Server, ceiling_command
from harness.stats import aggregate, ratio_to


@dataclass
class Context:
    args: argparse.Namespace
    base_env: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    current: str = ""
    load_before: str = ""
    servers: list[Server] = field(default_factory=list)

    # Durations -----------------------------------------------------------------------------
    @property
    def duration(self) -> int:
        """Seconds per round of one load."""
        return self.args.duration or 2

    @property
    def rounds(self) -> int:
        return self.args.rounds or (2 if self.args.quick else 8)

    @property
    def warmup(self) -> int:
        return self.args.warmup if self.args.warmup is not None else (1 if self.args.quick else 2)

    # Processes -----------------------------------------------------------------------------
    def env_for(self, db_url: str) -> dict[str, str]:
        return {**self.base_env, "DATABASE_URL": db_url}

    def manage(self, db_url: str, *argv: str, timeout: float = 600) -> str:
        """Run ``manage.py argv`` against ``db_url``; return stdout."""
        result = subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", *argv],
            cwd=ROOT,
            env=self.env_for(db_url),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise BenchError(f"manage.py {' '.join(argv)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def run_timed(self, db_url: str, *argv: str, timeout: float = 600) -> dict[str, float]:
        """Run ``manage.py argv``; return its wall time (s) and peak RSS (MB)."""
        output_path = TMP_DIR / f"timed-{os.getpid()}.log"
        started = time.perf_counter()
        with open(output_path, "wb") as output_file:
            process = subprocess.Popen(  # noqa: S603
                [PYTHON, "manage.py", *argv],
                cwd=ROOT,
                env=self.env_for(db_url),
                stdout=output_file,
                stderr=subprocess.STDOUT,
            )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                raise BenchError(f"manage.py {' '.join(argv)} ran over {timeout:.0f} s")
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output = output_path.read_text(errors="replace")
        if process.returncode != 0:
            raise BenchError(f"manage.py {' '.join(argv)} failed:\n{output[-3000:]}")
        # Linux reports ru_maxrss in KiB.
        return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "output": output}

    def api_key(self, db_url: str, scopes: str) -> str:
        out = self.manage(
            db_url, "generate_api_key", "--name", f"bench {scopes}", "--scopes", scopes
        )
        return out.strip().splitlines()[-1].strip()

    def server(
        self, db_url: str, *, label: str = "", extra_env: dict[str, str] | None = None
    ) -> Server:
        log_path = TMP_DIR / f"server-{label or self.current or 'bench'}.log"
        server = Server({**self.env_for(db_url), **(extra_env or {})}, log_path)
        self.servers.append(server)
        log(
            f"starting scripts/start.sh on 127.0.0.1:{server.port} "
            f"({counted(self.args.workers, 'worker process', 'worker processes')})"
        )
        server.start()
        return server

    def ceiling_server(self, server: str = "gunicorn") -> AppServer:
        """The framework's ceiling page served by ``server`` with the run's worker count."""
        app = AppServer(
            f"ceiling-{server}",
            ceiling_command(server, self.args.workers),
            TMP_DIR / f"server-ceiling-{server}.log",
        )
        self.servers.append(app)
        workers = counted(self.args.workers, "worker process", "worker processes")
        log(f"starting the ceiling page on {server} ({workers})")
        app.start()
        return app

    def stop_servers(self) -> None:
        while self.servers:
            self.servers.pop().stop()

    # Load ----------------------------------------------------------------------------------
    def measure(self, server: Server, loads: list[Load]) -> dict[str, dict[str, Any]]:
        """Load each of ``loads`` with wrk, interleaved in rounds; return results by name.

        Interleaving (A B C A B C ...) exposes every load to the same background noise, so
        ratios between them stay meaningful on a shared machine; each figure is the
        median over the rounds.
        """
        scripts = {}
        for load in loads:
            if load.runner is not None:
                if self.warmup:
                    load.runner(self.warmup)
                continue
            scripts[load.name] = self._prepare(load.server or server, load)
        rounds: dict[str, list[dict[str, Any]]] = {load.name: [] for load in loads}
        for _ in range(self.rounds):
            for load in loads:
                if load.runner is not None:
                    rounds[load.name].append(load.runner(self.duration))
                    continue
                rounds[load.name].append(
                    self._wrk(
                        load.server or server,
                        scripts[load.name],
                        self.duration,
                        connections=load.connections,
                    )
                )
        return {name: aggregate(results) for name, results in rounds.items()}

    def _prepare(self, server: Server, load: Load) -> Path:
        """Check one request, write the wrk script, warm up."""
        if load.probe is not None:
            load.probe(server)
        else:
            status, got, _ = http_get(server.base + load.paths[0], load.headers)
            if status != 200:
                raise BenchError(f"GET {load.paths[0]} answered {status}, expected 200")
        script = self.wrk_script(load)
        if self.warmup:
            self._wrk(server, script, self.warmup, connections=load.connections)
        if load.expect_header:
            name, value = load.expect_header
            _, got, _ = http_get(server.base + load.paths[0], load.headers)
            if got.get(name) != value:
                raise BenchError(
                    f"GET {load.paths[0]}: header {name} is {got.get(name)!r}, expected {value!r}"
                )
        return script

    def wrk_script(self, load: Load) -> Path:
        return loadgen.write_script(load)

    def _wrk(
        self, server: Server, script: Path, seconds: int, *, connections: int | None = None
    ) -> dict[str, Any]:
        return loadgen.run(
            server,
            script,
            seconds,
            threads=self.args.threads,
            connections=connections or self.args.connections,
        )

    # Report --------------------------------------------------------------------------------
    def row(
        self,
        name: str,
        measured: dict[str, Any] | None = None,
        *,
        ratio: float | None = None,
        value: str | None = None,
        target: str | None = None,
        passed: bool | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        row = {"benchmark": self.current, "name": name, **(measured or {}), **extra}
        if ratio is not None:
            row["ratio"] = round(ratio, 3)
        if value is not None:
            row["value"] = value
        if target is not None:
            row["target"] = target
            row["pass"] = bool(passed)
        if measured and measured.get("errors"):
            row["pass"] = False
            row.setdefault("target", "no errors")
        self.rows.append(row)
        summary = ", ".join(
            f"{k}={row[k]}"
            for k in ("rps", "p50_ms", "p99_ms", "ratio", "value", "pass")
            if k in row
        )
        log(f"{name}: {summary}")
        return row

    def rps_ratio_row(
        self, name: str, measured: dict[str, Any], base: dict[str, Any], *, minimum: float
    ) -> dict[str, Any]:
        """A row for a load whose req/s must reach ``minimum`` times ``base``'s."""
        ratio = ratio_to(measured, base, "rps")
        return self.row(
            name, measured, ratio=ratio, target=f">= {minimum:.2f}", passed=ratio >= minimum
        )


# The benchmarks by name, in the order they run by default (bench/run.py imports their
# modules in that order), and the notes each adds under its section of the report.
BENCHMARKS: dict[str, Callable[[Context], None]] = {}
NOTES: dict[str, list[str]] = {}


def benchmark(name: str, *, notes: list[str] | None = None):
    """Register the decorated function as the benchmark ``name`` (its docstring is the
    report's description of the section; ``notes`` the lines under its table)."""

    def register(function: Callable[[Context], None]):
        BENCHMARKS[name] = function
        if notes:
            NOTES[name] = notes
        return function

    return register
