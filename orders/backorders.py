"""Backordered lines: the queue of units ordered beyond stock, and their allocation.

An order line of a variant that takes backorders or preorders (catalog.backorders) may
hold more than was available: its ``backordered`` units wait. Inventory counts them on
the variant's stock row and, whenever a stock change makes more of it available, calls
``backorders_allocate`` (registered in apps.ready) under the row's lock: the waiting
lines of open orders get the stock first come, first served (by placement time, then
line), each in full before the next gets any. Each order served gets its reservation
(``reserve`` movements with its reference, allocations where the units are), an audit
entry and the ``order.backorder_allocated`` event, in the stock change's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from audit.actors import Actor
from inventory import services as inventory
from inventory.models import Stock
from orders.models import LineAllocation, Order, OrderItem
from orders.payloads import order_payload
from pms_backend.bulk_insert import bulk_insert_rows
from pms_backend.bulk_update import bulk_update_rows


def waiting_lines(product_ids: Iterable[int]) -> list[OrderItem]:
    """Return the lines of open orders waiting for these products, first come first."""
    return list(
        OrderItem.objects.filter(
            product_id__in=list(product_ids),
            backordered__gt=0,
            order__status__in=Order.OPEN_STATUSES,
        )
        .select_related("order")
        .order_by("order__created_at", "pk")
    )


def backorders_allocate(
    *,
    actor: Actor,
    stocks: dict[int, Stock],
    product_ids: list[int],
    records: inventory.StockRecords,
) -> None:
    """Give what is available of ``product_ids`` to their waiting lines (the arrival hook
    inventory calls under the products' locks, ``stocks``)."""
    lines = waiting_lines(product_ids)
    if not lines:
        return
    given = inventory.stock_allocate_waiting(
        actor=actor,
        stocks=stocks,
        queue=[(f"order:{line.order.number}", line.product_id, line.backordered) for line in lines],
        records=records,
    )
    served = [(line, taken) for line, taken in zip(lines, given, strict=True) if taken]
    if not served:
        return
    _record_allocations(served)
    by_order: dict[Any, list[tuple[OrderItem, list[tuple[int, int]]]]] = {}
    for line, taken in served:
        by_order.setdefault(line.order_id, []).append((line, taken))
    orders = Order.objects.prefetch_related("items").in_bulk(list(by_order))
    for order_id, order_lines in by_order.items():
        order = orders[order_id]
        allocated = [
            {"product": line.product_id, "quantity": sum(units for _, units in taken)}
            for line, taken in order_lines
        ]
        records.audit_entries.append(
            {
                "action": "order.backorder_allocated",
                "object_type": order._meta.label_lower,
                "object_id": order.pk,
                "object_repr": str(order),
                "changes": {
                    "allocated": {
                        "before": None,
                        "after": [[a["product"], a["quantity"]] for a in allocated],
                    },
                    "backordered": {
                        "before": [
                            [line.product_id, line.backordered + a["quantity"]]
                            for (line, _), a in zip(order_lines, allocated, strict=True)
                        ],
                        "after": [[line.product_id, line.backordered] for line, _ in order_lines],
                    },
                },
            }
        )
        records.events.append(
            (
                "order.backorder_allocated",
                order_payload(order) | {"allocated": allocated},
                f"order:{order.pk}",
            )
        )


def _record_allocations(served: list[tuple[OrderItem, list[tuple[int, int]]]]) -> None:
    """Add the units each line got to its allocations (where it has some at a location
    already, they grow) and take them off its waiting units."""
    existing = {
        (row.item_id, row.location_id): row
        for row in LineAllocation.objects.filter(item__in=[line for line, _ in served])
    }
    grown, new = [], []
    for line, taken in served:
        for location_id, units in taken:
            row = existing.get((line.pk, location_id))
            if row is None:
                new.append(LineAllocation(item_id=line.pk, location_id=location_id, quantity=units))
            else:
                row.quantity += units
                grown.append(row)
            line.backordered -= units
    bulk_update_rows(grown, ["quantity"])
    bulk_insert_rows(new)
    bulk_update_rows([line for line, _ in served], ["backordered"])


def backorders_release(*, actor: Actor, order: Order, reason: str) -> bool:
    """Cancel's stock effect for an order with waiting lines: its places in the queues go
    and its reservations are released (which may serve the next in the queue). Return
    False, doing nothing, when none of its lines waits (the caller releases as usual).

    The products' stock rows are locked before the lines are read: an arrival serving
    this order meanwhile has then either committed (its allocations are read and
    released) or not started (it will find the order cancelled)."""
    product_ids = list(
        OrderItem.objects.filter(order=order, backordered__gt=0).values_list(
            "product_id", flat=True
        )
    )
    if not product_ids:
        return False
    every = OrderItem.objects.filter(order=order, stock_tracked=True)
    inventory.stock_lock(every.values_list("product_id", flat=True))
    waiting = dict(every.filter(backordered__gt=0).values_list("product_id", "backordered"))
    reserved = {
        (product_id, location_id): quantity
        for product_id, location_id, quantity in LineAllocation.objects.filter(
            item__order=order
        ).values_list("item__product_id", "location_id", "quantity")
    }
    reference = f"order:{order.number}"
    if waiting:
        inventory.stock_release_waiting(lines=waiting)
    if reserved:
        inventory.stock_release(actor=actor, lines=reserved, reference=reference, reason=reason)
    return True
