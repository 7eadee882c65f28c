"""The order's row lock: the first lock of every step that changes an order after it is
placed (shipments, refunds, returns), taken before any stock lock, as the status
machine's moves take it."""

from __future__ import annotations

import uuid

from orders.errors import OrderErrorCode as Code
from orders.models import Order
from pms_backend.errors import NotFound


def order_lock(order_id: uuid.UUID | str) -> Order:
    """Lock and return the order; 404 (``unknown_order``) when there is none."""
    try:
        pk = order_id if isinstance(order_id, uuid.UUID) else uuid.UUID(str(order_id))
    except ValueError:
        pk = None
    # No ORDER BY (``first()`` would add the orders' default one): one row by its key.
    found = (
        list(Order.objects.select_for_update(of=("self",)).filter(pk=pk).order_by()) if pk else []
    )
    if not found:
        raise NotFound(Code.UNKNOWN_ORDER, f"No order is {order_id}.")
    return found[0]
