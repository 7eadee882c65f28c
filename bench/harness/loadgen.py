"""Load generation: what to load (``Load``) and wrk, which loads it (a Lua script that
reports its figures as one JSON line)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.common import TMP_DIR, BenchError
from harness.servers import Server
from harness.stats import children_cpu

LUA_SCRIPT = r"""
local paths = {%(paths)s}
local n = #paths
local i = 0
%(headers)s
%(request)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "p50_us": %%d, ' ..
    '"p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%.1f, "errors": ' ..
    '{"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""

# The default request of LUA_SCRIPT: GET the paths round robin.
LUA_GET = """request = function()
  i = i % n + 1
  return wrk.format("GET", paths[i])
end"""


@dataclass
class Load:
    """One thing to load: paths (round robin), an API key, a header to expect when warm.

    ``request_lua`` replaces the default ``request`` function of the wrk script (POSTs,
    bodies made per request); ``probe`` then checks the server instead of a GET of the
    first path. ``server`` and ``connections`` override the run's for this load.
    ``runner(seconds)``, if set, replaces wrk altogether (another load generator, e.g.
    pgbench) and returns the same fields as a wrk round.
    """

    name: str
    paths: list[str]
    key: str | None = None
    expect_header: tuple[str, str] | None = None
    request_lua: str = ""
    probe: Callable[[Server], None] | None = None
    server: Server | None = None
    connections: int | None = None
    runner: Callable[[int], dict[str, Any]] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Api-Key {self.key}"} if self.key else {}


def write_script(load: Load) -> Path:
    """The wrk Lua script of ``load`` (its paths round robin, or its own ``request``)."""
    script = TMP_DIR / f"wrk-{os.getpid()}-{re.sub(r'[^a-z0-9]+', '-', load.name.lower())}.lua"
    lua_headers = "".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in load.headers.items()
    )
    script.write_text(
        LUA_SCRIPT
        % {
            "paths": ", ".join(json.dumps(p) for p in load.paths),
            "headers": lua_headers,
            "request": load.request_lua or LUA_GET,
        }
    )
    return script


def run(
    server: Server, script: Path, seconds: int, *, threads: int, connections: int
) -> dict[str, Any]:
    """One round of wrk with ``script`` against ``server``: the figures of a round, with
    the CPU time per request of the server, its database and wrk itself."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        server.base,
    ]
    cpu_before, db_cpu_before = server.cpu_seconds(), server.db_cpu_seconds()
    load_cpu_before = children_cpu()
    with subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise BenchError(f"wrk ran over {seconds + 60} s") from None
        # The load generator's own CPU time: it must not be the bottleneck.
        load_cpu = children_cpu() - load_cpu_before
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    cpu = server.cpu_seconds() - cpu_before
    db_cpu = server.db_cpu_seconds() - db_cpu_before
    match = re.search(r"^BENCH_JSON (.*)$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or not match:
        raise BenchError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    raw = json.loads(match.group(1))
    elapsed = raw["duration_us"] / 1e6
    return {
        "rps": raw["requests"] / elapsed,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "requests": raw["requests"],
        "errors": sum(raw["errors"].values()),
        "seconds": elapsed,
        "cpu_ms": cpu * 1000 / max(raw["requests"], 1),
        "db_cpu_ms": max(db_cpu, 0) * 1000 / max(raw["requests"], 1),
        "load_cpu_ms": load_cpu * 1000 / max(raw["requests"], 1),
        "status_errors": raw["errors"]["status"],
    }
