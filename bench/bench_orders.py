"""Orders benchmark (issue "Inventory and orders"): the stock status endpoint against the
ceiling; order placement against pgbench's simple-update TPS on the same PostgreSQL; 16
clients racing for one scarce product (no oversell, no deadlock); refunds against order
placement (issue "Refunds and returns")."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from typing import Any

from harness.common import PYTHON, ROOT, TMP_DIR, BenchError, log, post_expecting
from harness.context import Context, benchmark
from harness.fixtures import seed_spread, seed_stock, shell_json
from harness.loadgen import Load
from harness.servers import Server, Worker
from harness.services import (
    database_url,
    db_scalar,
    deadlocks,
    drop_database,
    flush_redis,
    mark_events_dispatched,
    recreate_database,
    vacuum_analyze,
)
from harness.stats import children_cpu, ratio_to

ORDERS_MIN_PGBENCH_RATIO = 0.20
ORDERS_MIN_PING_RATIO = 0.25
ORDERS_MAX_CPU_RATIO = 4.0
ORDERS_MAX_DB_CPU_MS = 2.0
STOCK_MIN_RPS_RATIO = 0.50
ORDERS3_MIN_RATIO = 0.90
# Issue 17: shipping (a fulfilment POST) at least half as fast as placing an order.
FULFIL_MIN_RATIO = 0.50
FULFIL_ORDERS, FULFIL_UNITS = 400, 1000
REFUNDS_MIN_ORDERS_RATIO = 0.50
REFUNDABLE_ORDERS = 200
LOCATIONS = ["main", "store", "outlet"]
SCARCE3_UNITS = [20, 20, 10]
BACKORDER_LIMIT = 20
# A product taking backorders up to a limit, set through the catalog's service.
BACKORDER_SNIPPET = """
import json
from audit.actors import Actor
from catalog.models import Product
from catalog.services import product_update
from catalog.variants import variant_update

product = Product.objects.get(pk={product})
data = {{"allow_backorder": True, "backorder_limit": {limit}}}
actor = Actor.system("bench")
if product.parent_id:
    variant_update(actor=actor, variant_id=product.pk, data=data)
else:
    product_update(actor=actor, product_id=product.pk, data=data)
