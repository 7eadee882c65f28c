"""Stock reads shared by the API, the admin and the integrity check."""

from __future__ import annotations

from django.db.models import QuerySet, Sum

from inventory.models import InventoryMovement, Stock


def stock_for(product_ids) -> dict[int, dict]:
    """Return ``{product_id: representation}``; products without a stock row show zeros."""
    from inventory.services import stock_representation

    ids = list(product_ids)
    found = {s.product_id: s for s in Stock.objects.filter(product_id__in=ids)}
    return {pid: stock_representation(found.get(pid) or Stock(product_id=pid)) for pid in ids}


def movement_list() -> QuerySet[InventoryMovement]:
    return InventoryMovement.objects.all()


def ledger_totals() -> dict[int, tuple[int, int]]:
    """Return ``{product_id: (Σ on_hand deltas, Σ reserved deltas)}`` over the whole ledger."""
    rows = InventoryMovement.objects.values("product_id").annotate(
        on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta")
    )
    return {r["product_id"]: (r["on_hand"] or 0, r["reserved"] or 0) for r in rows}
