"""Data for the benchmarks: fresh seeded databases, stock, code run in ``manage.py shell``."""

from __future__ import annotations

import json
import re
from typing import Any

from harness.common import BenchError, log
from harness.context import Context
from harness.services import flush_redis, recreate_database

# Stock for benchmark products (the sellable ones: variants and products without variants;
# a product that sells through variants holds none): each group's products brought to
# its quantity through the stocktake service (rows locked in batches; ledger, audit and
# outbox rows like any receipt).
STOCK_SNIPPET = """
import json
from audit.actors import Actor
from catalog.models import Product
from inventory.models import InventoryMovement
from inventory.stocktake import stock_set_levels

wanted = json.loads({wanted!r})
sellable = Product.objects.filter(status="published", variants__isnull=True)
ids = list(
    sellable.order_by("pk").values_list("pk", flat=True)[: sum(n for n, _ in wanted)]
)
if len(ids) < sum(n for n, _ in wanted):
    raise SystemExit(f"only {{len(ids)}} published products")
out, at = [], 0
actor = Actor.system("bench")
for count, quantity in wanted:
    group = ids[at : at + count]
    at += count
    out.append(group)
    stock_set_levels(
        actor=actor,
        targets=dict.fromkeys(group, quantity),
        kind=InventoryMovement.Kind.RECEIPT,
        reason="benchmark stock",
    )
print("BENCH_JSON " + json.dumps(out))
"""


# Stock over several locations: the locations made through the location service when
# missing (the first is the shop's default, "main"), then each group's products brought
# to its quantity at each location through the stocktake service.
SPREAD_SNIPPET = """
import json
from audit.actors import Actor
from catalog.models import Product
from inventory.locations import location_create
from inventory.models import InventoryMovement, Location
from inventory.stocktake import stock_set_levels

codes, groups, skip = json.loads({args!r})
actor = Actor.system("bench")
for position, code in enumerate(codes):
    if not Location.objects.filter(code=code).exists():
        location_create(actor=actor, code=code, name=code.title(), priority=100 + 10 * position)
sellable = Product.objects.filter(status="published", variants__isnull=True)
ids = list(
    sellable.order_by("pk").values_list("pk", flat=True)[skip : skip + sum(n for n, _ in groups)]
)
out, at = [], 0
for count, quantities in groups:
    group = ids[at : at + count]
    at += count
    out.append(group)
    for code, quantity in zip(codes, quantities):
        if quantity:
            stock_set_levels(
                actor=actor,
                targets=dict.fromkeys(group, quantity),
                kind=InventoryMovement.Kind.RECEIPT,
                reason="benchmark stock",
                location=code,
            )
print("BENCH_JSON " + json.dumps(out))
"""


def seed_spread(
    ctx: Context,
    url: str,
    codes: list[str],
    groups: list[tuple[int, list[int]]],
    *,
    skip: int,
) -> list[list[int]]:
    """Give ``count`` published products (after the first ``skip``) the quantities of each
    ``(count, [quantity at codes[0], at codes[1], ...])``; return each group's ids."""
    return shell_json(ctx, url, SPREAD_SNIPPET.format(args=json.dumps([codes, groups, skip])))


def shell_json(ctx: Context, url: str, code: str) -> Any:
    """Run ``code`` in ``manage.py shell``; return what it printed as ``BENCH_JSON ...``."""
    out = ctx.manage(url, "shell", "-c", code)
    match = re.search(r"^BENCH_JSON (.*)$", out, re.MULTILINE)
    if not match:
        raise BenchError(f"no result from the shell snippet:\n{out[-2000:]}")
    return json.loads(match.group(1))


def seed_stock(ctx: Context, url: str, wanted: list[tuple[int, int]]) -> list[list[int]]:
    """Give ``count`` published products ``quantity`` each, per ``(count, quantity)``;
    return the product ids of each group."""
    return shell_json(ctx, url, STOCK_SNIPPET.format(wanted=json.dumps(wanted)))


def seeded_catalog(ctx: Context, db: str, products: int) -> str:
    """The database ``db`` dropped and created, migrated and seeded with ``products``
    products (and the run's Redis database emptied); return its URL."""
    url = recreate_database(db)
    flush_redis(ctx.base_env["REDIS_URL"])
    log(f"database {db}: migrate, seed {products:,} products")
    ctx.manage(url, "migrate", "--noinput", "-v0")
    # The catalog alone: the benchmarks stock what they need themselves (seed_stock).
    ctx.manage(url, *catalog_seed(products))
    return url


def catalog_seed(products: int) -> list[str]:
    """``manage.py`` arguments loading ``products`` demo products, the catalog alone (no
    demo stock, orders or history: what the benchmarks have always measured)."""
    return [
        "seed_database",
        "--products",
        str(products),
        "--seed",
        "1",
        "--no-progress",
        "--catalog-only",
    ]


def seeded_database(
    ctx: Context, suffix: str, *, products: int, stocked: tuple[int, int]
) -> tuple[str, str, list[int]]:
    """A fresh migrated database ``<name>_<suffix>`` (and an empty Redis) with ``products``
    seeded and ``stocked`` = (how many, units each) of them in stock; return its name, URL
    and the stocked products' ids."""
    db = f"{ctx.args.database}_{suffix}"
    url = seeded_catalog(ctx, db, products)
    (ids,) = seed_stock(ctx, url, [stocked])
    return db, url, ids
