"""Helpers for the order and inventory tests: placing orders, reading stock, counting rows."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from audit.actors import Actor


def place(client, body, key: str | None = None):
    """POST an order with a fresh (or the given) ``Idempotency-Key``."""
    return client.post(
        "/api/v1/orders/",
        body,
        format="json",
        HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
    )


def stock_of(product) -> tuple[int, int]:
    """Return ``(on_hand, reserved)`` of ``product``; zeros when it has no stock row."""
    from inventory.models import Stock

    row = Stock.objects.filter(product=product).values_list("on_hand", "reserved").first()
    return row or (0, 0)


def order_row_counts() -> dict[str, int]:
    from audit.models import AuditLog
    from inventory.models import InventoryMovement, Stock
    from orders.models import Order, OrderItem
    from pms_backend.events.models import Event

    return {
        "orders": Order.objects.count(),
        "items": OrderItem.objects.count(),
        "movements": InventoryMovement.objects.count(),
        "stock rows": Stock.objects.count(),
        "audit": AuditLog.objects.count(),
        "events": Event.objects.count(),
    }


@contextmanager
def writes_nothing():
    """Assert the block adds no order, item, movement, stock row, audit entry or event,
    and leaves every stock row's numbers as they were."""
    from inventory.models import Stock

    def snapshot():
        return order_row_counts(), sorted(
            Stock.objects.values_list("product_id", "on_hand", "reserved")
        )

    before = snapshot()
    yield
    assert snapshot() == before


def move_order(order_id: int, *transitions: str, **kwargs):
    """Take an order through ``transitions`` with the service, as a system job.

    ``kwargs`` (``restock``, ``reason``) go to the last transition only.
    """
    from orders.services import order_transition

    order = None
    for index, name in enumerate(transitions):
        last = index == len(transitions) - 1
        order = order_transition(
            actor=Actor.system("tests"),
            order_id=order_id,
            transition=name,
            **(kwargs if last else {}),
        )
    return order
