"""Memory benchmark (issue "Proof"): does a process's resident memory stay flat under load?

Targets: the server's RSS (summed over its processes) after 50,000 requests within 1.2x of
its RSS after 1,000; the Celery worker's (main, pool, beat) after 10,000 tasks within 1.2x
of after 1,000. ``--quick``: 5,000 requests and 2,000 tasks.

Server: ``scripts/start.sh`` loaded by wrk with a mix of what a shop sends (cached and
uncached lists, details, stock, receipts, 404s, 401s), in chunks that wrk stops after an
exact number of responses; memory is read between chunks. Worker: ``scripts/worker.sh
--beat`` delivering webhooks for stock receipts made through the API to a receiver in this
process; tasks are counted by the worker's own metrics (all task names summed), deliveries
at the receiver; memory is read as each mark is crossed.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from harness.common import TMP_DIR, BenchError, free_port, http_get, log, wait_for
from harness.context import Context, benchmark
from harness.events import WebhookReceiver, create_webhook_endpoint, generate_events
from harness.fixtures import seeded_database
from harness.servers import Server, Worker
from harness.services import drop_database, mark_events_dispatched, vacuum_analyze

MEMORY_MAX_RATIO = 1.2
MEMORY_FIRST_MARK = 1_000

NOTES = [
    "RSS = resident set size from /proc/<pid>/stat, summed over the process group "
    "(server: the uvicorn supervisor and its worker processes; worker: the Celery main "
    "process, its prefork pool and the embedded beat). USS (private memory, from "
    "smaps_rollup) per process is in the JSON.",
    "Server mix, per 58 requests (wrk -t1, the run's connections, round robin): 14 cached "
    "product list pages (storefront key, pages 1-5), 19 cached details (20 products), 3 "
    "category lists, 6 uncached list pages (admin key), 6 stock status, 2 batch stock "
    "reads, 2 stock receipts (POST, admin key), 2 product 404s, 1 unknown-path 404, 1 "
    "request without a key and 1 with a wrong key (401s; the failed-authentication limit "
    "raised, as the other limits are), 1 ping. Memory is read between wrk chunks (server "
    "idle, 0.5 s after the last response); wrk stops each chunk after an exact number of "
    "responses.",
    "Worker: concurrency 4 (--worker-concurrency) with beat; events are stock receipts "
    "POSTed through the API on a clock, in chunks that wait for the deliveries to catch "
    "up; one webhook endpoint (stock.updated) pointing at a threaded receiver in the "
    "driver. Tasks = the worker's pms_celery_tasks_total summed over every task name and "
    "outcome (dispatch, delivery and the periodic jobs); memory is read when a count "
    "crosses each mark (sampled every 0.5 s).",
]

# One request per entry, formatted once per thread in init(); request() returns them round
# robin. response() tallies status codes and stops the thread after LIMIT responses.
LUA_MIX = r"""
local limit = %(limit)d
local reqs = {}
local n = 0
local i = 0
local count = 0
statuses = {}
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

init = function(args)
  local defs = %(defs)s
  for _, d in ipairs(defs) do
    local headers = {["Host"] = "%(host)s"}
    for k, v in pairs(d.headers or {}) do headers[k] = v end
    n = n + 1
    reqs[n] = wrk.format(d.method, d.path, headers, d.body)
  end
end

request = function()
  i = i %% n + 1
  return reqs[i]
end

