"""Stock reads shared by the API, the admin and the integrity check."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import (
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import IsNull

from catalog.models import Product
from inventory.models import InventoryMovement, Location, Stock, StockLevel, Transfer
from inventory.services import stock_representation
from pms_backend import raw_rows


def _held_by(ids: list[int]) -> Q:
    """Rows of the products themselves and of their variants (a product that sells
    through variants holds nothing: its stock is its variants' summed)."""
    return Q(product_id__in=ids) | Q(product__parent_id__in=ids)


def stock_for(product_ids) -> dict[int, dict]:
    """Return ``{product_id: representation}``: a variant's or single product's own, a
    product with variants the sum of theirs; products never stocked show zeros. One
    query."""
    ids = list(product_ids)
    wanted = set(ids)
    found = {pid: Stock(product_id=pid) for pid in ids}
    for pid, parent_id, on_hand, reserved, backordered in Stock.objects.filter(
        _held_by(ids)
    ).values_list("product_id", "product__parent_id", "on_hand", "reserved", "backordered"):
        for key in {h for h in (pid, parent_id) if h in wanted}:  # its own, its product's
            found[key].on_hand += on_hand
            found[key].reserved += reserved
            found[key].backordered += backordered
    return {pid: stock_representation(found[pid]) for pid in ids}


def available_units(product_ids: list[int]) -> dict[int, int]:
    """Return ``{product_id: on hand - reserved}`` for those with a stock row, in one query:
    the totals, which are the sums over the active locations (an inactive one holds none).
    The catalog's product representation reads it (``register_availability_reader``)."""
    ids = list(product_ids)
    if not ids:
        return {}
    # Written out: a cached product page runs it on every read (pms_backend/raw_rows.py).
    table, c = raw_rows.quoted(Stock)
    sql = (
        f"SELECT {c['product_id']}, {c['on_hand']}, {c['reserved']} FROM {table} "  # noqa: S608 -- model names and placeholders
        f"WHERE {c['product_id']} IN ({raw_rows.placeholders(len(ids))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return {pk: on_hand - reserved for pk, on_hand, reserved in cursor.fetchall()}


def in_stock_condition(*, each_row: bool = False) -> Q:
    """A filter on products: those with something available, their own stock or one of
    their variants' (the totals: sums over the active locations). Search filters and
    facets read it (``register_in_stock_condition``).

    ``each_row``: as scalar subqueries, looked up by index for each product, for a count
    over products already found (a search's facets). As EXISTS (the default, for a
    filter) PostgreSQL may instead read every stock row once and hash them, which is
    right for a whole catalog but cost a search of 5,000 products half a second at
    300,000 stocked variants."""
    available = Stock.objects.filter(on_hand__gt=F("reserved")).values("pk")
    own = available.filter(product_id=OuterRef("pk"))
    via_variants = available.filter(product__parent_id=OuterRef("pk"))
    if each_row:
        return Q(IsNull(Subquery(own[:1]), False)) | Q(IsNull(Subquery(via_variants[:1]), False))
    return Q(Exists(own)) | Q(Exists(via_variants))


def stock_by_location(product_ids) -> dict[int, list[dict]]:
    """Return ``{product_id: [{"location", "on_hand", "reserved", "available"}, ...]}``
    over every active location (by priority; zeros where the product has no level; a
    product with variants the sums of theirs) in two queries, however many products."""
    ids = list(product_ids)
    wanted = set(ids)
    active = list(Location.objects.filter(is_active=True).values_list("pk", "code"))
    levels: dict[tuple[int, int], tuple[int, int]] = {}
    for pid, parent_id, location_id, on_hand, reserved in StockLevel.objects.filter(
        _held_by(ids), location__is_active=True
    ).values_list("product_id", "product__parent_id", "location_id", "on_hand", "reserved"):
        holders = [h for h in (pid, parent_id) if h is not None and h in wanted]
        for holder in set(holders):  # its own, and its product's sum
            had = levels.get((holder, location_id), (0, 0))
            levels[(holder, location_id)] = (had[0] + on_hand, had[1] + reserved)
    found = {}
    for pid in ids:
        rows = []
        for location_id, code in active:
            on_hand, reserved = levels.get((pid, location_id), (0, 0))
            rows.append(
                {
                    "location": code,
                    "on_hand": on_hand,
                    "reserved": reserved,
                    "available": on_hand - reserved,
                }
            )
        found[pid] = rows
    return found


def location_list(*, with_stock: bool = False) -> QuerySet[Location]:
    """Every location by priority; ``with_stock`` adds its ``on_hand`` and ``reserved``
    sums over its products (in the same query)."""
    locations = Location.objects.order_by("priority", "id")
    if with_stock:
        locations = locations.annotate(
            on_hand=Coalesce(Sum("stock_levels__on_hand"), Value(0)),
            reserved=Coalesce(Sum("stock_levels__reserved"), Value(0)),
        )
    return locations


def movement_list() -> QuerySet[InventoryMovement]:
    return InventoryMovement.objects.select_related("location")


def ledger_totals() -> dict[tuple[int, int], tuple[int, int]]:
    """Return ``{(product_id, location_id): (Σ on_hand deltas, Σ reserved deltas)}`` over
    the whole ledger."""
    rows = InventoryMovement.objects.values("product_id", "location_id").annotate(
        on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta")
    )
    return {
        (r["product_id"], r["location_id"]): (r["on_hand"] or 0, r["reserved"] or 0) for r in rows
    }


def product_levels_table(product_id: int) -> list[dict[str, Any]]:
    """Return the product's levels at each active location (zeros where it has none) and
    at any inactive one still holding some, in allocation order: one query.

    Each row: ``code``, ``name``, ``is_active``, ``on_hand``, ``reserved``, ``available``.
    """
    rows = (
        Location.objects.annotate(
            level=FilteredRelation("stock_levels", condition=Q(stock_levels__product_id=product_id))
        )
        .filter(Q(is_active=True) | Q(level__on_hand__gt=0))
        .order_by("priority", "id")
        .values(
            "code",
            "name",
            "is_active",
            on_hand=Coalesce(F("level__on_hand"), 0),
            reserved=Coalesce(F("level__reserved"), 0),
        )
    )
    return [row | {"available": row["on_hand"] - row["reserved"]} for row in rows]


def variant_levels_table(product_id: int) -> dict[str, Any]:
    """Return the stock of a product's variants at each location, in three queries.

    ``locations``: the active locations and any inactive one a variant still holds stock
    at, in allocation order (``code``, ``name``, ``is_active``); ``variants``: one row per
    variant in making order (``id``, ``sku``, ``options``, ``levels`` by location code as
    ``(on_hand, reserved)``, and its totals ``on_hand``, ``reserved``, ``available``);
    ``total``: the sums over the variants."""
    variants = list(
        Product.objects.filter(parent_id=product_id)
        .order_by("pk")
        .values("pk", "sku", "option_values")
    )
    levels: dict[int, dict[int, tuple[int, int]]] = {}
    for variant_id, location_id, on_hand, reserved in StockLevel.objects.filter(
        product__parent_id=product_id
    ).values_list("product_id", "location_id", "on_hand", "reserved"):
        levels.setdefault(variant_id, {})[location_id] = (on_hand, reserved)
    holding = {loc for found in levels.values() for loc, (on_hand, _) in found.items() if on_hand}
    locations = list(
        Location.objects.filter(Q(is_active=True) | Q(pk__in=holding))
        .order_by("priority", "id")
        .values("pk", "code", "name", "is_active")
    )
    rows = []
    for variant in variants:
        found = levels.get(variant["pk"], {})
        on_hand = sum(level[0] for level in found.values())
        reserved = sum(level[1] for level in found.values())
        rows.append(
            {
                "id": variant["pk"],
                "sku": variant["sku"],
                "options": " / ".join(variant["option_values"].values()),
                "levels": {loc["code"]: found.get(loc["pk"], (0, 0)) for loc in locations},
                "on_hand": on_hand,
                "reserved": reserved,
                "available": on_hand - reserved,
            }
        )
    total = {name: sum(row[name] for row in rows) for name in ("on_hand", "reserved", "available")}
    return {"locations": locations, "variants": rows, "total": total}


def transfer_list() -> QuerySet[Transfer]:
    """Transfers with their locations and lines, newest first."""
    return Transfer.objects.select_related("from_location", "to_location").prefetch_related("lines")
