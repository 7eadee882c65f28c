"""What the demo orders go through after their moves (issue 17): shipments with carriers
and tracking, orders partly shipped, partial refunds, returns in every state, and lines
waiting for stock of a variant taking backorders or preorders.

Part of the ``orders`` seeding step (``orders.demo``): each demo order's extra is drawn
from its index, so the same seed gives the same demo, and is applied right after the order
is placed and moved, so an order already there is never touched again. Everything goes
through the services; only what they let be dated is back-dated (a shipment's
``shipped_at``); refunds and returns carry the moment of seeding.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict

from audit.actors import Actor
from catalog.models import Product
from catalog.selectors import sellable_ids
from catalog.services import product_update
from catalog.variants import variant_update
from inventory.models import InventoryMovement
from orders.fulfilments import fulfillment_create, fulfillment_update
from orders.models import Fulfillment, LineAllocation, Order
from orders.refunds import refund_create
from orders.returns import return_cancel, return_receive, return_refund, return_request

# Extras by (position in the status cycle, cycle number); ``None``: every cycle. With the
# default 150 orders (six cycles): 6 processing orders partly shipped and 2 with units
# waiting (a preorder, a backorder), 6 completed ones partly refunded, returns requested
# (2), received (2, one with a damaged unit), refunded (2) and cancelled (1).
EXTRAS: dict[tuple[int, int | None], str] = {
    (2, 0): "preorder",
    (2, 1): "backorder",
    (12, None): "partly_shipped",
    (7, None): "partial_refund",
    (10, 0): "return_requested",
    (10, 1): "return_requested",
    (13, 0): "return_received_damaged",
    (13, 1): "return_received",
    (16, 0): "return_refunded",
    (16, 1): "return_refunded",
    (19, 0): "return_cancelled",
}
WAITING = ("preorder", "backorder")
# Extras taking part of an order (shipping, refunding or returning it): its order is
# drawn with two units at least, so a part is less than the whole.
PART_OF_AN_ORDER = frozenset(
    extra for extra in EXTRAS.values() if extra not in WAITING and extra != "return_cancelled"
)
BACKORDER_LIMIT, PREORDER_LIMIT = 25, 100
PREORDER_DAYS = 21  # preorders open until three weeks after the seeding
REFUND_REASONS = (
    "Arrived damaged",
    "Wrong size sent",
    "Item missing from the parcel",
    "Late delivery: goodwill gesture",
)
RETURN_REASONS = ("Does not fit", "Not as pictured", "Changed their mind", "Faulty on arrival")


def demo_extra(index: int, cycle_length: int) -> str:
    """Return what demo order ``index`` goes through besides its moves ("" for nothing)."""
    cycle, position = divmod(index, cycle_length)
    return EXTRAS.get((position, cycle)) or EXTRAS.get((position, None)) or ""


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


class Tracking(TypedDict):
    carrier: str
    tracking_number: str
    tracking_url: str


def demo_tracking(rng: random.Random) -> Tracking:
    """Return a carrier, a tracking number of its shape and its https tracking page."""
    carrier = rng.choice(("DHL", "UPS", "Royal Mail"))
    if carrier == "DHL":
        number = _digits(rng, 10)
        url = f"https://www.dhl.com/gb-en/home/tracking.html?tracking-id={number}"
    elif carrier == "UPS":
        alphabet = string.ascii_uppercase + string.digits
        number = "1Z" + "".join(rng.choice(alphabet) for _ in range(16))
        url = f"https://www.ups.com/track?tracknum={number}"
    else:
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(2))
        number = f"{letters}{_digits(rng, 9)}GB"
        url = f"https://www.royalmail.com/track-your-item#/tracking-results/{number}"
    return {"carrier": carrier, "tracking_number": number, "tracking_url": url}


@dataclass
class WaitingVariants:
    """The demo variants taking orders beyond stock, by kind ("backorder", "preorder")."""

    ids: dict[str, int] = field(default_factory=dict)
    made: int = 0  # how many this run set up


def demo_waiting_variants(
    *, seed: int, actor: Actor, product_ids: list[int], now: datetime
) -> WaitingVariants:
    """Return the run's variant taking backorders and the one taking preorders: those set
    already, else one never stocked of each, set up through the catalog's services."""
    selling = Product.objects.filter(
        pk__in=sellable_ids(product_ids), status=Product.Status.PUBLISHED, track_stock=True
    ).order_by("sku")
    found = WaitingVariants()
    backorder = selling.filter(allow_backorder=True).first()
    preorder = selling.filter(preorder_until__gt=now).first()
    if backorder and preorder:
        found.ids = {"backorder": backorder.pk, "preorder": preorder.pk}
        return found
    stocked = InventoryMovement.objects.filter(product__in=selling).values("product_id")
    candidates = list(
        selling.exclude(pk__in=stocked)
        .filter(allow_backorder=False, preorder_until=None)
        .values_list("pk", "parent_id")
    )
    rng = random.Random(f"{seed}:waiting")
    picks = rng.sample(candidates, min(2, len(candidates)))
    until = (now + timedelta(days=PREORDER_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    settings: dict[str, dict[str, Any]] = {
        "backorder": {"allow_backorder": True, "backorder_limit": BACKORDER_LIMIT},
        "preorder": {"preorder_until": until, "preorder_limit": PREORDER_LIMIT},
    }
    for kind, existing in (("backorder", backorder), ("preorder", preorder)):
        if existing is not None:
            found.ids[kind] = existing.pk
        elif picks:
            pk, parent_id = picks.pop()
            update = variant_update if parent_id else _product_update
            update(actor=actor, variant_id=pk, data=settings[kind])
            found.ids[kind], found.made = pk, found.made + 1
    return found


def _product_update(*, actor: Actor, variant_id: int, data: dict[str, Any]) -> Product:
    """A product without variants is its own variant: its settings are the product's."""
    return product_update(actor=actor, product_id=variant_id, data=data)


def waiting_line(extra: str, rng: random.Random, waiting: WaitingVariants) -> dict[int, int]:
    """Return the line (variant → units) an order with units waiting adds, if any."""
    if extra not in WAITING or extra not in waiting.ids:
        return {}
    return {waiting.ids[extra]: rng.choice((1, 2, 2, 3))}


def _part(lines: dict[int, int]) -> dict[int, int]:
    """One line's units (the last line of several; one unit of a single line of more)."""
    pid = sorted(lines)[-1]
    return {pid: lines[pid] if len(lines) > 1 else max(lines[pid] - 1, 1)}


def apply_extra(
    *,
    actor: Actor,
    order: Order,
    extra: str,
    lines: dict[int, int],
    rng: random.Random,
    now: datetime,
) -> None:
    """Take placed and moved ``order`` (its ``lines``) through its ``extra``, and give the
    shipments of a completed order their carrier and tracking."""
    if extra == "partly_shipped":
        _ship_part(actor, order, rng, now)
    if order.completed_at is None:
        return
    for fulfillment in Fulfillment.objects.filter(order=order, carrier="").order_by("sequence"):
        fulfillment_update(
            actor=actor, order_id=order.pk, sequence=fulfillment.sequence, **demo_tracking(rng)
        )
    if order.status != Order.Status.COMPLETED:
        return
    if extra == "partial_refund":
        _refund_part(actor, order, lines, rng)
    elif extra.startswith("return_"):
        _return(actor, order, extra.removeprefix("return_"), _part(lines), rng)


def _ship_part(actor: Actor, order: Order, rng: random.Random, now: datetime) -> None:
    """Ship the units reserved at one place of one line, when the order holds more."""
    allocations = list(
        LineAllocation.objects.filter(item__order=order)
        .select_related("item", "location")
        .order_by("item__product_id", "location__priority", "location_id")
    )
    if not allocations:
        return
    first = allocations[0]
    units = first.quantity
    if len(allocations) == 1:
        units -= 1  # its only place: the rest ships later
    if units < 1:
        return
    assert order.processing_at is not None  # a Processing order
    fulfillment_create(
        actor=actor,
        order_id=order.pk,
        lines={first.item.product_id: units},
        location=first.location,
        shipped_at=order.processing_at + (now - order.processing_at) * (0.3 + 0.5 * rng.random()),
        **demo_tracking(rng),
    )


def _refund_part(actor: Actor, order: Order, lines: dict[int, int], rng: random.Random) -> None:
    """Refund one line's units; an order of one unit gets a quarter of its price back."""
    units = _part(lines)
    amount = None
    if sum(lines.values()) == 1:
        (item,) = order.items.all()
        amount = (item.unit_price / 4).quantize(Decimal("0.01")) or None
    refund_create(
        actor=actor,
        order_id=order.pk,
        lines=units,
        amount=amount,
        reason=rng.choice(REFUND_REASONS),
    )


def _return(
    actor: Actor, order: Order, state: str, units: dict[int, int], rng: random.Random
) -> None:
    """Open a return of ``units`` and take it to ``state``: requested, received (put back
    where it shipped from; "received_damaged": one unit written off), refunded, cancelled."""
    rma = return_request(
        actor=actor, order_id=order.pk, lines=units, reason=rng.choice(RETURN_REASONS)
    )
    if state == "cancelled":
        return_cancel(actor=actor, order_id=order.pk, number=rma.number, reason="Customer kept it")
        return
    if state == "requested":
        return
    shipped = Fulfillment.objects.filter(order=order).select_related("location").first()
    where = shipped.location.code if shipped and shipped.location.is_active else None
    damaged = 1 if state == "received_damaged" else 0
    receipt: list[Mapping[str, Any]] = [
        {"product": pid, "restocked": qty - damaged, "damaged": damaged, "location": where}
        for pid, qty in units.items()
    ]
    return_receive(actor=actor, order_id=order.pk, number=rma.number, lines=receipt)
    if state == "refunded":
        return_refund(actor=actor, order_id=order.pk, number=rma.number)
