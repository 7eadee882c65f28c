"""Order writes: placement (all lines reserved or none) and the status machine's moves."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from audit.actors import Actor
from audit.services import audit_record, audit_record_many
from catalog.backorders import WaitingRule, waiting_rule_of
from catalog.models import Product
from catalog.selectors import sku_rows_named
from inventory import services as inventory
from orders import refunds, returns
from orders.backorders import backorders_release
from orders.errors import OrderErrorCode as Code
from orders.fulfilments import ship_remaining
from orders.models import FulfillmentLine, LineAllocation, Order, OrderItem
from orders.payloads import money_text, order_payload
from pms_backend.bulk_insert import bulk_insert_rows
from pms_backend.errors import Conflict, InvalidInput
from pms_backend.events.services import publish_many
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
    """Return ``{variant_id: quantity}`` (an item names ``variant``, or v1's ``product``);
    one named twice has its quantities added."""
    lines: dict[int, int] = {}
    for item in items:
        sold = item["variant"] if "variant" in item else item["product"]
        lines[sold] = lines.get(sold, 0) + item["quantity"]
    return lines


def _variants_named(named: set[int]) -> tuple[dict[int, list[tuple[int, str]]], set[int]]:
    """Return the variants (id, SKU) of the named products that have some, and which of
    the named or their variants track no stock. One query."""
    variants: dict[int, list[tuple[int, str]]] = {}
    untracked: set[int] = set()
    # Variants of published products only (they follow their product's status): naming a
    # draft or archived product is "unavailable", never a list of its variants.
    for pk, parent_id, sku, tracked in sku_rows_named(sorted(named)):
        if not tracked:
            untracked.add(pk)
        if parent_id in named:
            variants.setdefault(parent_id, []).append((pk, sku))
    return variants, untracked


def _variant_required(refused: list[dict[str, Any]]) -> InvalidInput:
    said = "; ".join(
        f"product {r['product']} sells as "
        + ", ".join(f"{v['id']} ({v['sku']})" for v in r["variants"][:20])
        + ("…" if len(r["variants"]) > 20 else "")
        for r in refused
    )
    return InvalidInput(
        Code.VARIANT_REQUIRED,
        f"Name the variant to order: {said}.",
        errors={"items": ['Name a "variant" of these products.']},
        extra={"lines": refused},
    )


def _resolve_variants(
    items: list[Mapping[str, int]],
) -> tuple[list[Mapping[str, int]], set[int]]:
    """Name the variant of each line: a ``product`` with exactly one variant stands for
    it, as v1 clients order. Raise ``InvalidInput`` (``variant_required``) for a line
    naming a product that sells through several variants (listing them), whichever key
    named it; a product without variants is its own variant. Return the lines and the
    variants whose stock is not tracked."""
    named = {item["variant"] if "variant" in item else item["product"] for item in items}
    variants, untracked = _variants_named(named)
    if not variants:
        return items, untracked
    by_variant_key = {item["variant"] for item in items if "variant" in item}
    refused: list[dict[str, Any]] = [
        {"product": pid, "variants": [{"id": pk, "sku": sku} for pk, sku in found]}
        for pid, found in sorted(variants.items())
        if len(found) > 1 or pid in by_variant_key
    ]
    if refused:
        raise _variant_required(refused)
    resolved: list[Mapping[str, int]] = [
        {"variant": variants[item["product"]][0][0], "quantity": item["quantity"]}
        if "product" in item and item["product"] in variants
        else item
        for item in items
    ]
    return resolved, untracked


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

    A line of a variant taking backorders or preorders (``catalog.backorders``) may ask
    for more than is available: the rest waits (its ``backordered`` units), within the
    variant's limit, for stock to arrive (``orders.backorders``).

    Raise ``Conflict`` ``product_unavailable`` naming each product that cannot be
    ordered (unknown, draft or archived), ``insufficient_stock`` naming each short
    line with the quantities requested and available, ``backorder_limit_reached`` when
    the short lines are past their variants' backorder limits (with how many more may
    wait), or ``order_total_too_large`` when the total would pass ``MAX_ORDER_TOTAL``.

    ``now`` is the placement moment (default: now); only the demo data gives an earlier
    one, to spread its orders over past days. The ledger movements, audit entries and
    events carry the moment they are written all the same.
    """
    resolved, untracked = _resolve_variants(items)
    lines = merge_lines(resolved)
    _check_limits(lines, line_count=len(items))
    # Variants whose stock is not tracked (made to order, digital) reserve nothing.
    tracked = {pid: qty for pid, qty in lines.items() if pid not in untracked}
    # No savepoint: a refusal rolls back the caller's whole transaction (or savepoint).
    with transaction.atomic(savepoint=False):
        # The stock rows are locked first, read with their products in the same query.
        stocks, products = inventory.stock_lock_for_order(tracked)
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
        waiting = _taking_backorders(tracked, products, now)
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
        allocations = (
            inventory.stock_reserve(
                actor=actor,
                lines=tracked,
                reference=f"order:{order.number}",
                locked=stocks,
                records=records,
                waiting=waiting,
            )
            if tracked
            else {}
        )
        backordered = _not_reserved(tracked, allocations)
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
                    stock_tracked=pid in tracked,
                    backordered=backordered.get(pid, 0),
                )
                for pid, qty in sorted(lines.items())
            ]
        )
        _hold_items(order, cast(list[OrderItem], order_items))
        bulk_insert_rows(
            [
                LineAllocation(item_id=item.pk, location_id=location_id, quantity=quantity)
                for item in order_items
                for location_id, quantity in allocations.get(cast(OrderItem, item).product_id, ())
            ]
        )
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
                    }
                    | _backordered_change(backordered),
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


