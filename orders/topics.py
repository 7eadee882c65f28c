"""The orders' event topic: staff see every order, a storefront key its own, without
customer data. Refunds and returns are events of their order's topic: whoever hears an
order hears what is paid back and sent back on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from django.db import connection

from orders.models import Order
from pms_backend import raw_rows
from pms_backend.apikeys import scopes
from pms_backend.apikeys.models import ApiKey
from pms_backend.events.models import Event
from pms_backend.events.registry import Topic, register_topic


def placed_by(events: Sequence[Event]) -> Callable[[Event], str | None]:
    """The prefix of the API key that placed each event's order (one query for the batch)."""
    ids = sorted({pk for pk in map(_as_uuid, (order_of(e) for e in events)) if pk is not None})
    prefixes: dict[uuid.UUID | None, str] = {}
    if ids:
        # Written out: the relay runs it for every batch of order events
        # (pms_backend/raw_rows.py).
        orders, o = raw_rows.quoted(Order)
        keys, k = raw_rows.quoted(ApiKey)
        sql = (
            f"SELECT o.{o['id']}, k.{k['prefix']} FROM {orders} o "  # noqa: S608 -- model names and placeholders
            f"JOIN {keys} k ON k.{k['id']} = o.{o['api_key_id']} "
            f"WHERE o.{o['id']} IN ({raw_rows.placeholders(len(ids))})"
        )
        pk_field = Order._meta.pk
        with connection.cursor() as cursor:
            cursor.execute(sql, [pk_field.get_db_prep_value(pk, connection) for pk in ids])
            for pk, prefix in cursor.fetchall():
                prefixes[pk_field.to_python(pk)] = prefix
    return lambda event: prefixes.get(_as_uuid(order_of(event)))


def order_of(event: Event):
    """The id of the event's order: an order's own id, a refund's or return's ``order``
    (a summary), a fulfilment's ``order`` (the id)."""
    summary = event.data.get("order")
    if isinstance(summary, dict):
        return summary.get("id")
    return summary if summary is not None else event.data.get("id")


def _as_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


register_topic(
    Topic(
        name="orders",
        event_types=(
            "order.created",
            "order.status_changed",
            "order.backorder_allocated",
            "refund.created",
            "return.requested",
            "return.received",
            "return.refunded",
            "return.cancelled",
        ),
        read_scope=scopes.ORDERS_READ,
        full_scope=scopes.ORDERS_MANAGE,
        owner=placed_by,
        personal=True,
    )
)

# Shipments of orders: whoever reads an order hears of its shipments (a storefront key of
# its own orders', to tell its customers). They carry no customer data.
register_topic(
    Topic(
        name="fulfillments",
        event_types=("fulfillment.created", "fulfillment.updated"),
        read_scope=scopes.ORDERS_READ,
        full_scope=scopes.ORDERS_MANAGE,
        owner=placed_by,
    )
)
