"""Demo stock: the published demo products receive goods, most plenty, some few, a few none,
spread over three locations (a warehouse, a store, an outlet). What receives is what sells:
each variant of a product sold in variants (never the product itself, which holds no
stock of its own), or a product without variants.

A seeding step of ``seed_database`` (``pms_backend.seeding``): the receipts go through the
stocktake service, so each is a ledger movement with its audit entry and events. Only
products never stocked before are touched: running it again, or on a product staff have
already stocked, adds nothing.
"""

from __future__ import annotations

import random

from django.template.defaultfilters import pluralize

from audit.actors import Actor
from catalog.models import Product
from catalog.selectors import sellable_ids
from inventory.locations import location_create
from inventory.models import LOW_STOCK_SETTING, InventoryMovement, Location
from inventory.stocktake import stock_set_levels
from pms_backend.seeding import DemoRun, SeedingStep, register_seeding_step
from pms_backend.shopsettings.selectors import setting_get_many

WELL_STOCKED = (40, 250)  # units received by most products
LOW_SHARE, OUT_SHARE = 0.12, 0.06  # the rest: at or under the threshold, or none at all

# The demo's locations: (code, name), in allocation order. The first is the shop's usual
# default location, kept as it is when it exists already (a new database has it); the
# others come after it, ``LOCATION_STEP`` apart in priority.
DEMO_LOCATIONS = (("main", "Main warehouse"), ("store", "City store"), ("outlet", "Outlet"))
LOCATION_STEP = 10
# How a product's units are spread: (share of products, {location code: share of units}).
# Most sit mostly at the warehouse; some products are kept at one place only.
SPREADS = (
    (0.45, {"main": 0.7, "store": 0.2, "outlet": 0.1}),
    (0.20, {"main": 0.6, "store": 0.4}),
    (0.20, {"main": 1.0}),
    (0.10, {"store": 1.0}),
    (0.05, {"outlet": 1.0}),
)


def demo_stock_level(seed: int, sku: str, threshold: int) -> int:
    """Return the units product ``sku`` receives for ``seed`` (0: it stays out of stock).

    Low means some, but no more than the product's low-stock ``threshold``.
    """
    rng = random.Random(f"{seed}:stock:{sku}")
    roll = rng.random()
    if roll < OUT_SHARE or (threshold < 1 and roll < OUT_SHARE + LOW_SHARE):
        return 0
    if roll < OUT_SHARE + LOW_SHARE:
        return rng.randint(1, threshold)
    return rng.randint(max(WELL_STOCKED[0], threshold * 3), max(WELL_STOCKED[1], threshold * 6))


def demo_stock_spread(seed: int, sku: str, units: int) -> dict[str, int]:
    """Return where product ``sku``'s ``units`` are received for ``seed``: units by
    location code, every one above zero, summing to ``units``."""
    roll = random.Random(f"{seed}:locations:{sku}").random()
    shares = SPREADS[-1][1]
    for share, spread in SPREADS:
        if roll < share:
            shares = spread
            break
        roll -= share
    # A handful of units is not split: they sit at the spread's first place.
    parts = {code: int(units * part) for code, part in shares.items()} if units >= 10 else {}
    first = next(iter(shares))
    parts[first] = units - sum(n for code, n in parts.items() if code != first)
    return {code: n for code, n in parts.items() if n > 0}


def demo_locations(actor: Actor) -> dict[str, Location]:
    """Return the demo's locations by code, made through the location service when missing
    (an existing one is kept as staff left it)."""
    found: dict[str, Location] = {}
    for code, name in DEMO_LOCATIONS:
        after = max((place.priority for place in found.values()), default=0)
        place = Location.objects.filter(code=code).first()
        if place is None:
            place = location_create(
                actor=actor, code=code, name=name, priority=after + LOCATION_STEP
            )
        found[code] = place
    return found


def _spread(
    seed: int, places: dict[str, Location], received: dict[int, tuple[str, int]]
) -> dict[str, dict[int, int]]:
    """Return the units each product (id → its SKU and units) receives, by location code."""
    # A demo location staff have deactivated: its share goes to the first active one.
    active = [code for code, place in places.items() if place.is_active]
    at: dict[str, dict[int, int]] = {}
    for pk, (sku, units) in received.items():
        for code, part in demo_stock_spread(seed, sku, units).items():
            into = at.setdefault(code if code in active else (active or [code])[0], {})
            into[pk] = into.get(pk, 0) + part
    return at


def seed_stock(run: DemoRun) -> str:
    """Receive the demo stock of the run's published variants (and products without
    variants) never stocked before."""
    selling = sellable_ids(run.product_ids)
    stocked = set(
        InventoryMovement.objects.filter(product_id__in=selling)
        .values_list("product_id", flat=True)
        .distinct()
    )
    products = dict(
        Product.objects.filter(pk__in=selling, status=Product.Status.PUBLISHED)
        .exclude(pk__in=stocked)
        .values_list("pk", "sku")
    )
    thresholds = setting_get_many(LOW_STOCK_SETTING, product_ids=list(products))
    targets = {pk: demo_stock_level(run.seed, sku, thresholds[pk]) for pk, sku in products.items()}
    received = {pk: units for pk, units in targets.items() if units > 0}
    places = demo_locations(run.actor) if received else {}
    at = _spread(run.seed, places, {pk: (products[pk], units) for pk, units in received.items()})
    for code, place in places.items():
        if at.get(code):
            stock_set_levels(
                actor=run.actor,
                targets=at[code],
                kind=InventoryMovement.Kind.RECEIPT,
                reason="demo stock",
                reference=f"demo:seed {run.seed}",
                location=place,
            )
    units, out = sum(received.values()), len(targets) - len(received)
    return (
        f"Demo stock: {len(received)} product{pluralize(len(received))} received {units} "
        f"unit{pluralize(units)} at {', '.join(c for c in places if at.get(c)) or 'no location'}, "
        f"{out} left out of stock ({len(stocked)} already stocked)."
    )


register_seeding_step(SeedingStep(name="stock", position=10, run=seed_stock))