def _taking_backorders(
    tracked: Mapping[int, int], products: Mapping[int, Any], now: datetime
) -> dict[int, WaitingRule]:
    """The variants taking backorders or preorders at ``now``, whose lines may leave units
    waiting, with their limits."""
    rules = {pid: waiting_rule_of(products[pid], now) for pid in tracked}
    return {pid: rule for pid, rule in rules.items() if rule.accepts}


def _not_reserved(
    tracked: Mapping[int, int], allocations: Mapping[int, list[tuple[int, int]]]
) -> dict[int, int]:
    """Each tracked line's units that were not reserved: they wait (backordered)."""
    return {
        pid: qty - sum(units for _, units in allocations.get(pid, ()))
        for pid, qty in tracked.items()
    }


def _backordered_change(backordered: Mapping[int, int]) -> dict[str, Any]:
    waiting = [[pid, units] for pid, units in sorted(backordered.items()) if units]
    return {"backordered": {"before": None, "after": waiting}} if waiting else {}


def _hold_items(order: Order, order_items: list[OrderItem]) -> None:
    """Make ``order.items`` answer from the rows just written instead of reading them back.

    What ``prefetch_related`` leaves behind (Django's ``_prefetched_objects_cache``; Django
    is pinned to 5.2.x, and tests/integration/test_query_counts_orders.py fails if the
    items are read again).
    """
    items = order.items.all()
    items._result_cache = order_items
    items._prefetch_done = True  # type: ignore[attr-defined]  # Django's, see above
    # A new order has shipped nothing: its representation reads no fulfilments.
    fulfillments = order.fulfillments.all()
    fulfillments._result_cache = []
    fulfillments._prefetch_done = True  # type: ignore[attr-defined]  # as above
    order._prefetched_objects_cache = {  # type: ignore[attr-defined]
        "items": items,
        "fulfillments": fulfillments,
    }


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
        orders = Order.objects.all()
        if transition == "refund":
            # What is paid back is counted under the order's lock, which partial refunds
            # take first (orders.refunds): the rest is exactly what none of them paid.
            orders = orders.select_for_update(of=("self",))
        order = orders.get(pk=order_id)
        before = order.status
        paid_before = order.refunded_amount
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
        if transition == "complete":
            _refuse_waiting(order)
        # The status update comes first: it takes the order's row lock before any stock
        # lock, and a racer that changed the status meanwhile makes it fail here.
        try:
            order.save()
        except ConcurrentTransition as exc:
            raise Conflict(
                Code.CONCURRENT_MODIFICATION,
                "The order's status changed meanwhile; reload and try again.",
            ) from exc
        _stock_effect(
            actor, order, transition, before=before, restock=restock, reason=kwargs.get("reason")
        )
        changes = {"status": {"before": before, "after": order.status}}
        events = []
        if transition == "refund":  # the whole order is paid back: the rest of it
            refund, paid = refunds.refund_remainder(
                actor=actor, order=order, paid_before=paid_before, now=order.refunded_at
            )
            order.items.update(quantity_refunded=F("quantity"))
            changes["restocked"] = {"before": None, "after": restock}
            if refund is not None and paid is not None:
                changes["refund"] = {"before": None, "after": refund.number}
                changes["refunded_amount"] = {
                    "before": money_text(paid_before),
                    "after": money_text(order.refunded_amount),
                }
                events.append(("refund.created", paid, f"order:{order.pk}"))
        if transition == "cancel":
            changes["cancellation_reason"] = {"before": "", "after": order.cancellation_reason}
        audit_record(actor=actor, action=f"order.{transition}", target=order, changes=changes)
        publish_many(
            [
                (
                    "order.status_changed",
                    order_payload(order) | {"from": before, "to": order.status},
                    f"order:{order.pk}",
                ),
                *events,
            ]
        )
    return order


