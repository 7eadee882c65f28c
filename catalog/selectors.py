"""Catalog reads shared by the API and the admin."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from catalog.models import Category, Product


def product_list(*, include_unpublished: bool) -> QuerySet[Product]:
    """Return products; storefronts see Published only.

    No join on the category: a product carries its category as an id, and loading the
    category rows made every page of a list noticeably dearer (scripts/bench.sh).
    """
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
