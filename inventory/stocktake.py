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
from inventory.models import LOW_STOCK_SETTING, InventoryMovement, Stock
from inventory.payloads import stock_representation
from inventory.services import MAX_MOVEMENT_QUANTITY
from pms_backend.bulk_update import bulk_update_rows
from pms_backend.errors import Conflict, InvalidInput
from pms_backend.events.services import publish_many
from pms_backend.plurals import counted
from pms_backend.shopsettings.selectors import setting_get_many

Kind = InventoryMovement.Kind
LEVEL_KINDS = (Kind.RECEIPT, Kind.ADJUSTMENT, Kind.CORRECTION)
LOCK_BATCH = 1000


def stock_set_levels(
    *, actor: Actor, targets: Mapping[int, int], kind: str, reason: str, reference: str = ""
) -> int:
    """Bring each product's ``on_hand`` to its target; return how many movements were made.

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
        ids = sorted(targets)
        for start in range(0, len(ids), LOCK_BATCH):
            chunk = ids[start : start + LOCK_BATCH]
            moved += _set_chunk(actor, chunk, targets, kind, reason, reference, short)
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


def _set_chunk(actor, chunk, targets, kind, reason, reference, short) -> int:
    now = timezone.now()
    stocks = {
        row.product_id: row
        for row in Stock.objects.select_for_update().filter(product_id__in=chunk).order_by("pk")
    }
    thresholds = setting_get_many(LOW_STOCK_SETTING, product_ids=chunk)
    changed: list[Stock] = []
    created: list[Stock] = []
    movements: list[InventoryMovement] = []
    audit: list[Any] = []
    events: list[Any] = []
    for product_id in chunk:
        target = targets[product_id]
        stock = stocks.get(product_id)
        if stock is None:
            stock = Stock(product_id=product_id)  # never stocked: as if a zero row
        delta = target - stock.on_hand
        if delta == 0:
            continue
        if target < stock.reserved:
            short.append({"product": product_id, "requested": target, "reserved": stock.reserved})
            continue
        if kind == Kind.RECEIPT and delta < 0:
            raise InvalidInput(
                Code.INVALID_MOVEMENT,
                f"A receipt adds stock; product {product_id} would lose {-delta}.",
            )
        (changed if product_id in stocks else created).append(stock)
        threshold = thresholds[product_id]
        was_low = stock.available <= threshold
        before = stock.on_hand
        stock.on_hand = target
        stock.updated_at = now
        movements.append(
            InventoryMovement(
                product_id=product_id,
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
                "changes": {"on_hand": {"before": before, "after": stock.on_hand}}
                | ({"reference": {"before": None, "after": reference}} if reference else {}),
            }
        )
        data = stock_representation(stock)
        events.append(("stock.updated", data, f"product:{product_id}"))
        if stock.available <= threshold and not was_low:
            events.append(
                ("stock.low", data | {"low_stock_threshold": threshold}, f"product:{product_id}")
            )
    if short:
        return 0  # the whole call fails; no point writing what will be rolled back
    bulk_update_rows(changed, ["on_hand", "updated_at"], batch_size=LOCK_BATCH)
    Stock.objects.bulk_create(created, batch_size=LOCK_BATCH)
    InventoryMovement.objects.bulk_create(movements, batch_size=LOCK_BATCH)
    audit_record_many(actor=actor, entries=audit)
    publish_many(events)
    return len(movements)