def _stock_effect(
    actor: Actor, order: Order, transition: str, *, before: str, restock: bool, reason
) -> None:
    """Apply the move's stock effect, once its status is saved (the order's row locked)."""
    if transition == "cancel" and before == Order.Status.PROCESSING:
        _refuse_cancelling_shipped(order, before)
    if transition == "complete":
        # Completing ships whatever was not shipped yet, from where it is reserved.
        ship_remaining(actor=actor, order=order, at=order.completed_at)
    else:
        _move_stock(actor, order, transition, restock=restock, reason=reason or "")


def _refuse_cancelling_shipped(order: Order, before: str) -> None:
    """Refuse (409) cancelling an order that has shipped some units: the goods are gone;
    complete it (shipping the rest) or refund it instead."""
    shipped = list(
        order.items.filter(quantity_fulfilled__gt=0).values_list("sku", "quantity_fulfilled")
    )
    if shipped:
        raise Conflict(
            Code.ORDER_PARTLY_FULFILLED,
            f"Order {order.number} has shipped "
            + ", ".join(f"{qty} x {sku}" for sku, qty in shipped)
            + "; an order that has shipped cannot be cancelled.",
            extra={"current_status": before},  # the move is not made
        )


def _refuse_waiting(order: Order) -> None:
    """Refuse (409 ``backorder_outstanding``) to complete an order whose lines still wait
    for stock: what was not reserved cannot be sold. (Waiting units only ever fall, under
    the stock lock, with their allocations in the same commit: reading none here means
    every allocation is there to sell.)"""
    waiting = list(
        OrderItem.objects.filter(order=order, backordered__gt=0)
        .order_by("pk")
        .values_list("product_id", "sku", "backordered")
    )
    if waiting:
        raise Conflict(
            Code.BACKORDER_OUTSTANDING,
            f"Order {order.number} still waits for stock: "
            + ", ".join(f"{units} of {sku}" for _, sku, units in waiting)
            + ". Complete it once they are allocated (as stock arrives), or cancel it.",
            extra={
                "lines": [
                    {"product": pid, "sku": sku, "backordered": units}
                    for pid, sku, units in waiting
                ]
            },
        )


def _move_stock(actor: Actor, order: Order, transition: str, *, restock: bool, reason: str):
    """The stock effect of a move: cancel releases what is reserved, where it is (and
    gives up the places of lines waiting for stock); refund with restock returns what
    shipped where it left from. (Completing ships the rest:
    ``orders.fulfilments.ship_remaining``.)"""
    if transition == "process" or (transition == "refund" and not restock):
        return
    if transition == "cancel" and backorders_release(actor=actor, order=order, reason=reason):
        return
    lines: dict[tuple[int, int], int] = {}
    if transition == "refund":
        # What shipped goes back where it left from, less what the order's returns took
        # back (or are taking back): those units came, or will come, on hand where the
        # return says.
        returned = returns.units_returned(order)
        for item_id, product_id, location_id, quantity in FulfillmentLine.objects.filter(
            fulfillment__order=order, item__stock_tracked=True
        ).values_list("item_id", "item__product_id", "fulfillment__location_id", "quantity"):
            back = min(returned.get(item_id, 0), quantity)
            returned[item_id] = returned.get(item_id, 0) - back
            if quantity > back:
                key = (product_id, location_id)
                lines[key] = lines.get(key, 0) + quantity - back
    else:
        lines = {
            (product_id, location_id): quantity
            for product_id, location_id, quantity in LineAllocation.objects.filter(
                item__order=order
            ).values_list("item__product_id", "location_id", "quantity")
        }
    if not lines:
        return  # every line untracked: nothing was reserved
    reference = f"order:{order.number}"
    if transition == "cancel":
        inventory.stock_release(actor=actor, lines=lines, reference=reference, reason=reason)
    else:
        inventory.stock_return(
            actor=actor, lines=lines, reference=reference, reason="refund with restock"
        )


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
