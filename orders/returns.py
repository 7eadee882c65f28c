"""Returns (RMA): goods of an order sent back. The only writer of ``Return`` and
``ReturnLine``.

Requested → Received → Refunded, or Requested → Cancelled; each step one transaction
with its audit entry (on the order) and event, under the order's row lock (taken first,
before any stock lock, as refunds and the status machine take it). A return takes back
units shipped only: per line at most ``quantity_fulfilled`` less what the order's other
returns take back (what they asked for while requested, what arrived once received).
Receiving says, line by line, how many units came back on hand and where (a ``return``
movement in the ledger, at a location staff choose) and how many were written off as
damaged (no stock comes back, so no movement: the line records them). Refunding pays the
received units back through ``orders.refunds`` (their price unless staff give less).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from audit.actors import Actor
from inventory import services as inventory
from inventory.models import Location
from orders.errors import OrderErrorCode as Code
from orders.locking import order_lock
from orders.models import Order, OrderItem, Refund, Return, ReturnLine
from orders.payloads import money_text, return_payload
from orders.refunds import (
    Records,
    clean_amount,
    clean_lines,
    clean_reason,
    items_named,
    order_entry,
    pay_back,
)
from pms_backend.apikeys.models import ApiKey
from pms_backend.errors import Conflict, InvalidInput, NotFound

Status = Return.Status
RETURNABLE = (Order.Status.PROCESSING, Order.Status.COMPLETED)
MAX_UNITS = 1_000_000


def units_returned(order: Order, *, besides: Return | None = None) -> dict[int, int]:
    """Return ``{item_id: units}`` the order's returns take back: what a requested return
    asks for, what a received or refunded one took in (cancelled ones take nothing)."""
    lines = ReturnLine.objects.filter(rma__order=order).exclude(rma__status=Status.CANCELLED)
    if besides is not None:
        lines = lines.exclude(rma=besides)
    taken: dict[int, int] = {}
    for item_id, status, quantity, received in (
        lines.values("item_id", "rma__status")
        .annotate(
            asked=Sum("quantity"),
            came=Sum(F("quantity_restocked") + F("quantity_damaged")),
        )
        .values_list("item_id", "rma__status", "asked", "came")
    ):
        units = quantity if status == Status.REQUESTED else received
        taken[item_id] = taken.get(item_id, 0) + units
    return taken


def returnable_units(item: OrderItem, returned: Mapping[int, int]) -> int:
    """Units of the line a return may still take back: shipped, less those already in
    returns (``returned``: ``units_returned``'s item id → units)."""
    return max(item.quantity_fulfilled - returned.get(item.pk, 0), 0)


def received_worth(lines: Iterable[ReturnLine]) -> Decimal:
    """What the units a return took back were sold at: the most its refund pays."""
    return sum((line.item.unit_price * line.quantity_received for line in lines), Decimal("0"))


def _refuse_beyond_shipped(
    order: Order, units: Mapping[OrderItem, int], returned: Mapping[int, int]
) -> None:
    over = [
        {
            "product": item.product_id,
            "sku": item.sku,
            "requested": quantity,
            "returnable": returnable_units(item, returned),
            "shipped": item.quantity_fulfilled,
            "returned": returned.get(item.pk, 0),
        }
        for item, quantity in units.items()
        if quantity > returnable_units(item, returned)
    ]
    if over:
        raise Conflict(
            Code.RETURN_EXCEEDS_SHIPPED,
            "A return takes back units shipped and not returned yet: "
            + ", ".join(
                f"{o['sku']} ({o['requested']} asked, {o['returnable']} returnable: "
                f"{o['shipped']} shipped, {o['returned']} returned)"
                for o in over
            )
            + ". Nothing was written.",
            extra={"lines": over},
        )


def _lines_of(rma: Return) -> list[ReturnLine]:
    return list(rma.lines.select_related("item", "location"))


def _find(order: Order, number: str) -> Return:
    rma = Return.objects.filter(order=order, number=str(number)).first()
    if rma is None:
        raise NotFound(Code.UNKNOWN_RETURN, f"Order {order.number} has no return {number}.")
    return rma


def _require(rma: Return, step: str, *allowed: str) -> None:
    if rma.status not in allowed:
        raise Conflict(
            Code.INVALID_TRANSITION,
            f"Return {rma.number} is {rma.status}; only a return that is "
            f"{' or '.join(allowed)} can be {step}.",
            extra={"return_status": rma.status},
        )


def _event(records: Records, action: str, rma: Return, lines, order: Order, refund=None):
    records.events.append(
        (
            action,
            return_payload(rma, lines, order, refund.number if refund else None),
            f"order:{order.pk}",
        )
    )


def return_request(
    *,
    actor: Actor,
    order_id: uuid.UUID | str,
    lines: Mapping[int, int],
    reason: str = "",
    placed_by: ApiKey | None = None,
) -> Return:
    """Open a return of ``lines`` (product → units) of an order.

    With ``placed_by`` (a storefront key), only an order that key placed (404 otherwise).
    Refuse (400) no lines or a product the order has no line of; (409
    ``order_not_returnable``) an order not Processing or Completed; (409
    ``return_exceeds_shipped``) more units than shipped and not taken back already.
    """
    cleaned = clean_lines(lines, code=Code.INVALID_RETURN)
    reason = clean_reason(reason, code=Code.INVALID_RETURN)
    if not cleaned:
        raise InvalidInput(
            Code.INVALID_RETURN,
            "A return needs at least one line.",
            errors={"lines": ["Name at least one line."]},
        )
    with transaction.atomic():
        order = order_lock(order_id)
        if placed_by is not None and order.api_key_id != placed_by.pk:
            raise NotFound(Code.UNKNOWN_ORDER, f"No order is {order_id}.")
        if order.status not in RETURNABLE:
            raise Conflict(
                Code.ORDER_NOT_RETURNABLE,
                f"Order {order.number} is {order.status}; goods of a processing or completed "
                "order can be returned.",
                extra={"current_status": order.status},
            )
        units = items_named(order, list(order.items.all()), cleaned)
        _refuse_beyond_shipped(order, units, units_returned(order))
        rma = Return.objects.create(order=order, reason=reason, requested_by=actor.label[:200])
        created = ReturnLine.objects.bulk_create(
            [ReturnLine(rma=rma, item=item, quantity=qty) for item, qty in units.items()]
        )
        records = Records()
        records.audit_entries.append(
            order_entry(
                order,
                "return.requested",
                {
                    "return": {"before": None, "after": rma.number},
                    "lines": {
                        "before": None,
                        "after": {str(i.product_id): q for i, q in units.items()},
                    },
                }
                | ({"reason": {"before": None, "after": reason}} if reason else {}),
            )
        )
        _event(records, "return.requested", rma, created, order)
        records.write(actor)
    return rma


def _clean_receipt(lines: Any) -> dict[int, tuple[int, int, Any]]:
    """Return ``{product_id: (restocked, damaged, location)}`` of a receipt's lines (each
    ``{"product", "restocked", "damaged", "location"}``); refuse bad numbers (400)."""
    if not isinstance(lines, list) or not lines:
        raise InvalidInput(
            Code.INVALID_RETURN,
            "Say what arrived: at least one line.",
            errors={"lines": ["Name at least one line."]},
        )
    cleaned: dict[int, tuple[int, int, Any]] = {}
    for line in lines:
        product_id = line.get("product")
        counts = (line.get("restocked", 0), line.get("damaged", 0))
        if isinstance(product_id, bool) or not isinstance(product_id, int):
            raise InvalidInput(
                Code.INVALID_RETURN, f"{product_id!r} is not a product id.", errors={"lines": []}
            )
        if any(
            isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_UNITS for n in counts
        ):
            message = f"Restocked and damaged units of product {product_id} are whole numbers."
            raise InvalidInput(Code.INVALID_RETURN, message, errors={"lines": [message]})
        if product_id in cleaned:
            message = f"Product {product_id} is named twice."
            raise InvalidInput(Code.INVALID_RETURN, message, errors={"lines": [message]})
        cleaned[product_id] = (counts[0], counts[1], line.get("location"))
    if not any(restocked + damaged for restocked, damaged, _ in cleaned.values()):
        message = "Nothing arrived: a return whose goods never come is cancelled instead."
        raise InvalidInput(Code.INVALID_RETURN, message, errors={"lines": [message]})
    return cleaned


def return_receive(
    *, actor: Actor, order_id: uuid.UUID | str, number: str, lines: list[Mapping[str, Any]]
) -> Return:
    """Take in a requested return: per line (``{"product", "restocked", "damaged",
    "location"}``) the units put back on hand at ``location`` (id or code; default: the
    shop's default location) and those written off as damaged. Lines not named came back
    with nothing.

    Refuse (400) a product the return does not carry, an unknown location, restocking a
    product whose stock is not tracked, a receipt of nothing; (409
    ``receipt_exceeds_requested``) more than the return asked for; (409
    ``return_exceeds_shipped``) more than shipped and not returned otherwise; (409) a
    return not requested, an inactive location. Nothing is written when refused.
    """
    wanted = _clean_receipt(lines)
    with transaction.atomic():
        order = order_lock(order_id)
        rma = _find(order, number)
        _require(rma, "received", Status.REQUESTED)
        current = {line.item.product_id: line for line in _lines_of(rma)}
        foreign = sorted(set(wanted) - set(current))
        if foreign:
            message = f"Return {rma.number} carries no product {', '.join(map(str, foreign))}."
            raise InvalidInput(Code.UNKNOWN_LINE, message, errors={"lines": [message]})
        _check_receipt(rma, current, wanted)
        _refuse_beyond_shipped(
            order,
            {current[p].item: r + d for p, (r, d, _) in wanted.items()},
            units_returned(order, besides=rma),
        )
        places: dict[Any, Location] = {}
        for restocked, _, where in wanted.values():
            if restocked and where not in places:
                places[where] = inventory.location_named(where)
        back: dict[tuple[int, int], int] = {}
        for product_id, (restocked, damaged, where) in wanted.items():
            line = current[product_id]
            line.quantity_restocked, line.quantity_damaged = restocked, damaged
            line.location = places[where] if restocked else None
            if restocked:
                key = (product_id, places[where].pk)
                back[key] = back.get(key, 0) + restocked
        if back:
            inventory.stock_return(
                actor=actor,
                lines=back,
                reference=f"order:{order.number}",
                reason=f"return {rma.number} received",
            )
        ReturnLine.objects.bulk_update(
            list(current.values()), ["quantity_restocked", "quantity_damaged", "location"]
        )
        rma.receive(by=actor.label, at=timezone.now())
        rma.save()
        records = Records()
        records.audit_entries.append(
            order_entry(
                order,
                "return.received",
                {
                    "return": {"before": None, "after": rma.number},
                    "status": {"before": Status.REQUESTED, "after": rma.status},
                    "received": {
                        "before": None,
                        "after": {
                            str(p): {
                                "restocked": line.quantity_restocked,
                                "damaged": line.quantity_damaged,
                                "location": line.location.code if line.location else None,
                            }
                            for p, line in sorted(current.items())
                        },
                    },
                },
            )
        )
        _event(records, "return.received", rma, current.values(), order)
        records.write(actor)
    return rma


def _check_receipt(
    rma: Return, current: dict[int, ReturnLine], wanted: dict[int, tuple[int, int, Any]]
) -> None:
    untracked = sorted(
        p
        for p, (restocked, _, _) in wanted.items()
        if restocked and not current[p].item.stock_tracked
    )
    if untracked:
        message = (
            f"Product {', '.join(map(str, untracked))} tracks no stock: nothing goes back on "
            "hand. Count its units as damaged (written off)."
        )
        raise InvalidInput(Code.INVALID_RETURN, message, errors={"lines": [message]})
    over = [
        {"product": p, "received": r + d, "requested": current[p].quantity}
        for p, (r, d, _) in sorted(wanted.items())
        if r + d > current[p].quantity
    ]
    if over:
        raise Conflict(
            Code.RECEIPT_EXCEEDS_REQUESTED,
            f"More than return {rma.number} asked for: "
            + ", ".join(
                f"product {o['product']} ({o['received']} of {o['requested']})" for o in over
            )
            + ". Nothing was received.",
            extra={"lines": over},
        )


def return_refund(
    *,
    actor: Actor,
    order_id: uuid.UUID | str,
    number: str,
    amount: Any = None,
    reason: str = "",
) -> tuple[Return, Refund]:
    """Pay back a received return's units (a refund of them; ``amount`` defaults to their
    price, and may be lower, never higher).

    Refuse (400) a bad amount; (409) a return not received, an amount above the received
    units' price (``refund_exceeds_returned``), and whatever a refund refuses
    (``refund_exceeds_paid``, ``refund_exceeds_quantity``, ``order_not_refundable``).
    """
    value = clean_amount(amount)
    reason = clean_reason(reason)
    with transaction.atomic():
        order = order_lock(order_id)
        rma = _find(order, number)
        _require(rma, "refunded", Status.RECEIVED)
        lines = _lines_of(rma)
        units = {line.item: line.quantity_received for line in lines if line.quantity_received}
        worth = received_worth(lines)
        if value is not None and value > worth:
            raise Conflict(
                Code.REFUND_EXCEEDS_RETURNED,
                f"Return {rma.number} took back goods worth {money_text(worth)} "
                f"{order.currency}; refund at most that, not {money_text(value)}.",
                extra={"refundable_amount": money_text(worth), "amount": money_text(value)},
            )
        # The order's lines counted as loaded under the lock (pay_back updates them).
        records = Records()
        refund, _ = pay_back(
            actor=actor,
            order=order,
            units=units,
            amount=value,
            reason=reason or f"return {rma.number}",
            rma=rma,
            records=records,
        )
        rma.settle(at=refund.created_at)
        rma.save()
        records.audit_entries.append(
            order_entry(
                order,
                "return.refunded",
                {
                    "return": {"before": None, "after": rma.number},
                    "status": {"before": Status.RECEIVED, "after": rma.status},
                    "refund": {"before": None, "after": refund.number},
                },
            )
        )
        _event(records, "return.refunded", rma, lines, order, refund)
        records.write(actor)
    return rma, refund


def return_cancel(
    *, actor: Actor, order_id: uuid.UUID | str, number: str, reason: str = ""
) -> Return:
    """Close a requested return whose goods will not come (the customer kept them, or the
    shop refused the return): its units become returnable again. 409 unless requested."""
    reason = clean_reason(reason, code=Code.INVALID_RETURN)[:200]
    with transaction.atomic():
        order = order_lock(order_id)
        rma = _find(order, number)
        _require(rma, "cancelled", Status.REQUESTED)
        rma.cancel(reason=reason or "cancelled", at=timezone.now())
        rma.save()
        records = Records()
        records.audit_entries.append(
            order_entry(
                order,
                "return.cancelled",
                {
                    "return": {"before": None, "after": rma.number},
                    "status": {"before": Status.REQUESTED, "after": rma.status},
                    "cancellation_reason": {"before": "", "after": rma.cancellation_reason},
                },
            )
        )
        _event(records, "return.cancelled", rma, _lines_of(rma), order)
        records.write(actor)
    return rma
