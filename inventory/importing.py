"""The stock level's column of the product file (``on_hand``), registered into the
catalog's importer and exporter: the catalog carries the column, inventory reads and
writes it, so that the catalog never imports inventory (docs/import-export.md).

The column is the stock at the shop's default location (the first active one by
priority): what a one-location shop holds, and in a shop of several the place goods
are received. Other locations' stock is moved by receipts, transfers and stocktakes."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, Subquery

from audit.actors import Actor
from catalog.csv_columns import ExtraColumn, register_extra_column
from inventory.models import InventoryMovement, Location, StockLevel
from inventory.services import MAX_MOVEMENT_QUANTITY, default_location
from inventory.stocktake import stock_set_levels
from pms_backend.errors import Conflict


class StockLevelColumn(ExtraColumn):
    """``on_hand``: the stock level a product should have, reached by ledger movements
    (``receipt`` for a product the import created, ``adjustment`` otherwise)."""

    name = "on_hand"
    initial = (0, 0)  # (on_hand, reserved) of a product never stocked
    summary = ("stock movement", "stock movements")
    only_summary = "with only a new stock level"

    def parse(self, cell: str) -> tuple[int | None, str]:
        if not cell:
            return None, ""
        if cell.startswith("-") and cell[1:].isdigit():
            return None, "Must not be negative."
        if not (cell.isascii() and cell.isdigit()):
            return None, f"{cell[:20]!r} is not a whole number."
        if int(cell) > MAX_MOVEMENT_QUANTITY:
            return None, f"At most {MAX_MOVEMENT_QUANTITY}."
        return int(cell), ""

    def load(self, product_ids: list[int]) -> dict[int, tuple[int, int]]:
        rows = StockLevel.objects.filter(
            product_id__in=product_ids, location=default_location()
        ).values_list("product_id", "on_hand", "reserved")
        return {product_id: (on_hand, reserved) for product_id, on_hand, reserved in rows}

    def problem(self, value: Any, state: Any) -> str:
        reserved = state[1]
        if value < reserved:
            return f"{value} is below the {reserved} reserved by open orders."
        return ""

    def changes(self, value: Any, state: Any) -> bool:
        return value != state[0]

    def shown(self, state: Any) -> str:
        return str(state[0])

    def write(
        self, *, actor: Any, targets: dict[int, Any], created: set[int], reason: str
    ) -> dict[int, str]:
        refused: dict[int, str] = {}
        for kind, chosen in (
            (InventoryMovement.Kind.RECEIPT, {p: t for p, t in targets.items() if p in created}),
            (
                InventoryMovement.Kind.ADJUSTMENT,
                {p: t for p, t in targets.items() if p not in created},
            ),
        ):
            if chosen:
                refused |= _set_levels(actor, chosen, kind, reason)
        return refused

    def export_expression(self) -> Any:
        # Read only: an export never makes the first location (default_location() would).
        default = (
            Location.objects.filter(is_active=True).order_by("priority", "id").values("pk")[:1]
        )
        return Subquery(
            StockLevel.objects.filter(
                product_id=OuterRef("pk"), location_id=Subquery(default)
            ).values("on_hand")[:1]
        )

    def export_cell(self, value: Any) -> str:
        return str(value or 0)


def _set_levels(actor: Actor, targets: dict[int, int], kind: str, reason: str) -> dict[int, str]:
    try:
        stock_set_levels(actor=actor, targets=targets, kind=kind, reason=reason)
    except Conflict as exc:
        return {
            short["product"]: f"{short['requested']} is below the {short['reserved']} reserved "
            "by open orders."
            for short in exc.extra.get("lines", [])
        }
    return {}


register_extra_column(StockLevelColumn())