print("BENCH_JSON " + json.dumps(product.pk))
"""

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
    "Three locations: 2,000 other products hold 1 unit at main, 1 at store and 1,000 at "
    "outlet (allocation by priority, main first), so orders of one unit take main's, then "
    "store's, then outlet's; 2,000 more stocked the same get orders of 2 units, whose "
    "first for each product splits over main and store (in a short run nearly every "
    "order: the worst case, shown without a target). The 50-unit race: 20 + 20 + 10 "
    "units, 200 wrk connections for 5 s.",
    f"Fulfilments: {FULFIL_ORDERS} orders of {FULFIL_UNITS} units of one product each, "
    "placed and processed with the services before the load; each request ships 1 unit "
    "of the next order (POST /orders/{id}/fulfillments/, admin key, 16 clients), sold "
    "from its reservation: a partial shipment, the order stays in processing. Measured "
    "interleaved with order placement on the same server; the ratio is fulfilments per "
    "second over orders per second.",
    "Backorders (issue 17): another product with the same 20 + 20 + 10 units takes up to "
    "20 more as backorders; 200 wrk connections for 5 s: exactly 70 orders, 50 reserved "
    "and 20 backordered, whatever the race; the rest 409 backorder_limit_reached.",
]

# Each request ships one unit of the next order of ``orders`` (id and product pairs, from a
# random start): an order holds so many units that no run ships them all.
LUA_FULFIL = """local orders = {}
for id, pid in ("ORDERS"):gmatch("([%w-]+):(%d+)") do orders[#orders + 1] = {id, pid} end
local urandom = io.open("/dev/urandom", "rb")
local seed = urandom:read(2)
urandom:close()
local start = seed:byte(1) * 256 + seed:byte(2)
local k = 0
wrk.headers["Content-Type"] = "application/json"
request = function()
  k = k + 1
  local order = orders[(start + k) % #orders + 1]
  local body = string.format('{"lines":[{"product":%s,"quantity":1}],"carrier":"DHL",' ..
    '"tracking_number":"B%d"}', order[2], k)
  return wrk.format("POST", "/api/v1/orders/" .. order[1] .. "/fulfillments/", nil, body)
end"""

# Places and processes the fulfilment load's orders through the services (as staff would
# over the API, without the HTTP round trips): products after those the other loads use.
FULFIL_SNIPPET = """
import json
from audit.actors import Actor
from catalog.models import Product
from inventory.models import InventoryMovement
from inventory.stocktake import stock_set_levels
from orders.services import order_place, order_transition

count, units, skip = json.loads({args!r})
actor = Actor.system("bench")
sellable = Product.objects.filter(status="published", variants__isnull=True)
ids = list(sellable.order_by("pk").values_list("pk", flat=True)[skip : skip + count])
stock_set_levels(
    actor=actor,
    targets=dict.fromkeys(ids, units),
    kind=InventoryMovement.Kind.RECEIPT,
    reason="benchmark stock",
)
out = []
for pid in ids:
    order = order_place(
        actor=actor,
        items=[{{"product": pid, "quantity": units}}],
        customer={{"email": "ship@example.com", "name": "Bench Customer"}},
        shipping_address={{"line1": "1 Main Street", "city": "Berlin",
                          "postal_code": "10115", "country": "DE"}},
    )
    order_transition(actor=actor, order_id=order.pk, transition="process")
    out.append([str(order.pk), pid])
print("BENCH_JSON " + json.dumps(out))
"""

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
  local body = string.format('{"items":[{"product":%d,"quantity":QTY}],' ..
    '"customer":{"email":"c%d@example.com","name":"Bench Customer"},' ..
    '"shipping_address":{"line1":"1 Main Street","city":"Berlin",' ..
    '"postal_code":"10115","country":"DE"}}', pid, k)
  return wrk.format("POST", "/api/v1/orders/", nil, body)
end"""


# Each request refunds one unit of the next of ``orders`` (order id, its line's product),
# from a random start, under a fresh Idempotency-Key.
LUA_REFUND = """local orders = {}
for id, pid in ("ORDERS"):gmatch("([%w-]+):(%d+)") do orders[#orders + 1] = {id, pid} end
local urandom = io.open("/dev/urandom", "rb")
local seed = urandom:read(8)
urandom:close()
local prefix = (seed:gsub(".", function(c) return string.format("%02x", c:byte()) end))
local start = seed:byte(1) * 256 + seed:byte(2)
local k = 0
wrk.headers["Content-Type"] = "application/json"
request = function()
  k = k + 1
  local order = orders[(start + k) % #orders + 1]
  wrk.headers["Idempotency-Key"] = "refund-" .. prefix .. "-" .. k
  local body = '{"lines":[{"product":' .. order[2] .. ',"quantity":1}]}'
  return wrk.format("POST", "/api/v1/orders/" .. order[1] .. "/refunds/", nil, body)
end"""

# Completed orders to refund: one line of 1,000 units of each product, placed, processed
# and completed through the services (their audit entries and events like any order's).
REFUNDABLE_SNIPPET = """
import json
from audit.actors import Actor
from orders.services import order_place, order_transition

actor = Actor.system("bench")
address = {{"line1": "1 Main Street", "city": "Berlin", "postal_code": "10115", "country": "DE"}}
out = []
for pid in json.loads({ids!r}):
    order = order_place(
        actor=actor,
        items=[{{"product": pid, "quantity": 1000}}],
        customer={{"email": "refunds@example.com", "name": "Bench Refunds"}},
        shipping_address=address,
    )
    for move in ("process", "complete"):
        order_transition(actor=actor, order_id=order.pk, transition=move)
    out.append([str(order.pk), pid])
print("BENCH_JSON " + json.dumps(out))
"""


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


def _order_probe(key: str, product: int, quantity: int = 1) -> Callable[[Server], None]:
    def probe(server: Server) -> None:
        order = {
            "items": [{"product": product, "quantity": quantity}],
            "customer": {"email": "probe@example.com", "name": "Probe"},
            "shipping_address": {
                "line1": "1 Main Street",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
        }
        post_expecting(
            server.base + "/api/v1/orders/",
            key,
            order,
            expect=201,
            Idempotency_Key=f"probe-{secrets.token_hex(8)}",
        )

    return probe


def _order_load(name: str, key: str, ids: list[int], server: Server, *, quantity: int = 1) -> Load:
    return Load(
        name,
        ["/api/v1/orders/"],
        key,
        request_lua=LUA_ORDER.replace("IDS", " ".join(map(str, ids))).replace("QTY", str(quantity)),
        # The probe orders the last product: the loads start from a random one.
        probe=_order_probe(key, ids[-1], quantity),
        server=server,
        connections=16,
    )


def _refund_probe(key: str, order: list) -> Callable[[Server], None]:
    def probe(server: Server) -> None:
        post_expecting(
            f"{server.base}/api/v1/orders/{order[0]}/refunds/",
            key,
            {"lines": [{"product": order[1], "quantity": 1}]},
            expect=201,
            Idempotency_Key=f"probe-{secrets.token_hex(8)}",
        )

    return probe


def _refund_load(key: str, orders: list[list], server: Server) -> Load:
    return Load(
        "refunds",
        ["/api/v1/orders/"],
        key,
        request_lua=LUA_REFUND.replace("ORDERS", " ".join(f"{o}:{p}" for o, p in orders)),
        probe=_refund_probe(key, orders[-1]),
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
    log(f"database {db}: migrate, seed 9,500 products; {pg_db}: pgbench -i -s 10")
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
        url, "seed_database", "--products", "9500", "--seed", "1", "--no-progress", "--catalog-only"
    )
    hot_stock, scarce_stock = 1_000_000, (100 if ctx.args.quick else 200)
    spread, (hot,), (scarce,) = seed_stock(
        ctx, url, [(2000, 1000), (1, hot_stock), (1, scarce_stock)]
    )
    # Issue "Variants and stock locations": the same orders over three locations. Each
    # product holds 1 at main, 1 at store and 1,000 at outlet: its first order takes
    # main's unit, its second store's, the later ones outlet's (orders of 1 unit); the
    # "split" products' first order of 2 units takes one at main and one at store. The
    # scarce one holds 50 units over the three.
    spread3, split3, (scarce3,), (backordered3,) = seed_spread(
        ctx,
        url,
        LOCATIONS,
        [(2000, [1, 1, 1000]), (2000, [1, 1, 1000]), (1, SCARCE3_UNITS), (1, SCARCE3_UNITS)],
        skip=2002,
    )
    # Issue 17: the same 50 units, and up to BACKORDER_LIMIT more taken as backorders.
    shell_json(ctx, url, BACKORDER_SNIPPET.format(product=backordered3, limit=BACKORDER_LIMIT))
    # Issue "Refunds and returns": completed orders to refund, of products no load orders
    # (after the 2,002 above and the 4,002 over three locations).
    (refundable,) = seed_spread(
        ctx, url, LOCATIONS[:1], [(REFUNDABLE_ORDERS, [1000])], skip=2002 + 4002
    )
    orders = shell_json(ctx, url, REFUNDABLE_SNIPPET.format(ids=json.dumps(refundable)))
    vacuum_analyze(url)
    storefront = ctx.api_key(url, "storefront")
    staff = ctx.api_key(url, "admin")
    _stock_reads(ctx, url, storefront, spread)

    # Writes: one client may place only so many orders a minute, so limits are off here.
    server = ctx.server(url, label="orders-writes", extra_env={"PMS_RATE_LIMITS_ENABLED": "false"})
    worker = _start_worker(ctx, url)
    deadlocks_before = deadlocks(db)
    refunds = _refund_load(staff, orders, server)
    events_before, worker_cpu = _events_written(url), worker.cpu_seconds()
    m = _order_writes(ctx, server, storefront, pg_db, spread, hot, (spread3, split3), refunds)
    _worker_row(ctx, worker, url, events_before, worker_cpu)
    _fulfilments(ctx, server, url, storefront, spread)
    _scarce_race(ctx, server, url, storefront, scarce, scarce_stock, hot, m["hot"]["rps"])
    _scarce3_race(ctx, server, url, storefront, scarce3)
    _backorder_race(ctx, server, url, storefront, backordered3)
    _after_writes(ctx, server, url, db, deadlocks_before)
    if not ctx.args.keep:
        drop_database(db)
        drop_database(pg_db)


def _start_worker(ctx: Context, url: str) -> Worker:
    """A worker drains what the orders leave behind (the events' dispatch to websocket
    groups; no webhook endpoint here), as in production: its CPU shares the machine with
    the server's, and the hand-off is measured as it costs with a worker taking tasks."""
    env = {
        **ctx.env_for(url),
        "WORKER_CONCURRENCY": str(ctx.args.worker_concurrency),
        "PMS_BEAT_SCHEDULE_FILE": str(TMP_DIR / "celerybeat-schedule"),
        "PMS_METRICS_DIR": str(TMP_DIR / "metrics"),
    }
    mark_events_dispatched(url)  # the seed's events are history, not load
    worker = Worker(env, TMP_DIR / "worker-orders.log")
    ctx.servers.append(worker)
    worker.start()
    return worker


def _events_written(url: str) -> int:
    return int(db_scalar(url, "SELECT count(*) FROM events_event") or 0)


def _worker_row(
    ctx: Context, worker: Worker, url: str, events_before: int, cpu_before: float
) -> None:
    """The worker's CPU per event the order loads wrote, once it has dispatched them all."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and db_scalar(
        url, "SELECT count(*) FROM events_event WHERE dispatched_at IS NULL"
    ):
        time.sleep(0.5)
    events = _events_written(url) - events_before
    cpu_ms = (worker.cpu_seconds() - cpu_before) * 1000 / max(events, 1)
    ctx.row(
        "worker CPU per event of the order loads (dispatch; no webhook endpoint)",
        value=f"{cpu_ms:.2f} ms ({events:,} events)",
    )


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
    ctx: Context,
    server: Server,
    storefront: str,
    pg_db: str,
    spread: list[int],
    hot: int,
    three: tuple[list[int], list[int]],
    refunds: Load,
) -> dict[str, dict[str, Any]]:
    """Orders over many products and on one hot product, refunds, the ping ceiling and
    pgbench, interleaved; return the measurements by load."""
    loads = [
        Load("pgbench", [], runner=pgbench_runner(pg_db)),
        _order_load("orders", storefront, spread, server),
        refunds,
        _order_load("orders3", storefront, three[0], server),
        _order_load("split3", storefront, three[1], server, quantity=2),
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
    ctx.rps_ratio_row(
        "POST /orders/ over three locations / one location",
        m["orders3"],
        m["orders"],
        minimum=ORDERS3_MIN_RATIO,
    )
    ctx.row(
        "POST /orders/ of 2 units split over two locations / one location",
        m["split3"],
        ratio=ratio_to(m["split3"], m["orders"], "rps"),
    )
    ctx.rps_ratio_row(
        "POST /orders/{id}/refunds/ (1 unit, 200 orders, 16 clients) / POST /orders/",
        m["refunds"],
        m["orders"],
        minimum=REFUNDS_MIN_ORDERS_RATIO,
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


def _fulfil_probe(key: str, order_id: str, product: int) -> Callable[[Server], None]:
    def probe(server: Server) -> None:
        post_expecting(
            f"{server.base}/api/v1/orders/{order_id}/fulfillments/",
            key,
            {"lines": [{"product": product, "quantity": 1}]},
            expect=201,
        )

    return probe


def _fulfilments(
    ctx: Context, server: Server, url: str, storefront: str, spread: list[int]
) -> None:
    """Fulfilment POSTs per second against order placement, interleaved on one server."""
    # After the products the other loads stock: 2,002 here, 4,002 over three locations (the
    # backorder race's included), then the refundable orders'.
    skip = 2002 + 4002 + REFUNDABLE_ORDERS
    orders = shell_json(
        ctx, url, FULFIL_SNIPPET.format(args=json.dumps([FULFIL_ORDERS, FULFIL_UNITS, skip]))
    )
    staff = ctx.api_key(url, "admin")
    fulfil = Load(
        "fulfil",
        ["/api/v1/orders/"],
        staff,
        request_lua=LUA_FULFIL.replace("ORDERS", " ".join(f"{o}:{p}" for o, p in orders)),
        probe=_fulfil_probe(staff, *orders[-1]),
        server=server,
        connections=16,
    )
    m = ctx.measure(server, [_order_load("orders", storefront, spread, server), fulfil])
    ctx.rps_ratio_row(
        "POST /orders/{id}/fulfillments/ (1 unit, 16 clients) / POST /orders/",
        m["fulfil"],
        m["orders"],
        minimum=FULFIL_MIN_RATIO,
    )


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


def _scarce3_race(ctx: Context, server: Server, url: str, storefront: str, scarce3: int) -> None:
    """200 buyers (connections) for 50 units spread over three locations: exactly 50
    orders of one unit, each location's reservation within what it holds."""
    units = sum(SCARCE3_UNITS)
    script = ctx.wrk_script(_order_load("scarce3", storefront, [scarce3], server))
    raced = ctx._wrk(server, script, 5, connections=200)
    placed = _order_count(url, scarce3)
    levels = [
        tuple(int(x) for x in row.split("|"))
        for row in db_scalar(
            url,
            "SELECT string_agg(on_hand || '|' || reserved, ',' ORDER BY location_id) "
            "FROM inventory_stocklevel WHERE product_id = %s",
            [scarce3],
        ).split(",")
    ]
    reserved = sum(r for _, r in levels)
    ok = placed == units and reserved == units and all(r <= h for h, r in levels)
    ctx.row(
        f"{units} units over three locations, 200 buyers: orders vs stock (oversell)",
        value=(
            f"{raced['requests']} attempts in 5 s, {placed} orders in the database, "
            f"reserved {reserved} (on hand/reserved per location: "
            + ", ".join(f"{h}/{r}" for h, r in levels)
            + ")"
        ),
        target=f"exactly {units} orders, no location oversold",
        passed=ok and raced["requests"] > units,
        status_errors=raced["status_errors"],
    )


def _backorder_race(ctx: Context, server: Server, url: str, storefront: str, product: int) -> None:
    """200 buyers (connections) for 50 units over three locations that take up to
    ``BACKORDER_LIMIT`` more as backorders: exactly 50 + the limit orders, 50 reserved,
    the limit's units waiting, none past it."""
    units = sum(SCARCE3_UNITS)
    wanted = units + BACKORDER_LIMIT
    script = ctx.wrk_script(_order_load("backorder", storefront, [product], server))
    raced = ctx._wrk(server, script, 5, connections=200)
    placed = _order_count(url, product)
    on_hand, reserved, backordered = (
        int(x)
        for x in db_scalar(
            url,
            "SELECT on_hand || '|' || reserved || '|' || backordered FROM inventory_stock "
            "WHERE product_id = %s",
            [product],
        ).split("|")
    )
    waiting_lines = int(
        db_scalar(
            url,
            "SELECT coalesce(sum(backordered), 0) FROM orders_orderitem WHERE product_id = %s",
            [product],
        )
    )
    ok = (
        placed == wanted
        and (on_hand, reserved) == (units, units)
        and backordered == waiting_lines == BACKORDER_LIMIT
    )
    ctx.row(
        f"{units} units + backorder limit {BACKORDER_LIMIT}, 200 buyers: orders vs stock + limit",
        value=(
            f"{raced['requests']} attempts in 5 s, {placed} orders in the database, "
            f"reserved {reserved} of {on_hand}, backordered {backordered} "
            f"(lines waiting: {waiting_lines})"
        ),
        target=f"exactly {wanted} orders, never past the limit",
        passed=ok and raced["requests"] > wanted,
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
