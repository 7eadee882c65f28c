"""The catalog's event topic: products and categories, and what the storefront sees live."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pms_backend.apikeys import scopes
from pms_backend.events.models import Event
from pms_backend.events.registry import Topic, register_topic

# Moves that take a product out of the storefront's view: it must hear of them.
LEAVING_STOREFRONT = ("product.unpublished", "product.archived")


def storefront_sees(events: Sequence[Event]) -> Callable[[Event], bool]:
    """Published products, the moves that unpublish them, active or deleted categories."""
    return _storefront_sees


def _storefront_sees(event: Event) -> bool:
    if event.type.startswith("category."):
        return bool(event.data.get("is_active")) or bool(event.data.get("deleted"))
    return event.data.get("status") == "published" or event.type in LEAVING_STOREFRONT


register_topic(
    Topic(
        name="products",
        event_types=(
            "product.created",
            "product.updated",
            "product.published",
            "product.unpublished",
            "product.archived",
            "product.restored",
            "variant.created",
            "variant.updated",
            "variant.deleted",
            "category.updated",
        ),
        read_scope=scopes.CATALOG_READ,
        full_scope=scopes.CATALOG_WRITE,
        public=storefront_sees,
    )
)
