"""Orders benchmark (issue "Inventory and orders"): the stock status endpoint against the
ceiling; order placement against pgbench's simple-update TPS on the same PostgreSQL; 16
clients racing for one scarce product (no oversell, no deadlock)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from harness.common import PYTHON, ROOT, BenchError, log
from harness.context import Context, benchmark
from harness.fixtures import seed_stock
from harness.loadgen import Load
from harness.servers import Server
from harness.services import (
    database_url,
    db_scalar,
    deadlocks,
    drop_database,
    flush_redis,
    recreate_database,
    vacuum_analyze,
)
from harness.stats import children_cpu, ratio_to

ORDERS_MIN_PGBENCH_RATIO = 0.20
ORDERS_MIN_PING_RATIO = 0.25
ORDERS_MAX_CPU_RATIO = 4.0
ORDERS_MAX_DB_CPU_MS = 2.0
STOCK_MIN_RPS_RATIO = 0.50

NOTES = [
    "Order loads: wrk -t1 -c16 (not -c32), one line per order, a fresh Idempotency-Key "
    "and the next product per request (wrk Lua); 2,000 products stocked 1,000 each. "
    "wrk's own CPU is under 1 ms per order (load_cpu_ms in the JSON): it is not the "
    "bottleneck.",
    "Order writes run on a server started with PMS_RATE_LIMITS_ENABLED=false: one "
    "client would otherwise hit the per-key order limit within a second. The stock "
    "endpoint and its ceiling run on a server with limits on (as in production).",
    "pgbench -N (built-in simple-update script), -c16 -j2, on pms_bench_pgbench "
    "(pgbench -i -s 10) on the same PostgreSQL server, interleaved in the same rounds; "
    "its latency column is pgbench's mean (it reports no percentiles).",
    "The ping ceiling on the order server, also against pgbench, shows what the whole "
    "HTTP stack can answer at best on this machine: a target above that ratio cannot "
    "be met by making order placement cheaper.",
    "Oversell: 16 clients race for one product until well past its stock; wrk counts "
    "only the answers it waited for, the database counts every order.",
]

# Each request places a one-line order for the next product of ``ids`` (from a random
# start), under an Idempotency-Key made of 8 random bytes and a counter: unique across
# rounds and runs, so nothing is ever replayed.
LUA_ORDER = """local ids = {}
for id in ("IDS"):gmatch("%d+") do ids[#ids + 1] = tonumber(id) end
local urandom = io.open("/dev/urandom", "rb")
local seed = urandom:read(8)
urandom:close()
local prefix = (seed:gsub(".", function(c) return string.format("%02x", c:byte()) end))
local start = seed:byte(1) * 256 + seed:byte(2)
local k = 0
wrk.headers["Content-Type"] = "application/json"
request = function()
  k = k + 1
  local pid = ids[(start + k) % #ids + 1]
  wrk.headers["Idempotency-Key"] = "bench-" .. prefix .. "-" .. k
  local body = string.format('{"items":[{"product":%d,"quantity":1}],' ..
    '"customer":{"email":"c%d@example.com","name":"Bench Customer"},' ..
    '"shipping_address":{"line1":"1 Main Street","city":"Berlin",' ..
    '"postal_code":"10115","country":"DE"}}', pid, k)
  return wrk.format("POST", "/api/v1/orders/", nil, body)
end"""


def pgbench_runner(db: str, clients: int = 16, threads: int = 2) -> Callable[[int], dict]:
    """``pgbench -N`` (built-in simple-update) as a load of ``Context.measure``."""
    url = database_url(db)

    def run(seconds: int) -> dict[str, Any]:
        before = children_cpu()
        command = ["pgbench", "-n", "-N", f"-c{clients}", f"-j{threads}", f"-T{seconds}", url]
        result = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=seconds + 60
        )
        load_cpu = children_cpu() - before
        tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
        latency = re.search(r"latency average = ([\d.]+) ms", result.stdout)
        done = re.search(r"number of transactions actually processed: (\d+)", result.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
        if result.returncode != 0 or not (tps and latency and done):
            raise BenchError(f"pgbench failed:\n{result.stdout}\n{result.stderr}")
        avg = float(latency.group(1))
        count = int(done.group(1))
        return {
            "rps": float(tps.group(1)),
            # pgbench reports the mean latency only: it stands in for p50, p90 and p99.
            "p50_ms": avg,
            "p90_ms": avg,
            "p99_ms": avg,
            "max_ms": avg,
            "requests": count,
            "errors": int(failed.group(1)) if failed else 0,
            "seconds": seconds,
            "cpu_ms": 0.0,
            "db_cpu_ms": 0.0,
            "load_cpu_ms": load_cpu * 1000 / max(count, 1),
        }

    return run


def _order_probe(key: str, product: int) -> Callable[[Server], None]:
    def probe(server: Server) -> None:
        body = json.dumps(
            {
                "items": [{"product": product, "quantity": 1}],
                "customer": {"email": "probe@example.com", "name": "Probe"},
                "shipping_address": {
                    "line1": "1 Main Street",
                    "city": "Berlin",
                    "postal_code": "10115",
                    "country": "DE",
                },
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 (127.0.0.1 only)
            server.base + "/api/v1/orders/",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Api-Key {key}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"probe-{secrets.token_hex(8)}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500]
            raise BenchError(f"POST /api/v1/orders/ answered {exc.code}: {detail!r}") from None
        if status != 201:
            raise BenchError(f"POST /api/v1/orders/ answered {status}, expected 201")

    return probe


def _order_load(name: str, key: str, ids: list[int], server: Server) -> Load:
    return Load(
        name,
        ["/api/v1/orders/"],
        key,
        request_lua=LUA_ORDER.replace("IDS", " ".join(map(str, ids))),
        probe=_order_probe(key, ids[0]),
        server=server,
        connections=16,
    )


def _order_count(url: str, product: int) -> int:
    return int(
        db_scalar(url, "SELECT count(*) FROM orders_orderitem WHERE product_id = %s", [product])
    )


@benchmark("orders", notes=NOTES)
def bench_orders(ctx: Context) -> None:
    """Order placement against pgbench's simple-update TPS; one hot product (oversell,
    deadlocks); the stock status endpoint against the ceiling."""
    db = f"{ctx.args.database}_orders"
    pg_db = f"{ctx.args.database}_pgbench"
    url = recreate_database(db)
    pg_url = recreate_database(pg_db)
    flush_redis(ctx.base_env["REDIS_URL"])
    log(f"database {db}: migrate, seed 3,000 products; {pg_db}: pgbench -i -s 10")
    init = subprocess.run(  # noqa: S603
        ["pgbench", "-i", "-q", "-s", "10", pg_url],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=600,
    )
    if init.returncode != 0:
        raise BenchError(f"pgbench -i failed:\n{init.stderr[-2000:]}")
    ctx.manage(url, "migrate", "--noinput", "-v0")
    # The catalog alone: the benchmark stocks its own products and places its own orders.
    ctx.manage(
        url, "seed_database", "--products", "3000", "--seed", "1", "--no-progress", "--catalog-only"
    )
    hot_stock, scarce_stock = 1_000_000, (100 if ctx.args.quick else 200)
    spread, (hot,), (scarce,) = seed_stock(
        ctx, url, [(2000, 1000), (1, hot_stock), (1, scarce_stock)]
    )
    vacuum_analyze(url)
    storefront = ctx.api_key(url, "storefront")
    _stock_reads(ctx, url, storefront, spread)

    # Writes: one client may place only so many orders a minute, so limits are off here.
    server = ctx.server(url, label="orders-writes", extra_env={"PMS_RATE_LIMITS_ENABLED": "false"})
    deadlocks_before = deadlocks(db)
    m = _order_writes(ctx, server, storefront, pg_db, spread, hot)
    _scarce_race(ctx, server, url, storefront, scarce, scarce_stock, hot, m["hot"]["rps"])
    _after_writes(ctx, server, url, db, deadlocks_before)
    if not ctx.args.keep:
        drop_database(db)
        drop_database(pg_db)


def _stock_reads(ctx: Context, url: str, storefront: str, spread: list[int]) -> None:
    """Reads first, on a server configured like production (rate limits on)."""
    server = ctx.server(url, label="orders-reads")
    ceiling = Load("ceiling", ["/api/v1/ping/"])
    stock = Load("stock", [f"/api/v1/products/{pk}/stock/" for pk in spread[:20]], storefront)
    reads = ctx.measure(server, [ceiling, stock])
    ctx.row("ceiling: GET /api/v1/ping/", reads["ceiling"], ratio=1.0)
    ctx.rps_ratio_row(
        "stock status GET /products/{id}/stock/ (storefront key)",
        reads["stock"],
        reads["ceiling"],
        minimum=STOCK_MIN_RPS_RATIO,
    )
    ctx.stop_servers()


def _order_writes(
    ctx: Context, server: Server, storefront: str, pg_db: str, spread: list[int], hot: int
) -> dict[str, dict[str, Any]]:
    """Orders over many products and on one hot product, the ping ceiling and pgbench,
    interleaved; return the measurements by load."""
    loads = [
        Load("pgbench", [], runner=pgbench_runner(pg_db)),
        _order_load("orders", storefront, spread, server),
        _order_load("hot", storefront, [hot], server),
        # What this server answers at best, to put the orders' ratio in proportion.
        Load("ceiling", ["/api/v1/ping/"], server=server, connections=16),
    ]
    m = ctx.measure(server, loads)
    pg = dict(m["pgbench"])
    for k in ("cpu_ms", "db_cpu_ms"):
        pg.pop(k)
    ctx.row(
        "pgbench -N -c16 -j2 (simple update, same server; latency = mean)",
        pg,
        ratio=1.0,
        load_cpu_ms=m["pgbench"]["load_cpu_ms"],
    )
    ctx.rps_ratio_row(
        "POST /orders/ (1 line, distinct products, 16 clients) / pgbench TPS",
        m["orders"],
        m["pgbench"],
        minimum=ORDERS_MIN_PGBENCH_RATIO,
    )
    ctx.row(
        "POST /orders/ (one hot product, 16 clients) / pgbench TPS",
        m["hot"],
        ratio=ratio_to(m["hot"], m["pgbench"], "rps"),
    )
    ctx.row(
        "ceiling GET /api/v1/ping/ on this server (16 clients) / pgbench TPS",
        m["ceiling"],
        ratio=ratio_to(m["ceiling"], m["pgbench"], "rps"),
    )
    # Issue "Serving": orders against the same server's ping, and what each order costs.
    ctx.rps_ratio_row(
        "POST /orders/ (1 line, distinct products, 16 clients) / GET /api/v1/ping/",
        m["orders"],
        m["ceiling"],
        minimum=ORDERS_MIN_PING_RATIO,
    )
    cpu_ratio = m["orders"]["cpu_ms"] / max(m["ceiling"]["cpu_ms"], 1e-9)
    ctx.row(
        "server CPU per order / per ping",
        ratio=cpu_ratio,
        value=f"{m['orders']['cpu_ms']} ms / {m['ceiling']['cpu_ms']} ms",
        target=f"<= {ORDERS_MAX_CPU_RATIO:g}x",
        passed=cpu_ratio <= ORDERS_MAX_CPU_RATIO,
    )
    ctx.row(
        "PostgreSQL CPU per order",
        value=f"{m['orders']['db_cpu_ms']} ms",
        target=f"<= {ORDERS_MAX_DB_CPU_MS:g} ms",
        passed=m["orders"]["db_cpu_ms"] <= ORDERS_MAX_DB_CPU_MS,
    )
    return m


def _scarce_race(
    ctx: Context,
    server: Server,
    url: str,
    storefront: str,
    scarce: int,
    scarce_stock: int,
    hot: int,
    hot_rps: float,
) -> None:
    """One scarce product, 16 clients racing for it well past the end of its stock."""
    seconds = min(60, max(5, round(2 * scarce_stock / max(hot_rps, 1))))
    script = ctx.wrk_script(_order_load("scarce", storefront, [scarce], server))
    raced = ctx._wrk(server, script, seconds, connections=16)
    placed = _order_count(url, scarce)
    on_hand, reserved = (
        db_scalar(url, sql, [scarce])
        for sql in (
            "SELECT on_hand FROM inventory_stock WHERE product_id = %s",
            "SELECT reserved FROM inventory_stock WHERE product_id = %s",
        )
    )
    accepted = raced["requests"] - raced["status_errors"]
    hot_placed = _order_count(url, hot)
    hot_reserved = db_scalar(
        url, "SELECT reserved FROM inventory_stock WHERE product_id = %s", [hot]
    )
    # wrk does not count the requests still in flight when it stops: the database does.
    ok = (
        placed == scarce_stock
        and accepted <= placed
        and reserved == placed
        and on_hand == scarce_stock
        and hot_reserved == hot_placed
    )
    ctx.row(
        f"hot product, stock {scarce_stock}: orders accepted vs stock (oversell)",
        value=(
            f"{raced['requests']} attempts in {seconds} s, {accepted} got 201, {placed} "
            f"orders in the database, reserved {reserved} of {on_hand} on hand; hot product "
            f"{hot_placed} orders = {hot_reserved} reserved"
        ),
        target="orders = stock, no oversell",
        passed=ok and raced["requests"] > scarce_stock,
        status_errors=raced["status_errors"],
    )


def _after_writes(ctx: Context, server: Server, url: str, db: str, deadlocks_before: int) -> None:
    """``check_inventory`` exits 0; no deadlock in PostgreSQL's count or the server log."""
    check = subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", "check_inventory"],
        cwd=ROOT,
        env=ctx.env_for(url),
        capture_output=True,
        text=True,
        timeout=600,
    )
    new_deadlocks = deadlocks(db) - deadlocks_before
    ctx.stop_servers()
    logged = sum(
        "deadlock" in line.lower()
        for line in server.log_path.read_text(errors="replace").splitlines()
    )
    ctx.row(
        "after the order loads: check_inventory, deadlocks",
        value=(
            f"check_inventory exit {check.returncode}; PostgreSQL deadlocks {new_deadlocks}; "
            f"server log lines with 'deadlock' {logged}"
        ),
        target="exit 0, 0 deadlocks",
        passed=check.returncode == 0 and new_deadlocks == 0 and logged == 0,
    )
    if check.returncode != 0:
        log(f"check_inventory:\n{check.stdout[-2000:]}\n{check.stderr[-2000:]}")
