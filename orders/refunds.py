"""Refunds: money paid back on an order, for units of its lines or as an amount alone.

The only writer of ``Refund`` and ``RefundLine``, of orders' ``refunded_amount`` and of
lines' ``quantity_refunded`` (the v1 ``refund`` transition pays the remainder through
``refund_remainder``). Every refund first locks the order's row (``order_lock``): two
refunds racing for the last of an order's amount queue there, and the second sees what
the first paid back and is refused. A refund moves no stock: goods come back through
returns (``orders.returns``), which say where they went.

Rules: an order is refunded while Processing or Completed (a Pending order has not been
paid for; a Cancelled or Refunded one has nothing left to pay back). A line's units are
refunded once shipped: at most ``quantity_fulfilled - quantity_refunded`` of them. The
amount is the units' price unless given, more than zero, at most what was paid and not
yet paid back (``total - refunded_amount``). A Completed order whose refunds reach its
total becomes Refunded (the status machine's ``refund``, with its audit entry and
``order.status_changed``); a Processing order is refunded in part only, as it still owes
the customer goods: paying everything back while shipping them is what cancelling is for.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record_many
from orders.errors import OrderErrorCode as Code
from orders.locking import order_lock
from orders.models import Order, OrderItem, Refund, RefundLine, Return, ReturnLine
from orders.payloads import CENT, money_text, order_payload, refund_payload
from pms_backend.bulk_insert import bulk_insert_rows
from pms_backend.bulk_update import bulk_update_rows
from pms_backend.errors import Conflict, InvalidInput
from pms_backend.events.services import publish_many

Status = Order.Status
REFUNDABLE = (Status.PROCESSING, Status.COMPLETED)
REASON_MAX: int = Refund._meta.get_field("reason").max_length or 500
MAX_LINE_QUANTITY = 1_000_000
# The largest amount the column holds (an order's total never passes it either).
MAX_AMOUNT = Decimal("999999999999.99")


def clean_amount(amount: Any) -> Decimal | None:
    """Return ``amount`` (a string, int or Decimal; ``None``: not given) as a Decimal of at
    most two decimals, more than zero; refuse anything else (400)."""
    if amount is None:
        return None
    value: Decimal | None = None
    if not isinstance(amount, (bool, float)):
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            value = None
    if (
        value is None
        or not value.is_finite()
        or value != value.quantize(CENT)
        or not (0 < value <= MAX_AMOUNT)
    ):
        message = "The amount is more than zero, with at most two decimals (say it as a string)."
        raise InvalidInput(Code.INVALID_REFUND, message, errors={"amount": [message]})
    return value


def clean_lines(lines: Mapping[int, int] | None, *, code: str) -> dict[int, int]:
    """Return ``{product_id: quantity}`` (a line is named by its product, as the order's
    items are); refuse a product id or quantity that is not a whole number in range (400)."""
    cleaned: dict[int, int] = {}
    for product_id, quantity in (lines or {}).items():
        if isinstance(product_id, bool) or not isinstance(product_id, int):
            raise InvalidInput(
                code, f"{product_id!r} is not a product id.", errors={"lines": ["Not an id."]}
            )
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 0 < quantity <= MAX_LINE_QUANTITY
        ):
            message = f"The quantity of product {product_id} is a whole number from 1."
            raise InvalidInput(code, message, errors={"lines": [message]})
        cleaned[product_id] = quantity
    return cleaned


def clean_reason(reason: str, *, code: str = Code.INVALID_REFUND) -> str:
    if not isinstance(reason, str) or len(reason) > REASON_MAX:
        message = f"The reason is text of at most {REASON_MAX} characters."
        raise InvalidInput(code, message, errors={"reason": [message]})
    return reason.strip()


def items_named(order: Order, items: list[OrderItem], lines: Mapping[int, int]):
    """Return ``{item: quantity}`` for ``lines`` (product → quantity) of the order's
    ``items``; refuse (400) a product the order has no line of."""
    by_product = {item.product_id: item for item in items}
    unknown = sorted(set(lines) - set(by_product))
    if unknown:
        message = f"Order {order.number} has no line of product {', '.join(map(str, unknown))}."
        raise InvalidInput(
            Code.UNKNOWN_LINE, message, errors={"lines": [message]}, extra={"products": unknown}
        )
    return {by_product[pid]: qty for pid, qty in sorted(lines.items())}


@dataclass
class Records:
    """Audit entries and events of a step, written together at its end."""

    audit_entries: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    def write(self, actor: Actor) -> None:
        audit_record_many(actor=actor, entries=self.audit_entries)
        publish_many(self.events)


def order_entry(order: Order, action: str, changes: dict[str, Any]) -> dict[str, Any]:
    """An audit entry about ``order`` (refunds and returns are recorded on their order,
    so its history tells them)."""
    return {
        "action": action,
        "object_type": order._meta.label_lower,
        "object_id": order.pk,
        "object_repr": str(order),
        "changes": changes,
    }


def refundable_units(item: OrderItem) -> int:
    """Units of the line that may still be paid back: shipped, and not refunded yet."""
    return item.quantity_fulfilled - item.quantity_refunded


def _refusing_units(order: Order, units: Mapping[OrderItem, int]) -> None:
    over = [
        {
            "product": item.product_id,
            "sku": item.sku,
            "requested": quantity,
            "refundable": refundable_units(item),
            "shipped": item.quantity_fulfilled,
            "refunded": item.quantity_refunded,
        }
        for item, quantity in units.items()
        if quantity > refundable_units(item)
    ]
    if over:
        raise Conflict(
            Code.REFUND_EXCEEDS_QUANTITY,
            "Units are refunded once shipped, and once: "
            + ", ".join(
                f"{o['sku']} ({o['requested']} asked, {o['refundable']} refundable: "
                f"{o['shipped']} shipped, {o['refunded']} refunded)"
                for o in over
            )
            + ". Nothing was refunded.",
            extra={"lines": over},
        )


def _checked_amount(
    order: Order, units: Mapping[OrderItem, int], amount: Decimal | None
) -> Decimal:
    """Return what the refund pays (``amount``, else the units' price) once the order, the
    units and the amount are within the rules; refuse otherwise (nothing written yet)."""
    if order.status not in REFUNDABLE:
        raise Conflict(
            Code.ORDER_NOT_REFUNDABLE,
            f"Order {order.number} is {order.status}; only a processing or completed order "
            "can be refunded.",
            extra={"current_status": order.status},
        )
    _refusing_units(order, units)
    value = sum((item.unit_price * qty for item, qty in units.items()), Decimal("0"))
    if amount is not None:
        value = amount
    if value <= 0:
        raise InvalidInput(
            Code.INVALID_REFUND,
            "Name the units to refund or an amount.",
            errors={"lines": ["Name at least one line, or give an amount."]},
        )
    remainder = order.total - order.refunded_amount
    if value > remainder:
        raise Conflict(
            Code.REFUND_EXCEEDS_PAID,
            f"Order {order.number} was paid {money_text(order.total)} {order.currency} and "
            f"{money_text(order.refunded_amount)} was refunded: at most "
            f"{money_text(remainder)} can be refunded, not {money_text(value)}. "
            "Nothing was refunded.",
            extra={"refundable_amount": money_text(remainder), "amount": money_text(value)},
        )
    if order.status == Status.PROCESSING and value == remainder:
        raise Conflict(
            Code.ORDER_NOT_REFUNDABLE,
            f"Order {order.number} is still processing: it can be refunded in part only. "
            "Complete it first, or cancel it.",
            extra={"current_status": order.status, "refundable_amount": money_text(remainder)},
        )
    return value


def pay_back(
    *,
    actor: Actor,
    order: Order,
    units: Mapping[OrderItem, int],
    amount: Decimal | None,
    reason: str,
    rma: Return | None = None,
    records: Records,
) -> tuple[Refund, dict[str, Any]]:
    """Check and write a refund of the locked ``order``: ``units`` (its items → quantity)
    and ``amount`` (default: the units' price). Its audit entries and events go into
    ``records``; the caller writes them in this transaction. Return the refund and its
    representation (what ``refund.created`` carries)."""
    value = _checked_amount(order, units, amount)
    now = timezone.now()
    refund = Refund(
        order=order,
        amount=value,
        reason=reason,
        rma=rma,
        created_by=actor.label[:200],
        created_at=now,
    )
    bulk_insert_rows([refund])
    lines = [RefundLine(refund=refund, item=item, quantity=qty) for item, qty in units.items()]
    bulk_insert_rows(lines)
    for item, qty in units.items():
        item.quantity_refunded += qty
    if units:
        bulk_update_rows(list(units), ["quantity_refunded"])
    before = {"status": order.status, "refunded_amount": order.refunded_amount}
    order.refunded_amount += value
    if order.status == Status.COMPLETED and order.refunded_amount == order.total:
        _close(actor, order, now, records)
    else:
        Order.objects.filter(pk=order.pk).update(
            refunded_amount=order.refunded_amount, updated_at=now
        )
        order.updated_at = now
    records.audit_entries.append(
        order_entry(
            order,
            "refund.created",
            {
                "refund": {"before": None, "after": refund.number},
                "amount": {"before": None, "after": money_text(value)},
                "refunded_amount": {
                    "before": money_text(before["refunded_amount"]),
                    "after": money_text(order.refunded_amount),
                },
            }
            | ({"return": {"before": None, "after": rma.number}} if rma else {})
            | ({"lines": {"before": None, "after": _units_shown(units)}} if units else {})
            | ({"reason": {"before": None, "after": reason}} if reason else {}),
        )
    )
    payload = refund_payload(refund, lines, order, rma.number if rma else None)
    records.events.append(("refund.created", payload, f"order:{order.pk}"))
    return refund, payload


def _units_shown(units: Mapping[OrderItem, int]) -> dict[str, int]:
    return {str(item.product_id): qty for item, qty in units.items()}


def _close(actor: Actor, order: Order, now: datetime, records: Records) -> None:
    """The refunds reached the total: the order moves to Refunded, as the v1 ``refund``
    transition moves it (its audit action and ``order.status_changed``). ``restocked``
    says whether goods came back on hand (through its returns)."""
    restocked = ReturnLine.objects.filter(rma__order=order, quantity_restocked__gt=0).exists()
    before = order.status
    order.refund(restock=restocked, at=now)
    order.save()
    records.audit_entries.append(
        order_entry(
            order,
            "order.refund",
            {
                "status": {"before": before, "after": order.status},
                "restocked": {"before": None, "after": restocked},
            },
        )
    )
    records.events.append(
        (
            "order.status_changed",
            order_payload(order) | {"from": before, "to": order.status},
            f"order:{order.pk}",
        )
    )


def refund_create(
    *,
    actor: Actor,
    order_id: uuid.UUID | str,
    lines: Mapping[int, int] | None = None,
    amount: Any = None,
    reason: str = "",
) -> Refund:
    """Pay back part (or the rest) of an order: ``lines`` (product → units) and/or an
    ``amount`` (default: the units' price).

    Refuse (400) no lines and no amount, a product the order has no line of, a bad
    amount; (409 ``order_not_refundable``) an order not Processing or Completed, or the
    whole remainder of a Processing one; (409 ``refund_exceeds_quantity``) more units
    than shipped and not yet refunded; (409 ``refund_exceeds_paid``) more than was paid
    and not yet paid back. Nothing is written when refused.
    """
    cleaned = clean_lines(lines, code=Code.INVALID_REFUND)
    value = clean_amount(amount)
    reason = clean_reason(reason)
    if not cleaned and value is None:
        raise InvalidInput(
            Code.INVALID_REFUND,
            "Name the units to refund (lines) or an amount.",
            errors={"lines": ["Name at least one line, or give an amount."]},
        )
    with transaction.atomic():
        order = order_lock(order_id)
        items = list(order.items.all())
        units = items_named(order, items, cleaned)
        records = Records()
        refund, payload = pay_back(
            actor=actor, order=order, units=units, amount=value, reason=reason, records=records
        )
        records.write(actor)
    refund.payload = payload
    return refund


def refund_remainder(
    *, actor: Actor, order: Order, paid_before: Decimal, now: datetime | None = None
) -> tuple[Refund | None, dict[str, Any] | None]:
    """Record what the v1 ``refund`` transition pays back: the rest of the amount and every
    unit not refunded yet (``order`` is locked and moved to Refunded by the caller, which
    writes the status change's audit entry and event). Return the refund (``None`` when
    nothing was left to pay) and its ``refund.created`` event data, for the caller's
    transaction."""
    rest = order.total - paid_before
    if rest <= 0:
        return None, None
    items = list(order.items.all())
    units = {item: item.quantity - item.quantity_refunded for item in items}
    units = {item: qty for item, qty in units.items() if qty > 0}
    refund = Refund(
        order=order,
        amount=rest,
        reason="order refunded",
        created_by=actor.label[:200],
        created_at=now or timezone.now(),
    )
    bulk_insert_rows([refund])
    lines = [RefundLine(refund=refund, item=item, quantity=qty) for item, qty in units.items()]
    bulk_insert_rows(lines)
    return refund, refund_payload(refund, lines, order)
