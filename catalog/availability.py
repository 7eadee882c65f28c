"""How many of each variant the shop can sell, as the product's representation shows it.

The catalog holds no stock: inventory does, and inventory depends on the catalog, never
the other way round. Inventory registers the reader (``register_availability_reader``)
from its AppConfig.ready(), as it registers the product file's stock column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# ``reader(ids)`` -> ``{id: units on hand and not reserved}``, summed over the active
# locations, for those ids that have stock; one query however many ids.
AvailabilityReader = Callable[[list[int]], dict[int, int]]

_readers: list[AvailabilityReader] = []


def register_availability_reader(reader: AvailabilityReader) -> None:
    """Let ``reader`` say what is available of products and variants (one reader: a
    second registration replaces the first)."""
    _readers[:] = [reader]


def availability_of(ids: Iterable[int]) -> dict[int, int]:
    """Return ``{id: available units}`` for ``ids`` (0 for those without stock)."""
    ids = list(dict.fromkeys(ids))
    if not _readers:
        raise RuntimeError("No app has registered an availability reader (inventory does).")
    if not ids:
        return {}
    found = _readers[0](ids)
    return {pk: found.get(pk, 0) for pk in ids}


# ``condition(each_row=False)`` -> a filter on products (``Product.objects.filter(...)``):
# those of which something sells now (its own stock, or a variant's, above what is
# reserved). ``each_row=True``: the form to count over products already found (looked up
# for each product, never by reading every stock row).
InStockCondition = Callable[..., Any]

_in_stock: list[InStockCondition] = []


def register_in_stock_condition(condition: InStockCondition) -> None:
    """Let ``condition`` say which products are in stock, for search filters and facets
    (one: a second registration replaces the first)."""
    _in_stock[:] = [condition]


def in_stock_condition(*, each_row: bool = False) -> Any:
    """Return a filter on products: something it sells is available now."""
    if not _in_stock:
        raise RuntimeError("No app has registered an in-stock condition (inventory does).")
    return _in_stock[0](each_row=each_row)
