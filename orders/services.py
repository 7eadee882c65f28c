"""Order writes: placement (all lines reserved or none) and the status machine's moves."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db import transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from audit.actors import Actor
from audit.services import audit_record, audit_record_many
from catalog.models import Product
from inventory import services as inventory
from orders.errors import OrderErrorCode as Code
from orders.models import Order, OrderItem
from orders.payloads import order_payload
from pms_backend.bulk_insert import bulk_insert_rows
from pms_backend.errors import Conflict, InvalidInput
from pms_backend.events.services import publish, publish_many
from pms_backend.monitoring import metrics
from pms_backend.plurals import counted
from pms_backend.shopsettings.selectors import setting_get

TRANSITIONS = ("process", "complete", "cancel", "refund")


def _largest(field) -> Decimal:
    return Decimal(10) ** (field.max_digits - field.decimal_places) - Decimal(10) ** (
        -field.decimal_places
    )


# The largest total (and line total) the columns hold: 999,999,999,999.99.
MAX_ORDER_TOTAL = min(
    _largest(Order._meta.get_field("total")), _largest(OrderItem._meta.get_field("line_total"))
)


def merge_lines(items: list[Mapping[str, int]]) -> dict[int, int]:
    """Return ``{product_id: quantity}``; a product named twice has its quantities added."""
    lines: dict[int, int] = {}
    for item in items:
        lines[item["product"]] = lines.get(item["product"], 0) + item["quantity"]
    return lines


def _check_limits(lines: dict[int, int], *, line_count: int) -> None:
    if not lines:
        raise InvalidInput(
            Code.INVALID_ORDER, "An order needs at least one item.", errors={"items": ["Empty."]}
        )
    max_lines = setting_get("orders.max_lines")
    # Counted before merging too: the limit bounds the work a request causes.
    if max(len(lines), line_count) > max_lines:
        raise InvalidInput(
            Code.INVALID_ORDER,
            f"An order may hold at most {counted(max_lines, 'line')}.",
            errors={"items": ["Too many lines."]},
        )
    max_quantity = setting_get("orders.max_quantity_per_line")
    too_many = [pid for pid, qty in lines.items() if qty > max_quantity]
    if too_many:
        raise InvalidInput(
            Code.INVALID_ORDER,
            f"At most {max_quantity} of one product per order "
            f"(products {', '.join(map(str, too_many))}).",
            errors={"items": ["Quantity over the limit."]},
        )


def _check_orderable(lines: dict[int, int], products: Mapping[int, Any]) -> None:
    """Raise unless every product exists, is published, and all share one currency."""
    unavailable = []
    for product_id in sorted(lines):
        product = products.get(product_id)
        if product is None:
            unavailable.append({"product": product_id, "reason": "not_found"})
        elif product.status != Product.Status.PUBLISHED:
            unavailable.append({"product": product_id, "reason": product.status})
    if unavailable:
        raise Conflict(
            Code.PRODUCT_UNAVAILABLE,
            "Cannot order "
            + ", ".join(f"product {u['product']} ({u['reason']})" for u in unavailable)
            + ".",
            extra={"lines": unavailable},
        )
    currencies = {products[pid].currency for pid in lines}
    if len(currencies) > 1:
        raise InvalidInput(
            Code.MIXED_CURRENCIES,
            f"Products are priced in {', '.join(sorted(currencies))}; order them separately.",
        )


def order_place(
    *,
    actor: Actor,
    items: list[Mapping[str, int]],
    customer: Mapping[str, str],
    shipping_address: Mapping[str, Any],
    now: datetime | None = None,
) -> Order:
    """Place an order: reserve every line or none, price it from the catalog.

    Raise ``Conflict`` ``product_unavailable`` naming each product that cannot be
    ordered (unknown, draft or archived), ``insufficient_stock`` naming each short
    line with the quantities requested and available, or ``order_total_too_large`` when
    the total would pass ``MAX_ORDER_TOTAL``.

    ``now`` is the placement moment (default: now); only the demo data gives an earlier
    one, to spread its orders over past days. The ledger movements, audit entries and
    events carry the moment they are written all the same.
    """
    lines = merge_lines(items)
    _check_limits(lines, line_count=len(items))
    # No savepoint: a refusal rolls back the caller's whole transaction (or savepoint).
    with transaction.atomic(savepoint=False):
        # The stock rows are locked first, read with their products in the same query.
        stocks, products = inventory.stock_lock_for_order(lines)
        if len(products) < len(lines):
            # A product without a stock row: read it to say why it cannot be ordered.
            products |= {
                row[0]: inventory.OrderedProduct(*row)
                for row in Product.objects.filter(pk__in=[p for p in lines if p not in stocks])
                .order_by()
                .values_list("pk", *inventory.ORDERED_PRODUCT_FIELDS)
            }
        _check_orderable(lines, products)
        currency = products[next(iter(lines))].currency
        now = now or timezone.now()
        total = sum((products[pid].price * qty for pid, qty in lines.items()), Decimal("0"))
        if total > MAX_ORDER_TOTAL:
            raise Conflict(
                Code.TOTAL_TOO_LARGE,
                f"The order would total {total:,} {currency}; one order may total at most "
                f"{MAX_ORDER_TOTAL:,} {currency}. Order fewer units or split the order.",
                errors={"items": ["The total is over the limit."]},
            )
        order = Order(
            customer_email=customer["email"],
            customer_name=customer["name"],
            shipping_address=dict(shipping_address),
            currency=currency,
            total=total,
            reserved_until=now + timedelta(minutes=setting_get("orders.reservation_minutes")),
            api_key=actor.api_key,
            placed_by=actor.user,
            created_at=now,
        )
        bulk_insert_rows([order])
        # The lines' audit entries and events are written with the order's: one insert
        # of each for the whole order.
        records = inventory.StockRecords()
        inventory.stock_reserve(
            actor=actor,
            lines=lines,
            reference=f"order:{order.number}",
            locked=stocks,
            records=records,
        )
        order_items = bulk_insert_rows(
            [
                OrderItem(
                    order=order,
                    product_id=pid,
                    sku=products[pid].sku,
                    name=products[pid].name,
                    unit_price=products[pid].price,
                    quantity=qty,
                    line_total=products[pid].price * qty,
                )
                for pid, qty in sorted(lines.items())
            ]
        )
        _hold_items(order, cast(list[OrderItem], order_items))
        audit_record_many(
            actor=actor,
            entries=[
                *records.audit_entries,
                {
                    "action": "order.created",
                    "object_type": order._meta.label_lower,
                    "object_id": order.pk,
                    "object_repr": str(order),
                    "changes": {
                        "status": {"before": None, "after": order.status},
                        "total": {"before": None, "after": str(order.total)},
                        "items": {
                            "before": None,
                            "after": [[pid, qty] for pid, qty in sorted(lines.items())],
                        },
                    },
                },
            ],
        )
        representation = order_payload(order)
        publish_many([*records.events, ("order.created", representation, f"order:{order.pk}")])
        metrics.count_order_placed()
    # The API answers with this same representation: serializing the order once per
    # placement is enough.
    order.placed_representation = representation
    return order


def _hold_items(order: Order, order_items: list[OrderItem]) -> None:
    """Make ``order.items`` answer from the rows just written instead of reading them back.

    What ``prefetch_related`` leaves behind (Django's ``_prefetched_objects_cache``; Django
    is pinned to 5.2.x, and tests/integration/test_query_counts_orders.py fails if the
    items are read again).
    """
    items = order.items.all()
    items._result_cache = order_items
    items._prefetch_done = True  # type: ignore[attr-defined]  # Django's, see above
    order._prefetched_objects_cache = {"items": items}  # type: ignore[attr-defined]


def order_transition(
    *,
    actor: Actor,
    order_id: uuid.UUID | str,
    transition: str,
    restock: bool = False,
    reason: str = "",
    expected_status: str | None = None,
    now: datetime | None = None,
) -> Order:
    """Move an order along its status machine with the move's stock effect.

    process keeps the reservation; complete turns it into a sale; cancel releases it;
    refund puts the goods back on hand when ``restock``. A move the machine forbids, or
    one that lost a race to another move, raises ``Conflict`` and changes nothing.
    With ``expected_status`` (what the caller saw), a move is refused once the order
    has left that status, so of two moves issued at the same moment exactly one wins
    even when the second is applied after the first has committed. ``now`` dates the
    move on the order (default: now), as ``order_place`` dates the placement.
    """
    if transition not in TRANSITIONS:
        raise InvalidInput(
            Code.UNKNOWN_TRANSITION,
            f"Unknown transition {transition!r}; known: {', '.join(TRANSITIONS)}.",
        )
    with transaction.atomic():
        order = Order.objects.get(pk=order_id)
        before = order.status
        if expected_status is not None and before != expected_status:
            raise Conflict(
                Code.CONCURRENT_MODIFICATION,
                f"The order is {before} now, not {expected_status}; reload and try again.",
                extra={"current_status": before},
            )
        kwargs: dict[str, Any] = {"at": now}
        if transition == "cancel":
            kwargs["reason"] = reason or "cancelled"
        elif transition == "refund":
            kwargs["restock"] = restock
        try:
            getattr(order, transition)(**kwargs)
        except TransitionNotAllowed as exc:
            raise Conflict(
                Code.INVALID_TRANSITION,
                f"Cannot {transition} an order that is {before}.",
                extra={"current_status": before},
            ) from exc
        # The status update comes first: it takes the order's row lock before any stock
        # lock, and a racer that changed the status meanwhile makes it fail here.
        try:
            order.save()
        except ConcurrentTransition as exc:
            raise Conflict(
                Code.CONCURRENT_MODIFICATION,
                "The order's status changed meanwhile; reload and try again.",
            ) from exc
        lines = dict(order.items.values_list("product_id", "quantity"))
        reference = f"order:{order.number}"
        if transition == "complete":
            inventory.stock_sell(actor=actor, lines=lines, reference=reference)
        elif transition == "cancel":
            inventory.stock_release(
                actor=actor, lines=lines, reference=reference, reason=kwargs["reason"]
            )
        elif transition == "refund" and restock:
            inventory.stock_return(
                actor=actor, lines=lines, reference=reference, reason="refund with restock"
            )
        changes = {"status": {"before": before, "after": order.status}}
        if transition == "refund":
            changes["restocked"] = {"before": None, "after": restock}
        if transition == "cancel":
            changes["cancellation_reason"] = {"before": "", "after": order.cancellation_reason}
        audit_record(actor=actor, action=f"order.{transition}", target=order, changes=changes)
        publish(
            "order.status_changed",
            order_payload(order) | {"from": before, "to": order.status},
            subject=f"order:{order.pk}",
        )
    return order


def order_expire_reservations(*, actor: Actor, batch_size: int = 100, now=None) -> int:
    """Cancel Pending orders whose reservation has run out, releasing their stock.

    Works in batches; each order is its own transaction with its audit entry and event,
    so one that a customer or staff member moved meanwhile is simply skipped.
    """
    now = now or timezone.now()
    expired = 0
    skipped: set = set()
    while True:
        ids = list(
            expired_reservations(now=now)
            .exclude(pk__in=skipped)
            .order_by("reserved_until", "pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return expired
        for order_id in ids:
            try:
                order_transition(
                    actor=actor,
                    order_id=order_id,
                    transition="cancel",
                    reason="reservation expired",
                )
            except Conflict:
                skipped.add(order_id)  # moved meanwhile; never retried in this run
                continue
            expired += 1


def expired_reservations(*, now=None):
    """Return the Pending orders whose reservation has run out (what cleanup would cancel)."""
    now = now or timezone.now()
    return Order.objects.filter(status=Order.Status.PENDING, reserved_until__lt=now)
