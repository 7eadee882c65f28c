"""The orders' event topic: staff see every order, a storefront key its own, without
customer data."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from orders.models import Order
from pms_backend.apikeys import scopes
from pms_backend.events.models import Event
from pms_backend.events.registry import Topic, register_topic


def placed_by(events: Sequence[Event]) -> Callable[[Event], str | None]:
    """The prefix of the API key that placed each event's order (one query for the batch)."""
    order_ids = {event.data.get("id") for event in events}
    prefixes = dict(
        Order.objects.filter(pk__in=[i for i in order_ids if i], api_key__isnull=False).values_list(
            "pk", "api_key__prefix"
        )
    )
    return lambda event: prefixes.get(_as_uuid(event.data.get("id")))


def _as_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


register_topic(
    Topic(
        name="orders",
        event_types=("order.created", "order.status_changed"),
        read_scope=scopes.ORDERS_READ,
        full_scope=scopes.ORDERS_MANAGE,
        owner=placed_by,
        personal=True,
    )
)
