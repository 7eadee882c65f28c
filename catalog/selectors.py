"""Catalog reads shared by the API and the admin."""

from __future__ import annotations

from django.db import connection
from django.db.models import Prefetch, QuerySet

from catalog.models import Category, Product
from pms_backend import raw_rows


def product_list(*, include_unpublished: bool) -> QuerySet[Product]:
    """Return products (never their variants); storefronts see Published only.

    No join on the category: a product carries its category as an id, and loading the
    category rows made every page of a list noticeably dearer (scripts/bench.sh).
    """
    # Products, not their variants: a variant is read through its product.
    qs = Product.objects.filter(parent__isnull=True)
    if not include_unpublished:
        qs = qs.filter(status=Product.Status.PUBLISHED)
    return qs


def variant_list(*, include_unpublished: bool) -> QuerySet[Product]:
    """Return variants; storefronts see those of Published products only (a variant's
    status is always its product's)."""
    qs = Product.objects.filter(parent__isnull=False)
    if not include_unpublished:
        qs = qs.filter(status=Product.Status.PUBLISHED)
    return qs


def sellable_list(*, include_unpublished: bool) -> QuerySet[Product]:
    """Return products and their variants alike (stock is read for either: a variant's
    own, a product with variants summed over them); storefronts see Published only (a
    variant has its product's status)."""
    qs = Product.objects.all()
    if not include_unpublished:
        qs = qs.filter(status=Product.Status.PUBLISHED)
    return qs


def category_list(*, include_inactive: bool) -> QuerySet[Category]:
    """Return categories with their children's ids prefetched; storefronts see active ones."""
    children = Category.objects.only("id", "parent_id", "position", "name")
    if not include_inactive:
        children = children.filter(is_active=True)
    qs = Category.objects.prefetch_related(Prefetch("children", queryset=children))
    if not include_inactive:
        qs = qs.filter(is_active=True)
    return qs


def category_ancestors(category: Category) -> list[Category]:
    """Return the chain from the root down to ``category``'s parent."""
    chain = []
    seen = {category.pk}
    node = category.parent
    while node is not None and node.pk not in seen:
        chain.append(node)
        seen.add(node.pk)
        node = node.parent
    return list(reversed(chain))


def category_paths() -> dict[int, str]:
    """Return every category's full path ("Root / Child / Leaf") in one query."""
    rows = {
        pk: (name, parent)
        for pk, name, parent in Category.objects.values_list("id", "name", "parent_id")
    }
    paths: dict[int, str] = {}

    def path(pk: int, depth: int = 0) -> str:
        if pk in paths:
            return paths[pk]
        name, parent = rows[pk]
        if parent is None or parent not in rows or depth > 100:
            result = name
        else:
            result = f"{path(parent, depth + 1)} / {name}"
        paths[pk] = result
        return result

    for pk in rows:
        path(pk)
    return paths


def sku_rows_named(product_ids) -> list[tuple[int, int | None, str, bool]]:
    """Return ``(id, parent id, SKU, tracks stock)`` of the given products and of the
    published variants of those among them, in id order: what an order placement needs to
    name the variant of each line. One statement, written out: it runs once per order
    (pms_backend/raw_rows.py)."""
    ids = list(product_ids)
    if not ids:
        return []
    table, c = raw_rows.quoted(Product)
    marks = raw_rows.placeholders(len(ids))
    sql = (
        f"SELECT {c['id']}, {c['parent_id']}, {c['sku']}, {c['track_stock']} FROM {table} "  # noqa: S608 -- model names and placeholders
        f"WHERE ({c['parent_id']} IN ({marks}) AND {c['status']} = %s) OR {c['id']} IN ({marks}) "
        f"ORDER BY {c['id']}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*ids, Product.Status.PUBLISHED.value, *ids])
        return [(pk, parent, sku, bool(tracked)) for pk, parent, sku, tracked in cursor.fetchall()]


# What a variant's representation shows (catalog.payloads.variant_payload).
VARIANT_SHOWN_FIELDS = (
    "id",
    "parent_id",
    "sku",
    "barcode",
    "price",
    "currency",
    "option_values",
    "weight_grams",
    "track_stock",
    "allow_backorder",
    "backorder_limit",
    "preorder_until",
    "preorder_limit",
    "status",
    "created_at",
    "updated_at",
)


def variant_rows_of(product_ids) -> dict[int, list[dict]]:
    """Return each product's variants (in making order) as rows of ``VARIANT_SHOWN_FIELDS``
    by product id, in one query: what a product's representation shows of them, without
    loading whole products (fifty variants cost a product detail twice as much)."""
    found: dict[int, list[dict]] = {}
    rows = Product.objects.filter(parent_id__in=list(product_ids)).order_by("pk")
    for row in rows.values(*VARIANT_SHOWN_FIELDS):
        found.setdefault(row["parent_id"], []).append(row)
    return found


def sellable_ids(product_ids) -> list[int]:
    """Return the ids of what sells for these products, in id order: a product's
    variants, or the product itself when it has none (its own single variant)."""
    ids = list(product_ids)
    variants = Product.objects.filter(parent_id__in=ids).values_list("parent_id", "pk")
    parents = set()
    found = []
    for parent_id, pk in variants:
        parents.add(parent_id)
        found.append(pk)
    return sorted([*found, *(pk for pk in ids if pk not in parents)])
