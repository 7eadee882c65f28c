"""A stock row and a transfer as clients see them: the API returns these and the
``stock.*`` and ``transfer.*`` events carry them (CONTRACT.md). Inventory builds them; the
services, selectors and API reuse them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from inventory.models import Location, Stock, Transfer, TransferLine


def stock_representation(stock: Stock) -> dict[str, Any]:
    """Return a stock row as the API and the ``stock.*`` events show it."""
    return {
        "product": stock.product_id,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available,
        "in_stock": stock.available > 0,
        # Units ordered beyond stock (backorders, preorders), waiting for stock.
        "backordered": stock.backordered,
    }


def location_representation(location: Location) -> dict[str, Any]:
    """Return a location as the API and the ``location.*`` events show it (no counts)."""
    return {
        "code": location.code,
        "name": location.name,
        "address": location.address,
        "is_active": location.is_active,
        "priority": location.priority,
    }


def transfer_representation(transfer: Transfer, lines: Iterable[TransferLine]) -> dict[str, Any]:
    """Return a transfer as the API and the ``transfer.*`` events show it.

    ``in_transit`` (per line and in all) is what left ``from_location`` and has not
    arrived: counted in no location's stock, nor in the product's total meanwhile.
    """
    moving = transfer.status == Transfer.Status.IN_TRANSIT
    shown = [
        {
            "product": line.product_id,
            "quantity": line.quantity,
            "received": line.received_quantity,
            "in_transit": line.outstanding if moving else 0,
        }
        for line in sorted(lines, key=lambda line: line.product_id)
    ]
    return {
        "number": transfer.number,
        "status": transfer.status,
        "from_location": transfer.from_location.code,
        "to_location": transfer.to_location.code,
        "note": transfer.note,
        "lines": shown,
        "in_transit": sum(line["in_transit"] for line in shown),
        "created_by": transfer.created_by,
        "created_at": transfer.created_at,
        "dispatched_at": transfer.dispatched_at,
        "received_at": transfer.received_at,
        "cancelled_at": transfer.cancelled_at,
    }