response = function(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  count = count + 1
  if count == limit then
    -- wrk's main thread sleeps out -d whatever its threads do: the driver, reading this
    -- line, interrupts it (SIGINT), and wrk reports as at the end of -d.
    wrk.thread:stop()
    io.write("BENCH_LIMIT\n")
    io.flush()
  end
end

done = function(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses") or {}) do merged[k] = (merged[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(merged) do parts[#parts + 1] = string.format('"%%s": %%d', k, v) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"errors": {"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}, ' ..
    '"statuses": {%%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
end
"""


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal for ASCII


def _lua_defs(entries: list[dict[str, Any]]) -> str:
    items = []
    for entry in entries:
        fields = [
            f"method = {_lua_string(entry['method'])}",
            f"path = {_lua_string(entry['path'])}",
        ]
        if entry.get("headers"):
            pairs = ", ".join(
                f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in entry["headers"].items()
            )
            fields.append(f"headers = {{{pairs}}}")
        if entry.get("body"):
            fields.append(f"body = {_lua_string(entry['body'])}")
        items.append("{" + ", ".join(fields) + "}")
    return "{\n    " + ",\n    ".join(items) + "\n  }"


# --- Memory of a process group ------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:100]


def _uss_mb(pid: int) -> float | None:
    """Private memory (Private_Clean + Private_Dirty) of ``pid`` in MB, or None."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    kib = 0
    for line in text.splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            kib += int(line.split()[1])
    return kib / 1024


def group_memory(pgid: int) -> dict[int, dict[str, Any]]:
    """RSS (and USS) in MB of every process of the process group ``pgid``, by pid."""
    import os

    page = os.sysconf("SC_PAGE_SIZE")
    found: dict[int, dict[str, Any]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) != pgid:
            continue
        pid = int(stat.parent.name)
        found[pid] = {
            "rss_mb": round(int(fields[21]) * page / 2**20, 1),
            "uss_mb": None if (uss := _uss_mb(pid)) is None else round(uss, 1),
            "cmd": _cmdline(pid),
        }
    return found


def _total(sample: dict[int, dict[str, Any]]) -> float:
    return round(sum(p["rss_mb"] for p in sample.values()), 1)


def _per_process(first: dict, last: dict) -> tuple[str, float, list[dict[str, Any]]]:
    """A text of each process's RSS first → last, the largest per-process ratio, and the
    rows for the JSON."""
    rows, parts, worst = [], [], 0.0
    for pid in sorted(set(first) | set(last)):
        a, b = first.get(pid), last.get(pid)
        ratio = b["rss_mb"] / a["rss_mb"] if a and b and a["rss_mb"] else None
        if ratio is not None:
            worst = max(worst, ratio)
        rows.append(
            {
                "pid": pid,
                "cmd": (a or b)["cmd"],
                "first": a and {k: a[k] for k in ("rss_mb", "uss_mb")},
                "last": b and {k: b[k] for k in ("rss_mb", "uss_mb")},
                "ratio": None if ratio is None else round(ratio, 3),
            }
        )
        parts.append(
            f"{a['rss_mb'] if a else 'new'} → {b['rss_mb'] if b else 'gone'}"
            + ("" if ratio is None else f" ({ratio:.2f}x)")
        )
    return "; ".join(parts), worst, rows


# --- Server -------------------------------------------------------------------------------


def _wrk_chunk(ctx: Context, server: Server, defs: str, limit: int) -> dict[str, Any]:
    import re
    import subprocess

    script = TMP_DIR / f"wrk-mem-{limit}-{time.monotonic_ns()}.lua"
    script.write_text(LUA_MIX % {"limit": limit, "defs": defs, "host": f"127.0.0.1:{server.port}"})
    command = [
        "wrk",
        "-t1",
        f"-c{ctx.args.connections}",
        "-d600s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        server.base,
    ]
    try:
        with subprocess.Popen(  # noqa: S603
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as process:
            lines = []
            for line in process.stdout:
                lines.append(line)
                if line.strip() == "BENCH_LIMIT":
                    process.send_signal(signal.SIGINT)
            stderr = process.stderr.read()
            returncode = process.wait(60)
    finally:
        script.unlink(missing_ok=True)
    stdout = "".join(lines)
    match = re.search(r"^BENCH_JSON (.*)$", stdout, re.MULTILINE)
    if returncode != 0 or not match:
        raise BenchError(f"wrk failed:\n{stdout}\n{stderr}")
    return json.loads(match.group(1))


def _server_mix(
    storefront: str, admin: str, ids: list[int], stocked: list[int]
) -> list[dict[str, Any]]:
    sf = {"Authorization": f"Api-Key {storefront}"}
    ad = {"Authorization": f"Api-Key {admin}"}
    write = {**ad, "Content-Type": "application/json"}
    mix: list[dict[str, Any]] = []

    def get(path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return {"method": "GET", "path": path, "headers": headers or {}}

    batch = ",".join(str(pk) for pk in stocked[:20])
    # 58 entries, interleaved so that every stretch of the rotation is a similar mix.
    for k in range(2):
        for j in range(7):
            mix.append(get(f"/api/v1/products/?page_size=20&page={(k * 7 + j) % 5 + 1}", sf))
            mix.append(get(f"/api/v1/products/{ids[(k * 7 + j) % len(ids)]}/", sf))
        for j in range(3):
            mix.append(get(f"/api/v1/products/?page_size=20&page={k * 3 + j + 1}", ad))
            mix.append(get(f"/api/v1/products/{stocked[(k * 3 + j) % len(stocked)]}/stock/", sf))
        mix.append(
            {
                "method": "POST",
                "path": "/api/v1/inventory/movements/",
                "headers": write,
                "body": json.dumps({"product": stocked[k], "quantity": 1, "kind": "receipt"}),
            }
        )
        mix.append(get(f"/api/v1/stock/?products={batch}", sf))
        mix.append(get("/api/v1/products/999999999/", sf))
    for j in range(5):
        mix.append(get(f"/api/v1/products/{ids[(14 + j) % len(ids)]}/", sf))
    mix += [
        get("/api/v1/categories/?page_size=50", sf),
        get("/api/v1/categories/?page_size=50", sf),
        get("/api/v1/categories/?page_size=50", sf),
        get("/api/v1/no-such-thing/", sf),
        get("/api/v1/products/"),
        get("/api/v1/products/", {"Authorization": "Api-Key pms_wrong_not_a_real_key"}),
        get("/api/v1/ping/"),
    ]
    return mix


def _check_mix(server: Server, mix: list[dict[str, Any]]) -> dict[str, int]:
    """Send each request of the mix once; return the count of each status."""
    seen: dict[str, int] = {}
    for entry in mix:
        request = urllib.request.Request(  # noqa: S310 (127.0.0.1 only)
            server.base + entry["path"],
            data=entry["body"].encode() if entry.get("body") else None,
            method=entry["method"],
            headers=entry.get("headers") or {},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        if status not in (200, 201, 401, 404):
            raise BenchError(f"{entry['method']} {entry['path']} answered {status}")
        seen[str(status)] = seen.get(str(status), 0) + 1
    return seen


def _measure_server(
    ctx: Context, server: Server, storefront: str, admin: str, stocked: list[int]
) -> None:
    total_wanted = 5_000 if ctx.args.quick else 50_000
    status, _, body = http_get(
        server.base + "/api/v1/products/?page_size=20", {"Authorization": f"Api-Key {storefront}"}
    )
    ids = [p["id"] for p in json.loads(body)["results"]] if status == 200 else []
    if not ids:
        raise BenchError(f"the storefront list answered {status} with no products")
    mix = _server_mix(storefront, admin, ids, stocked)
    expected = _check_mix(server, mix)
    log(f"request mix of {len(mix)}: statuses {expected}")
    marks = _server_marks(total_wanted)
    started = time.perf_counter()
    load = _ServerLoad(ctx, server, _lua_defs(mix), done=len(mix), statuses=dict(expected))
    samples = {mark: load.until(mark) for mark in marks}
    seconds = time.perf_counter() - started
    first, last = samples[MEMORY_FIRST_MARK], samples[marks[-1]]
    ratio = _total(last) / _total(first)
    text, worst, processes = _per_process(first, last)
    statuses = load.statuses
    unexpected = {k: v for k, v in statuses.items() if k not in ("200", "201", "401", "404")}
    ctx.row(
        f"server RSS after {MEMORY_FIRST_MARK:,} vs {total_wanted:,} requests"
        + (" (quick)" if ctx.args.quick else ""),
        ratio=ratio,
        value=f"{_total(first)} → {_total(last)} MB over {len(first)} processes "
        f"({ctx.args.workers} uvicorn workers + supervisor; per process {text}); "
        f"{load.done:,} requests in {seconds:.0f} s, statuses {dict(sorted(statuses.items()))}",
        target=f"<= {MEMORY_MAX_RATIO}x",
        passed=ratio <= MEMORY_MAX_RATIO and not unexpected and not load.errors,
        requests=load.done,
        errors=load.errors,
        statuses=statuses,
        max_process_ratio=round(worst, 3),
        rss_mb_by_mark={str(m): _total(s) for m, s in samples.items()},
        processes=processes,
    )


def _server_marks(total: int) -> list[int]:
    """Where to read the server's memory: 1,000, 5,000, 10,000, 20,000, ... up to ``total``."""
    marks = [m for m in (1_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000) if m <= total]
    if marks[-1] != total:
        marks.append(total)
    return marks


class _ServerLoad:
    """The server loaded with the mix in chunks: the responses so far, by status."""

    def __init__(
        self, ctx: Context, server: Server, defs: str, *, done: int, statuses: dict[str, int]
    ) -> None:
        self.ctx, self.server, self.defs = ctx, server, defs
        self.done, self.statuses, self.errors = done, statuses, 0

    def until(self, mark: int) -> dict[int, dict[str, Any]]:
        """Load the server until ``mark`` responses; return its memory then (idle)."""
        if mark > self.done:
            out = _wrk_chunk(self.ctx, self.server, self.defs, mark - self.done)
            self.done += out["requests"]
            self.errors += sum(out["errors"].values())
            for k, v in out["statuses"].items():
                self.statuses[k] = self.statuses.get(k, 0) + v
        time.sleep(0.5)
        sample = group_memory(self.server.process.pid)
        per = ", ".join(f"{p['rss_mb']}" for p in sample.values())
        log(f"server RSS after {self.done:,} requests: {_total(sample)} MB ({per})")
        return sample


# --- Worker -------------------------------------------------------------------------------


def _tasks_done(port: int) -> int | None:
    """pms_celery_tasks_total summed over every label, from the worker's exporter."""
    try:
        status, _, body = http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except OSError:
        return None
    if status != 200:
        return None
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("pms_celery_tasks_total"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _measure_worker(ctx: Context, url: str, server: Server, admin: str, stocked: list[int]) -> None:
    target = 2_000 if ctx.args.quick else 10_000
    # The server phase's receipts are history here: the worker starts on an empty outbox.
    mark_events_dispatched(url)
    receiver = WebhookReceiver()
    metrics_port = free_port()
    worker_env = {
        **ctx.env_for(url),
        "PMS_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "WORKER_CONCURRENCY": str(ctx.args.worker_concurrency),
        "PMS_BEAT_SCHEDULE_FILE": str(TMP_DIR / "celerybeat-schedule-memory"),
        "PMS_METRICS_DIR": str(TMP_DIR / "metrics-memory"),
        "PMS_WORKER_METRICS_PORT": str(metrics_port),
    }
    worker = Worker(worker_env, TMP_DIR / "worker-memory.log")
    ctx.servers.append(worker)
    marks = [m for m in (1_000, 2_000, 5_000, 10_000) if m <= target]
    sampler = _WorkerSampler(worker, receiver, metrics_port, marks)
    try:
        create_webhook_endpoint(server, admin, receiver.url)
        log(f"starting scripts/worker.sh --beat (concurrency {ctx.args.worker_concurrency})")
        worker.start()
        if not wait_for(lambda: _tasks_done(metrics_port) is not None, 30):
            raise BenchError(f"the worker's metrics port did not answer:\n{worker.log_tail()}")
        threading.Thread(target=sampler.run, daemon=True).start()
        started = time.perf_counter()
        generated, failed = _deliver(ctx, server, admin, stocked, sampler, target)
        wait_for(lambda: all(m in sampler.samples for m in marks), 30)
        sampler.stop.set()
        seconds = time.perf_counter() - started
        _worker_row(ctx, sampler, target, generated, failed, seconds)
    finally:
        sampler.stop.set()
        receiver.close()
        worker.stop()
        if worker in ctx.servers:
            ctx.servers.remove(worker)


class _WorkerSampler:
    """Reads the worker's task count every 0.5 s and its memory as the count crosses each
    of ``marks``."""

    def __init__(
        self, worker: Worker, receiver: WebhookReceiver, metrics_port: int, marks: list[int]
    ) -> None:
        self.worker, self.receiver, self.metrics_port = worker, receiver, metrics_port
        self.marks = marks
        self.samples: dict[int, dict[int, dict[str, Any]]] = {}
        self.counts: dict[int, dict[str, int]] = {}
        self.tasks = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            tasks = _tasks_done(self.metrics_port)
            if tasks is not None:
                self.tasks = tasks
                self.sample(tasks)

    def sample(self, tasks: int) -> None:
        for mark in self.marks:
            if mark not in self.samples and tasks >= mark:
                self.samples[mark] = group_memory(self.worker.process.pid)
                self.counts[mark] = {"tasks": tasks, "deliveries": self.receiver.count}
                log(
                    f"worker RSS after {tasks:,} tasks ({self.receiver.count:,} "
                    f"deliveries): {_total(self.samples[mark])} MB"
                )


def _deliver(
    ctx: Context,
    server: Server,
    admin: str,
    stocked: list[int],
    sampler: _WorkerSampler,
    target: int,
) -> tuple[int, int]:
    """Stock receipts through the API in chunks until the worker has done ``target``
    tasks (or the time is up); return the events made and the receipts that failed."""
    receiver = sampler.receiver
    rate, chunk = 100, 1_000
    generated = failed = 0
    deadline = time.perf_counter() + (300 if ctx.args.quick else 900)
    while sampler.tasks < target and time.perf_counter() < deadline:
        gen = generate_events(server.port, admin, stocked, rate, chunk / rate)
        generated += gen["ok"]
        failed += gen["failed"]
        # Let the deliveries catch up before the next chunk: the broker's queue stays
        # short, and what grows is what the worker keeps, not what waits for it.
        wait_for(lambda n=generated: receiver.count >= n, 120)
        log(
            f"{generated:,} events made, {receiver.count:,} delivered, {sampler.tasks:,} tasks done"
        )
    return generated, failed


def _worker_row(
    ctx: Context, sampler: _WorkerSampler, target: int, generated: int, failed: int, seconds: float
) -> None:
    samples, receiver = sampler.samples, sampler.receiver
    if MEMORY_FIRST_MARK not in samples or target not in samples:
        ctx.row(
            f"Celery worker RSS after {MEMORY_FIRST_MARK:,} vs {target:,} tasks",
            value=f"only {sampler.tasks:,} tasks done ({receiver.count:,} deliveries) "
            f"in {seconds:.0f} s",
            target=f"<= {MEMORY_MAX_RATIO}x",
            passed=False,
        )
        return
    first, last = samples[MEMORY_FIRST_MARK], samples[target]
    ratio = _total(last) / _total(first)
    text, worst, processes = _per_process(first, last)
    ctx.row(
        f"Celery worker RSS after {MEMORY_FIRST_MARK:,} vs {target:,} tasks"
        + (" (quick)" if ctx.args.quick else ""),
        ratio=ratio,
        value=f"{_total(first)} → {_total(last)} MB over {len(first)} processes "
        f"(concurrency {ctx.args.worker_concurrency} + beat; per process {text}); "
        f"{sampler.counts[target]['deliveries']:,} webhooks delivered by then, "
        f"{generated:,} events made through the API in {seconds:.0f} s",
        target=f"<= {MEMORY_MAX_RATIO}x",
        passed=ratio <= MEMORY_MAX_RATIO and failed == 0 and receiver.duplicates == 0,
        counts={str(m): c for m, c in sampler.counts.items()},
        rss_mb_by_mark={str(m): _total(s) for m, s in samples.items()},
        max_process_ratio=round(worst, 3),
        processes=processes,
        events_failed=failed,
        duplicates=receiver.duplicates,
    )


@benchmark("memory", notes=NOTES)
def bench_memory(ctx: Context) -> None:
    """Resident memory of the server over 50,000 requests and of the Celery worker over
    10,000 tasks (quick: 5,000 and 2,000): after the last within 1.2x of after the first
    1,000."""
    db, url, stocked = seeded_database(ctx, "mem", products=1000, stocked=(400, 100))
    vacuum_analyze(url)
    storefront = ctx.api_key(url, "storefront")
    admin = ctx.api_key(url, "admin")
    extra = {
        "PMS_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        # The wrong-key requests of the mix would lock this address out after 20.
        "PMS_RATE_LIMIT_AUTH_FAILURES": "1000000000/10m",
    }
    server = ctx.server(url, label="memory", extra_env=extra)
    try:
        _measure_server(ctx, server, storefront, admin, stocked)
        _measure_worker(ctx, url, server, admin, stocked)
    finally:
        ctx.stop_servers()
    if not ctx.args.keep:
        drop_database(db)
