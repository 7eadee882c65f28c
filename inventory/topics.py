"""Inventory's event topic: stock levels, which the storefront sees for published products."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from catalog.models import Product
from pms_backend.apikeys import scopes
from pms_backend.events.models import Event
from pms_backend.events.registry import Topic, register_topic


def storefront_sees(events: Sequence[Event]) -> Callable[[Event], bool]:
    """The stock of published products (one query for the batch)."""
    products = {event.data.get("product") for event in events}
    published = set(
        Product.objects.filter(pk__in=products, status="published").values_list("pk", flat=True)
    )
    return lambda event: event.data.get("product") in published


register_topic(
    Topic(
        name="stock",
        event_types=("stock.updated", "stock.low"),
        read_scope=scopes.INVENTORY_READ,
        # Staff who edit the catalog see every product's stock, as in the admin.
        full_scope=scopes.CATALOG_WRITE,
        public=storefront_sees,
    )
)
