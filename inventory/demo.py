"""Demo stock: the published demo products receive goods, most plenty, some few, a few none.

A seeding step of ``seed_database`` (``pms_backend.seeding``): the receipts go through the
stocktake service, so each is a ledger movement with its audit entry and events. Only
products never stocked before are touched: running it again, or on a product staff have
already stocked, adds nothing.
"""

from __future__ import annotations

import random

from django.template.defaultfilters import pluralize

from catalog.models import Product
from inventory.models import LOW_STOCK_SETTING, InventoryMovement
from inventory.stocktake import stock_set_levels
from pms_backend.seeding import DemoRun, SeedingStep, register_seeding_step
from pms_backend.shopsettings.selectors import setting_get_many

WELL_STOCKED = (40, 250)  # units received by most products
LOW_SHARE, OUT_SHARE = 0.12, 0.06  # the rest: at or under the threshold, or none at all


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


def seed_stock(run: DemoRun) -> str:
    """Receive the demo stock of the run's published products never stocked before."""
    stocked = set(
        InventoryMovement.objects.filter(product_id__in=run.product_ids)
        .values_list("product_id", flat=True)
        .distinct()
    )
    products = dict(
        Product.objects.filter(pk__in=run.product_ids, status=Product.Status.PUBLISHED)
        .exclude(pk__in=stocked)
        .values_list("pk", "sku")
    )
    thresholds = setting_get_many(LOW_STOCK_SETTING, product_ids=list(products))
    targets = {pk: demo_stock_level(run.seed, sku, thresholds[pk]) for pk, sku in products.items()}
    received = {pk: units for pk, units in targets.items() if units > 0}
    if received:
        stock_set_levels(
            actor=run.actor,
            targets=received,
            kind=InventoryMovement.Kind.RECEIPT,
            reason="demo stock",
            reference=f"demo:seed {run.seed}",
        )
    units, out = sum(received.values()), len(targets) - len(received)
    return (
        f"Demo stock: {len(received)} product{pluralize(len(received))} received {units} "
        f"unit{pluralize(units)}, {out} left out of stock ({len(stocked)} already stocked)."
    )


register_seeding_step(SeedingStep(name="stock", position=10, run=seed_stock))
