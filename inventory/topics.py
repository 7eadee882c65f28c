"""Inventory's event topics: stock levels, which the storefront sees for published products;
stock locations; and transfers between locations, which only staff keys see."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import connection

from catalog.models import Product
from pms_backend import raw_rows
from pms_backend.apikeys import scopes
from pms_backend.events.models import Event
from pms_backend.events.registry import Topic, register_topic


def storefront_sees(events: Sequence[Event]) -> Callable[[Event], bool]:
    """The stock of published products (one query for the batch)."""
    ids = sorted({p for p in (e.data.get("product") for e in events) if isinstance(p, int)})
    published: set[int] = set()
    if ids:
        # Written out: the relay runs it for every batch of stock events
        # (pms_backend/raw_rows.py).
        table, c = raw_rows.quoted(Product)
        sql = (
            f"SELECT {c['id']} FROM {table} WHERE {c['status']} = %s "  # noqa: S608 -- model names and placeholders
            f"AND {c['id']} IN ({raw_rows.placeholders(len(ids))})"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [Product.Status.PUBLISHED.value, *ids])
            published = {pk for (pk,) in cursor.fetchall()}
    return lambda event: event.data.get("product") in published


register_topic(
    Topic(
        name="stock",
        event_types=("stock.updated", "stock.low"),
        read_scope=scopes.INVENTORY_READ,
        # Staff who edit the catalog see every product's stock, as in the admin.
        full_scope=scopes.CATALOG_WRITE,
        public=storefront_sees,
        # Where stock changed: with the totals before and after, a storefront could add up
        # what each location holds, which it never sees.
        public_omits=("locations",),
    )
)

# Locations carry no counts (what a location holds is for ledger readers): whoever reads
# the locations hears about them.
register_topic(
    Topic(
        name="locations",
        event_types=("location.created", "location.updated", "location.deleted"),
        read_scope=scopes.INVENTORY_READ,
        full_scope=scopes.INVENTORY_READ,
    )
)

# A transfer names quantities per location, which storefronts never see (their keys hold
# inventory:read for stock totals): like the ledger, it is read with inventory:write.
register_topic(
    Topic(
        name="transfers",
        event_types=(
            "transfer.created",
            "transfer.updated",
            "transfer.dispatched",
            "transfer.received",
            "transfer.cancelled",
        ),
        read_scope=scopes.INVENTORY_WRITE,
        full_scope=scopes.INVENTORY_WRITE,
        # Sent only to endpoints that name them: an endpoint made for "every event" before
        # transfers existed, by a key without inventory:write, must not start receiving
        # them (the scope is checked when an endpoint is made or changed).
        opt_in=True,
    )
)
