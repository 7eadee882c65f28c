"""Variants benchmark (issue 16, "Speed"): the storefront's product detail of a product with
50 variants stocked at 5 locations against a product that is its own single variant, in
the same run."""

from __future__ import annotations

import json

from harness.common import BenchError
from harness.context import Context, benchmark
from harness.fixtures import seeded_catalog, shell_json
from harness.loadgen import Load
from harness.services import drop_database, vacuum_analyze
from harness.stats import ratio_to

VARIANTS = 50
LOCATIONS = 5
MAX_LATENCY_RATIO = 1.5

NOTES = [
    f"many = a product with {VARIANTS} variants (one option of {VARIANTS} values), each "
    f"stocked at {LOCATIONS} locations; one = a product without options (its own single "
    f"variant) stocked at the same {LOCATIONS}; both Published, in a 1k-product catalog.",
    "storefront = storefront key, detail served from the response cache (X-Cache: hit "
    "checked before loading), its variants' stock read afresh on every hit (one query by "
    "primary key); admin = admin key, read from PostgreSQL on every request "
    "(the queries: the product, its variants, their stock totals).",
    "ratio = p50 latency of many over one's, the loads interleaved in the same rounds.",
]

# Made through the services, like any shop's: locations, options, variants, receipts.
SNIPPET = """
import json
from decimal import Decimal
from audit.actors import Actor
from catalog.models import Category
from catalog.services import product_create, product_transition
from catalog.variants import product_set_options, variants_generate
from inventory.locations import location_create
from inventory.models import InventoryMovement, Location
from inventory.services import default_location
from inventory.stocktake import stock_set_levels

variants, locations = json.loads({args!r})
actor = Actor.system("bench")
codes = [default_location().code]
for n in range(1, locations):
    code = f"bench-{{n}}"
    if not Location.objects.filter(code=code).exists():
        location_create(actor=actor, code=code, name=f"Bench {{n}}", priority=100 + n)
    codes.append(code)
category = Category.objects.filter(is_active=True).order_by("pk").first()
many = product_create(actor=actor, sku="BENCH-MANY", name="Bench many", price=Decimal("9.90"),
                      category=category)
product_set_options(actor=actor, product_id=many.pk,
                    options=[{{"name": "Kind", "values": [f"K{{n}}" for n in range(variants)]}}])
made = variants_generate(actor=actor, product_id=many.pk)
one = product_create(actor=actor, sku="BENCH-ONE", name="Bench one", price=Decimal("9.90"),
                     category=category)
for code in codes:
    stock_set_levels(actor=actor, targets=dict.fromkeys([v.pk for v in made] + [one.pk], 3),
                     kind=InventoryMovement.Kind.RECEIPT, reason="benchmark stock",
                     location=code)
for product in (many, one):
    product_transition(actor=actor, product_id=product.pk, transition="publish")
print("BENCH_JSON " + json.dumps([many.pk, one.pk]))
"""


@benchmark("variants", notes=NOTES)
def bench_variants(ctx: Context) -> None:
    """Product detail with 50 variants over 5 locations vs a one-variant product."""
    db = f"{ctx.args.database}_variants"
    url = seeded_catalog(ctx, db, ctx.args.small)
    many, one = shell_json(ctx, url, SNIPPET.format(args=json.dumps([VARIANTS, LOCATIONS])))
    vacuum_analyze(url)
    storefront = ctx.api_key(url, "storefront")
    admin = ctx.api_key(url, "admin")
    server = ctx.server(url)
    hit = ("X-Cache", "hit")
    loads = [
        Load("storefront one", [f"/api/v1/products/{one}/"], storefront, hit),
        Load("storefront many", [f"/api/v1/products/{many}/"], storefront, hit),
        Load("admin one", [f"/api/v1/products/{one}/"], admin),
        Load("admin many", [f"/api/v1/products/{many}/"], admin),
    ]
    measured = ctx.measure(server, loads)
    for audience in ("storefront", "admin"):
        small, large = measured[f"{audience} one"], measured[f"{audience} many"]
        if not small["p50_ms"]:
            raise BenchError(f"no latency measured for the {audience} detail")
        ctx.row(f"{audience} detail, one variant", small)
        ctx.row(f"{audience} detail, {VARIANTS} variants over {LOCATIONS} locations", large)
        ratio = large["p50_ms"] / small["p50_ms"]
        # The target is the storefront's; the uncached read is shown beside it.
        judged = audience == "storefront"
        ctx.row(
            f"{audience} detail: p50 {VARIANTS} variants / one",
            ratio=ratio,
            value=f"{small['p50_ms']} → {large['p50_ms']} ms (p99 {small['p99_ms']} → "
            f"{large['p99_ms']} ms); req/s ratio {ratio_to(large, small, 'rps'):.2f}; "
            f"CPU/req server {small['cpu_ms']} → {large['cpu_ms']} ms",
            target=f"<= {MAX_LATENCY_RATIO}x" if judged else None,
            passed=ratio <= MAX_LATENCY_RATIO if judged else None,
        )
    ctx.stop_servers()
    if not ctx.args.keep:
        drop_database(db)
