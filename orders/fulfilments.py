"""Fulfilments: shipping an order's lines. The only writer of ``Fulfillment`` and
``FulfillmentLine``, and of the shipped counts and allocations they change.

Each step is one transaction that locks the order's row first (``order_transition``
takes the same lock when it saves a move), then the location (key share) and the
products' stock in the global order every stock writer uses. So a shipment and a move
of the same order queue behind each other, and of two shipments racing for a line's
last units the second sees what the first shipped.

Shipping sells the units at the location they leave from: units reserved there for the
line are sold from the reservation; units reserved elsewhere are released there and must
then be available where they leave. A line's allocations keep what is still reserved
(Σ allocations + ``quantity_fulfilled`` = ``quantity`` for a stock-tracked line), which
is what ``check_inventory`` counts as held by open orders.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Case, F, Max, Q, Value, When
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record_many
from inventory import services as inventory
from inventory.models import Location
from orders.errors import OrderErrorCode as Code
from orders.locking import order_lock
from orders.models import Fulfillment, FulfillmentLine, LineAllocation, Order, OrderItem
from orders.payloads import fulfillment_payload, order_payload
from orders.refunds import clean_lines
from orders.selectors import fulfillments_shown, order_list
from pms_backend.bulk_update import bulk_update_rows
from pms_backend.errors import Conflict, InvalidInput, NotFound
from pms_backend.events.services import publish_many

# Variant (the line's product) id -> units to ship.
Lines = Mapping[int, int]
TEXT_FIELDS = ("carrier", "tracking_number", "tracking_url")
# A shipment may be recorded a little ahead of the server's clock (a scanner's), not more.
CLOCK_SKEW = timedelta(minutes=5)
LIMITS = {"carrier": 100, "tracking_number": 100, "tracking_url": 500}  # the columns' sizes
_web_address = URLValidator(schemes=["http", "https"])


def _refuse(code: str, message: str, field: str) -> InvalidInput:
    return InvalidInput(code, message, errors={field: [message]})


def _clean_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """Return the carrier, tracking and shipped-at values given, checked (400 otherwise)."""
    cleaned: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if details.get(name) is None:
            continue
        value = details[name]
        limit = LIMITS[name]
        if not isinstance(value, str) or len(value.strip()) > limit:
            raise _refuse(Code.INVALID_FULFILLMENT, f"At most {limit} characters of text.", name)
        cleaned[name] = value.strip()
    if cleaned.get("tracking_url"):
        try:
            _web_address(cleaned["tracking_url"])
        except ValidationError:
            raise _refuse(
                Code.INVALID_FULFILLMENT,
                "The tracking URL must be a web address (http:// or https://).",
                "tracking_url",
            ) from None
    shipped_at = details.get("shipped_at")
    if shipped_at is not None:
        if not isinstance(shipped_at, datetime) or timezone.is_naive(shipped_at):
            raise _refuse(Code.INVALID_FULFILLMENT, "A moment with its time zone.", "shipped_at")
        if shipped_at > timezone.now() + CLOCK_SKEW:
            raise _refuse(
                Code.INVALID_FULFILLMENT, "A shipment cannot be dated in the future.", "shipped_at"
            )
        cleaned["shipped_at"] = shipped_at
    return cleaned


def shippable(item: OrderItem) -> int:
    """Return the units of ``item`` that may ship now: not shipped yet, and not waiting for
    stock (backordered units have none reserved until it arrives)."""
    return item.quantity - item.quantity_fulfilled - item.backordered


def _wanted(order: Order, items: dict[int, OrderItem], lines: Lines | None) -> dict[int, int]:
    """Return ``{product_id: units}`` to ship: ``lines``, or all that may ship (``None``).
    Refuse (400) a product the order does not hold, (409) more than may ship."""
    if lines is None:
        wanted = {pid: shippable(item) for pid, item in items.items() if shippable(item) > 0}
    else:
        wanted = clean_lines(lines, code=Code.INVALID_FULFILLMENT)
    if not wanted:
        raise _refuse(Code.INVALID_FULFILLMENT, "Name at least one line to ship.", "lines")
    foreign = sorted(set(wanted) - set(items))
    if foreign:
        raise InvalidInput(
            Code.INVALID_FULFILLMENT,
            f"Order {order.number} has no line of product {', '.join(map(str, foreign))}.",
            errors={"lines": ["Name products of the order's lines."]},
            extra={"products": foreign},
        )
    over = [
        {
            "product": pid,
            "sku": items[pid].sku,
            "requested": qty,
            "remaining": shippable(items[pid]),
            "backordered": items[pid].backordered,
        }
        for pid, qty in sorted(wanted.items())
        if qty > shippable(items[pid])
    ]
    if over:
        raise Conflict(
            Code.FULFILLMENT_EXCEEDS_REMAINING,
            "More than is left to ship: "
            + ", ".join(
                f"{o['sku']} ({o['requested']} to ship, {o['remaining']} left"
                + (f"; {o['backordered']} wait for stock" if o["backordered"] else "")
                + ")"
                for o in over
            )
            + ". Nothing was shipped.",
            extra={"lines": over},
        )
    return wanted


def _location(value: Location | int | str | None, allocated: set[int]) -> Location:
    """Return the location named (a ``Location``, id or code; 400 when unknown), or, with
    none named, the one location where the lines are reserved (400 when there are
    several; the default location when none are); held and active (409 otherwise)."""
    if value is None:
        if len(allocated) > 1:
            codes = ", ".join(
                Location.objects.filter(pk__in=allocated)
                .order_by("priority", "id")
                .values_list("code", flat=True)
            )
            raise _refuse(
                Code.LOCATION_REQUIRED,
                f"The lines are reserved at {codes}: name the location they leave from.",
                "location",
            )
        value = next(iter(allocated)) if allocated else None
    return inventory.location_named(value)


def _use_reservations(
    wanted: dict[int, int],
    items: dict[int, OrderItem],
    allocations: list[LineAllocation],
    here: int,
) -> tuple[dict[tuple[int, int], int], list[tuple[LineAllocation, int]]]:
    """Return the reservations the shipment uses up (``{(product, location): units}``:
    first where it leaves, then elsewhere in location order) and the allocations with
    the units taken off each (lowered on the rows as read; at zero, to be deleted)."""
    by_item: dict[int, list[LineAllocation]] = {}
    for allocation in allocations:
        by_item.setdefault(allocation.item_id, []).append(allocation)
    used: dict[tuple[int, int], int] = {}
    changed: list[tuple[LineAllocation, int]] = []
    for pid, quantity in wanted.items():
        item = items[pid]
        if not item.stock_tracked:
            continue
        options = sorted(by_item.get(item.pk, []), key=lambda a: a.location_id != here)
        for allocation in options:
            if quantity == 0:
                break
            units = min(quantity, allocation.quantity)
            used[(pid, allocation.location_id)] = units
            allocation.quantity -= units
            changed.append((allocation, units))
            quantity -= units
    return used, changed


def _require_processing(order: Order) -> None:
    if order.status != Order.Status.PROCESSING:
        raise Conflict(
            Code.INVALID_TRANSITION,
            f"Only an order in processing ships; order {order.number} is {order.status}.",
            extra={"current_status": order.status},
        )


def _allocations_of(item_ids: list[int]) -> list[LineAllocation]:
    """Return where the lines are still reserved (by location id)."""
    if not item_ids:
        return []
    return list(LineAllocation.objects.filter(item__in=item_ids).order_by("location_id"))


def _next_sequence(order: Order) -> int:
    return (order.fulfillments.aggregate(last=Max("sequence"))["last"] or 0) + 1


def _sell(
    actor: Actor,
    fulfillment: Fulfillment,
    items: dict[int, OrderItem],
    tracked: dict[int, int],
    allocations: list[LineAllocation],
    records: inventory.StockRecords,
) -> None:
    """Sell the shipment's stock-tracked units where it leaves from, using up the lines'
    reservations (see the module's docstring)."""
    used, changed = _use_reservations(tracked, items, allocations, fulfillment.location_id)
    inventory.stock_ship(
        actor=actor,
        location=fulfillment.location,
        lines=tracked,
        reserved=used,
        reference=f"order:{fulfillment.order.number}",
        reason=f"fulfilment {fulfillment.number}",
        records=records,
    )
    _lower_allocations(changed)


def _record_lines(
    fulfillment: Fulfillment, items: dict[int, OrderItem], wanted: dict[int, int]
) -> list[FulfillmentLine]:
    """Write the shipment's lines and add their units to the order lines' shipped count."""
    shipped = FulfillmentLine.objects.bulk_create(
        [
            FulfillmentLine(fulfillment=fulfillment, item=items[pid], quantity=qty)
            for pid, qty in sorted(wanted.items())
        ]
    )
    _hold_lines(fulfillment, shipped)
    for pid, qty in wanted.items():
        items[pid].quantity_fulfilled += qty
    bulk_update_rows([items[pid] for pid in wanted], ["quantity_fulfilled"])
    return shipped


def fulfillment_create(
    *,
    actor: Actor,
    order_id: uuid.UUID | str,
    lines: Lines | None = None,
    location: Location | int | str | None = None,
    carrier: str = "",
    tracking_number: str = "",
    tracking_url: str = "",
    shipped_at: datetime | None = None,
) -> Fulfillment:
    """Ship ``lines`` (``{product_id: units}``; ``None``: everything left) of a Processing
    order from ``location`` (default: where the lines are reserved, when that is one place).

    Sells the units there (see the module's docstring), adds them to the lines'
    ``quantity_fulfilled`` and, once every line has shipped whole, completes the order in
    the same transaction. Refuse (404) an unknown order, (409 ``invalid_transition``) one
    not in Processing, (400) a product not in the order, a bad tracking URL or a future
    ``shipped_at``, (409 ``fulfillment_exceeds_remaining``) more than is left of a line,
    (409 ``insufficient_stock``) a location without the units: nothing is written then.
    """
    details = _clean_details(
        {
            "carrier": carrier,
            "tracking_number": tracking_number,
            "tracking_url": tracking_url,
            "shipped_at": shipped_at,
        }
    )
    with transaction.atomic():
        order = order_lock(order_id)
        _require_processing(order)
        items = {item.product_id: item for item in order.items.all()}
        # The lines' stock rows next (the order, then stock: every writer's order): a
        # stock arrival serving the order's waiting units (orders.backorders) has then
        # committed before the allocations are read, or waits for this shipment. (Waiting
        # units only fall: read before the lock, they leave less to ship, never more.)
        inventory.stock_lock(pid for pid, item in items.items() if item.stock_tracked)
        wanted = _wanted(order, items, lines)
        tracked = {pid: qty for pid, qty in wanted.items() if items[pid].stock_tracked}
        allocations = _allocations_of([items[pid].pk for pid in tracked])
        place = _location(location, {a.location_id for a in allocations})
        now = timezone.now()
        sequence = _next_sequence(order)
        fulfillment = Fulfillment.objects.create(
            order=order,
            sequence=sequence,
            number=f"{order.number}-{sequence}",
            location=place,
            shipped_at=details.pop("shipped_at", None) or now,
            created_by=actor.label[:200],
            created_at=now,
            **details,
        )
        records = inventory.StockRecords()
        if tracked:
            _sell(actor, fulfillment, items, tracked, allocations, records)
        shipped = _record_lines(fulfillment, items, wanted)
        entries = [_created_entry(fulfillment, {line.item.sku: line.quantity for line in shipped})]
        completion: list[tuple[str, dict[str, Any], str]] = []
        if all(item.quantity_fulfilled == item.quantity for item in items.values()):
            # The last units shipped: the order is done, in this transaction.
            order.complete(at=now)
            order.save()
            entries.append(_completed_entry(order))
            completion.append(_completed_event(order))
        audit_record_many(actor=actor, entries=[*records.audit_entries, *entries])
        publish_many([*records.events, _created_event(fulfillment, order), *completion])
    return fulfillment


def _lower_allocations(taken: list[tuple[LineAllocation, int]]) -> None:
    """Take the shipped units off the allocations; delete those with nothing left.

    Relative to the rows as they are now, not as read: stock arriving for the line's
    waiting units (``orders.backorders``, under the stock lock, not the order's) may have
    grown one between the read and the stock lock this shipment took since."""
    emptied = [(row, units) for row, units in taken if row.quantity == 0]
    deleted = 0
    if emptied:
        exactly = Q()
        for row, units in emptied:
            exactly |= Q(pk=row.pk, quantity=units)
        deleted, _ = LineAllocation.objects.filter(exactly).delete()
    # Rows grown meanwhile were not deleted: they are lowered with the rest.
    rest = taken if deleted < len(emptied) else [(r, u) for r, u in taken if r.quantity > 0]
    if rest:
        LineAllocation.objects.filter(pk__in=[row.pk for row, _ in rest]).update(
            quantity=F("quantity")
            - Case(*(When(pk=row.pk, then=Value(units)) for row, units in rest))
        )


def _hold_lines(fulfillment: Fulfillment, lines: list[FulfillmentLine]) -> None:
    """Make ``fulfillment.lines`` answer from the rows just written (see
    ``orders.services._hold_items``)."""
    held = fulfillment.lines.all()
    held._result_cache = lines
    held._prefetch_done = True  # type: ignore[attr-defined]  # Django's
    fulfillment._prefetched_objects_cache = {"lines": held}  # type: ignore[attr-defined]


def _created_entry(fulfillment: Fulfillment, shipped: dict[str, int]) -> dict[str, Any]:
    return {
        "action": "fulfillment.create",
        "object_type": fulfillment._meta.label_lower,
        "object_id": fulfillment.pk,
        "object_repr": fulfillment.number,
        "changes": {
            "location": {"before": None, "after": fulfillment.location.code},
            "lines": {"before": None, "after": dict(sorted(shipped.items()))},
        }
        | {
            name: {"before": None, "after": getattr(fulfillment, name)}
            for name in TEXT_FIELDS
            if getattr(fulfillment, name)
        },
    }


def _created_event(fulfillment: Fulfillment, order: Order) -> tuple[str, dict[str, Any], str]:
    return ("fulfillment.created", fulfillment_payload(fulfillment, order), f"order:{order.pk}")


def _completed_entry(order: Order) -> dict[str, Any]:
    return {
        "action": "order.complete",
        "object_type": order._meta.label_lower,
        "object_id": order.pk,
        "object_repr": str(order),
        "changes": {"status": {"before": Order.Status.PROCESSING, "after": order.status}},
    }


def _completed_event(order: Order) -> tuple[str, dict[str, Any], str]:
    shown = order_list().get(pk=order.pk)
    return (
        "order.status_changed",
        order_payload(shown) | {"from": Order.Status.PROCESSING, "to": order.status},
        f"order:{order.pk}",
    )


def ship_remaining(*, actor: Actor, order: Order, at: datetime | None = None) -> list[Fulfillment]:
    """Ship every unit not shipped yet of an order being completed (its row locked by the
    caller's move): sell what is still reserved where it is reserved, as completing always
    has, recorded as one fulfilment per location (the lines that track no stock with the
    first), shipped ``at`` (the move's moment; default now). Return the fulfilments made;
    the caller audits and announces the move."""
    items = [item for item in order.items.all() if item.quantity_fulfilled < item.quantity]
    if not items:
        return []
    allocations = list(
        LineAllocation.objects.filter(item__order=order)
        .select_related("location", "item")
        .order_by("location__priority", "location_id", "item_id")
    )
    if allocations:
        inventory.stock_sell(
            actor=actor,
            lines={(a.item.product_id, a.location_id): a.quantity for a in allocations},
            reference=f"order:{order.number}",
        )
    groups: dict[Location, list[tuple[OrderItem, int]]] = {}
    for allocation in allocations:
        groups.setdefault(allocation.location, []).append((allocation.item, allocation.quantity))
    untracked = [
        (item, item.quantity - item.quantity_fulfilled) for item in items if not item.stock_tracked
    ]
    if untracked:
        first = next(iter(groups), None) or _somewhere()
        groups[first] = groups.get(first, []) + untracked
    made = _write_fulfilments(actor, order, groups, at=at)
    LineAllocation.objects.filter(item__order=order).delete()
    order.items.update(quantity_fulfilled=F("quantity"))
    return made


def _write_fulfilments(
    actor: Actor,
    order: Order,
    groups: dict[Location, list[tuple[OrderItem, int]]],
    *,
    at: datetime | None,
) -> list[Fulfillment]:
    """Write one fulfilment of ``order`` per location with its lines, audited and
    announced; return them."""
    now = timezone.now()
    sequence = _next_sequence(order)
    made: list[Fulfillment] = []
    lines: list[FulfillmentLine] = []
    for offset, (place, held) in enumerate(groups.items()):
        fulfillment = Fulfillment.objects.create(
            order=order,
            sequence=sequence + offset,
            number=f"{order.number}-{sequence + offset}",
            location=place,
            shipped_at=at or now,
            created_by=actor.label[:200],
            created_at=now,
        )
        mine = [FulfillmentLine(fulfillment=fulfillment, item=i, quantity=q) for i, q in held]
        _hold_lines(fulfillment, mine)
        made.append(fulfillment)
        lines += mine
    FulfillmentLine.objects.bulk_create(lines)
    audit_record_many(
        actor=actor,
        entries=[
            _created_entry(f, {line.item.sku: line.quantity for line in f.lines.all()})
            for f in made
        ],
    )
    publish_many([_created_event(fulfillment, order) for fulfillment in made])
    return made


def _somewhere() -> Location:
    """Where lines that track no stock leave from: the default location, or, with every
    location inactive, the first one (nothing moves there)."""
    try:
        return inventory.default_location()
    except Conflict:
        return Location.objects.order_by("priority", "id").first() or inventory.default_location()


def fulfillment_update(
    *,
    actor: Actor,
    order_id: uuid.UUID | str,
    sequence: int,
    carrier: str | None = None,
    tracking_number: str | None = None,
    tracking_url: str | None = None,
    shipped_at: datetime | None = None,
) -> Fulfillment:
    """Change a fulfilment's carrier, tracking number or URL, or shipped-at (``None``:
    keep it). Refuse (404) an unknown order or fulfilment, (400) a bad value."""
    details = _clean_details(
        {
            "carrier": carrier,
            "tracking_number": tracking_number,
            "tracking_url": tracking_url,
            "shipped_at": shipped_at,
        }
    )
    with transaction.atomic():
        order = order_lock(order_id)
        fulfillment = fulfillments_shown().filter(order=order, sequence=sequence).first()
        if fulfillment is None:
            raise NotFound(
                Code.UNKNOWN_FULFILLMENT, f"Order {order.number} has no fulfilment {sequence}."
            )
        changes = {
            name: {"before": _shown(getattr(fulfillment, name)), "after": _shown(value)}
            for name, value in details.items()
            if getattr(fulfillment, name) != value
        }
        if not changes:
            return fulfillment
        for name in changes:
            setattr(fulfillment, name, details[name])
        fulfillment.save(update_fields=[*changes, "updated_at"])
        audit_record_many(
            actor=actor,
            entries=[
                {
                    "action": "fulfillment.update",
                    "object_type": fulfillment._meta.label_lower,
                    "object_id": fulfillment.pk,
                    "object_repr": fulfillment.number,
                    "changes": changes,
                }
            ],
        )
        publish_many(
            [
                (
                    "fulfillment.updated",
                    fulfillment_payload(fulfillment, order) | {"changed": sorted(changes)},
                    f"order:{order.pk}",
                )
            ]
        )
    return fulfillment


def _shown(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
