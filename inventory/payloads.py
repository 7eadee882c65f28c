"""A stock row as clients see it: the API returns this and the ``stock.*`` events carry it
(CONTRACT.md). Inventory builds it; the services, selectors and API reuse it."""

from __future__ import annotations

from typing import Any

from inventory.models import Stock


def stock_representation(stock: Stock) -> dict[str, Any]:
    """Return a stock row as the API and the ``stock.*`` events show it."""
    return {
        "product": stock.product_id,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available,
        "in_stock": stock.available > 0,
    }
