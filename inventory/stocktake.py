"""Setting stock to counted levels in bulk (imports, stocktakes).

The same records as ``inventory.services``: one ledger movement, one audit entry and a
``stock.updated`` event (plus ``stock.low`` on crossing the threshold) per product whose
level changes, written in batches instead of one query per product.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record_many
from inventory.errors import InventoryErrorCode as Code
from inventory.models import LOW_STOCK_SETTING, InventoryMovement, Location, Stock, StockLevel
from inventory.payloads import stock_representation
from inventory.services import (
    MAX_MOVEMENT_QUANTITY,
    location_resolve,
    refuse_products_with_variants,
    serve_waiting,
)
from pms_backend.bulk_update import bulk_update_rows
from pms_backend.errors import Conflict, InvalidInput
from pms_backend.events.services import publish_many
from pms_backend.plurals import counted
from pms_backend.shopsettings.selectors import setting_get_many

Kind = InventoryMovement.Kind
LEVEL_KINDS = (Kind.RECEIPT, Kind.ADJUSTMENT, Kind.CORRECTION)
LOCK_BATCH = 1000


def stock_set_levels(
    *,
    actor: Actor,
    targets: Mapping[int, int],
    kind: str,
    reason: str,
    reference: str = "",
    location: Location | int | str | None = None,
) -> int:
    """Bring each product's ``on_hand`` at ``location`` (default: the default location) to
    its target; return how many movements were made. The products' totals move by the
    same differences.

    ``targets`` maps product id → wanted ``on_hand`` (0 to ``MAX_MOVEMENT_QUANTITY``).
    Each product whose level differs gets one movement of ``kind`` with the difference
    (a receipt only adds). Stock rows are locked in primary-key order, in batches, so
    this queues behind orders instead of deadlocking with them. Raise ``Conflict``
    (``insufficient_stock``, every offending product in ``extra["lines"]``) when a target
    is below what open orders have reserved; the caller's transaction then rolls back.
    """
    if kind not in LEVEL_KINDS:
        raise InvalidInput(
            Code.INVALID_MOVEMENT,
            f"Kind must be one of {', '.join(LEVEL_KINDS)} to set stock levels.",
        )
    if not reason.strip():
        raise InvalidInput(Code.INVALID_MOVEMENT, "Setting stock levels needs a reason.")
    for product_id, target in targets.items():
        if isinstance(target, bool) or not isinstance(target, int):
            raise InvalidInput(Code.INVALID_MOVEMENT, f"Target for {product_id} is not a number.")
        if not 0 <= target <= MAX_MOVEMENT_QUANTITY:
            raise InvalidInput(
                Code.INVALID_MOVEMENT,
                f"Target for product {product_id} must be from 0 to {MAX_MOVEMENT_QUANTITY}.",
            )
    moved, short = 0, cast(list[dict[str, int]], [])
    with transaction.atomic():
        refuse_products_with_variants(targets)
        place = location_resolve(location)
        ids = sorted(targets)
        for start in range(0, len(ids), LOCK_BATCH):
            chunk = ids[start : start + LOCK_BATCH]
            moved += _set_chunk(actor, place, chunk, targets, (kind, reason, reference), short)
        if short:
            raise Conflict(
                Code.INSUFFICIENT_STOCK,
                f"{counted(len(short), 'product')} would go below what open orders have reserved: "
                + ", ".join(
                    f"product {s['product']} ({s['requested']} wanted, {s['reserved']} reserved)"
                    for s in short[:20]
                )
                + ("…" if len(short) > 20 else "")
                + ".",
                extra={"lines": short},
            )
    return moved


def _difference(
    kind: str, place: Location, level: StockLevel, target: int, short: list[dict[str, Any]]
) -> int:
    """Return what takes ``level`` to ``target`` (0: nothing to do). A target below what
    open orders reserved there is added to ``short`` (and 0 returned); a receipt that
    would take stock off is refused."""
    delta = target - level.on_hand
    if delta and target < level.reserved:
        short.append(
            {
                "product": level.product_id,
                "location": place.code,
                "requested": target,
                "reserved": level.reserved,
            }
        )
        return 0
    if kind == Kind.RECEIPT and delta < 0:
        raise InvalidInput(
            Code.INVALID_MOVEMENT,
            f"A receipt adds stock; product {level.product_id} would lose {-delta}.",
        )
    return delta


def _lock_chunk(
    place: Location, chunk: list[int], targets: Mapping[int, int]
) -> tuple[dict[int, Stock], dict[int, StockLevel]]:
    """Lock the totals and the levels at ``place`` of ``chunk``; return both by product.

    The rows a count may move are made before they are locked, as inventory.services
    makes them (a row made after the lock would collide with one a receipt made
    meanwhile); a product never stocked and counted 0 gets none. Totals first, then
    levels, each in product order: every writer's lock order.
    """
    moving = [pid for pid in chunk if targets[pid]]
    Stock.objects.bulk_create(
        [Stock(product_id=pid) for pid in moving], batch_size=LOCK_BATCH, ignore_conflicts=True
    )
    stocks = {
        row.product_id: row
        for row in Stock.objects.select_for_update().filter(product_id__in=chunk).order_by("pk")
    }
    StockLevel.objects.bulk_create(
        [StockLevel(product_id=pid, location=place) for pid in moving],
        batch_size=LOCK_BATCH,
        ignore_conflicts=True,
    )
    levels = {
        row.product_id: row
        for row in StockLevel.objects.select_for_update()
        .filter(product_id__in=chunk, location=place)
        .order_by("product_id")
    }
    return stocks, levels


def _set_chunk(actor, place: Location, chunk, targets, what, short) -> int:
    kind, reason, reference = what
    now = timezone.now()
    stocks, levels = _lock_chunk(place, chunk, targets)
    thresholds = setting_get_many(LOW_STOCK_SETTING, product_ids=chunk)
    changed: list[Stock] = []
    levels_changed: list[StockLevel] = []
    movements: list[InventoryMovement] = []
    audit: list[Any] = []
    events: list[Any] = []
    raised: list[int] = []
    for product_id in chunk:
        target = targets[product_id]
        level = levels.get(product_id)
        if level is None:
            continue  # never stocked here, and counted 0 (a row is made for any other count)
        stock = stocks[product_id]
        delta = _difference(kind, place, level, target, short)
        if delta == 0:
            continue
        changed.append(stock)
        levels_changed.append(level)
        if delta > 0:
            raised.append(product_id)
        threshold = thresholds[product_id]
        was_low = stock.available <= threshold
        before = level.on_hand
        stock.on_hand += delta
        stock.updated_at = now
        level.on_hand = target
        level.updated_at = now
        movements.append(
            InventoryMovement(
                product_id=product_id,
                location=place,
                kind=kind,
                on_hand_delta=delta,
                reserved_delta=0,
                on_hand_after=stock.on_hand,
                reserved_after=stock.reserved,
                reason=reason[:500],
                reference=reference[:64],
                actor_label=actor.label[:200],
            )
        )
        audit.append(
            {
                "action": f"stock.{kind}",
                "object_type": "inventory.stock",
                "object_id": product_id,
                "changes": {
                    "on_hand": {"before": before, "after": level.on_hand},
                    "location": {"before": None, "after": place.code},
                }
                | ({"reference": {"before": None, "after": reference}} if reference else {}),
            }
        )
        data = stock_representation(stock) | {"locations": [place.code]}
        events.append(("stock.updated", data, f"product:{product_id}"))
        if stock.available <= threshold and not was_low:
            events.append(
                ("stock.low", data | {"low_stock_threshold": threshold}, f"product:{product_id}")
            )
    if short:
        return 0  # the whole call fails; no point writing what will be rolled back
    bulk_update_rows(changed, ["on_hand", "updated_at"], batch_size=LOCK_BATCH)
    bulk_update_rows(levels_changed, ["on_hand", "updated_at"], batch_size=LOCK_BATCH)
    InventoryMovement.objects.bulk_create(movements, batch_size=LOCK_BATCH)
    audit_record_many(actor=actor, entries=audit)
    publish_many(events)
    # Counted up: the units waiting for these products get their share now.
    serve_waiting(actor=actor, stocks=stocks, product_ids=raised)
    return len(movements)
