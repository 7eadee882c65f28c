"""Exporting products as CSV: the one writer behind ``manage.py export_products`` and the
admin's export. The output is what ``catalog.importing`` reads (docs/import-export.md):
exporting and importing the file again changes nothing.

Rows stream from a server-side cursor in chunks, so memory stays flat whatever the
number of products.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

from django.db.models import QuerySet

from catalog.csv_columns import (
    COLUMNS,
    OPTION_COLUMNS,
    VARIANT_COLUMNS,
    ExtraColumn,
    cell_for_export,
    extra_columns,
)
from catalog.models import Product
from catalog.selectors import category_paths

CHUNK_SIZE = 2000


def export_rows(products: QuerySet[Product] | None = None) -> Iterator[list[str]]:
    """Yield the header, then one row of cells per product (in primary-key order), or
    one per variant for a product sold in variants (its variants in making order).

    The columns other apps own (the stock level) come from their ``ExtraColumn``: an
    annotation of the same query, so the export stays one streamed query (and one more
    per chunk of products for the variants, when the selection has any). The variant
    columns are written only when it has: a shop without variants gets the file it
    always got.
    """
    paths = category_paths()
    extras = {column.name: column for column in extra_columns()}
    queryset = (Product.objects.all() if products is None else products).filter(parent__isnull=True)
    queryset = queryset.order_by("pk").annotate(
        **{f"extra_{name}": column.export_expression() for name, column in extras.items()}
    )
    fields = [
        "category_id" if name == "category" else (f"extra_{name}" if name in extras else name)
        for name in COLUMNS
    ]
    cells = [_formatter(name, paths, extras) for name in COLUMNS]
    if not Product.objects.filter(parent__in=queryset.values("pk")).exists():
        yield list(COLUMNS)
        for values in queryset.values_list(*fields).iterator(chunk_size=CHUNK_SIZE):
            yield [cell(value) for cell, value in zip(cells, values, strict=True)]
        return
    yield [*COLUMNS, *VARIANT_COLUMNS]
    chunk: list[tuple] = []
    for values in queryset.values_list(*fields, "pk", "options").iterator(chunk_size=CHUNK_SIZE):
        chunk.append(values)
        if len(chunk) >= CHUNK_SIZE:
            yield from _rows_with_variants(chunk, cells, extras)
            chunk = []
    yield from _rows_with_variants(chunk, cells, extras)


_PLAIN_TAIL = [""] * len(VARIANT_COLUMNS)


def _rows_with_variants(
    chunk: list[tuple], cells: list[Callable[[Any], str]], extras: dict[str, ExtraColumn]
) -> Iterator[list[str]]:
    """Yield the rows of a chunk of products (values, then pk and options): a product
    without variants as one row, a product sold in variants as one row per variant."""
    if not chunk:
        return
    variants: dict[int, list[dict[str, Any]]] = {}
    sold_in_variants = [values[-2] for values in chunk if values[-1]]
    if sold_in_variants:
        rows = (
            Product.objects.filter(parent_id__in=sold_in_variants)
            .order_by("parent_id", "pk")
            .annotate(
                **{f"extra_{name}": column.export_expression() for name, column in extras.items()}
            )
            .values(
                "parent_id",
                "sku",
                "price",
                "option_values",
                "barcode",
                "weight_grams",
                "track_stock",
                *(f"extra_{name}" for name in extras),
            )
        )
        for row in rows:
            variants.setdefault(row["parent_id"], []).append(row)
    for values in chunk:
        own = [cell(value) for cell, value in zip(cells, values[:-2], strict=True)]
        if values[-2] not in variants:
            yield [*own, *_PLAIN_TAIL]
            continue
        options = [option["name"] for option in values[-1]]
        for variant in variants[values[-2]]:
            yield _variant_row(own, variant, options, extras)


_POSITIONS = {name: i for i, name in enumerate(COLUMNS)}


def _variant_row(
    own: list[str], variant: dict[str, Any], options: list[str], extras: dict[str, ExtraColumn]
) -> list[str]:
    """Return a variant's row: its product's cells (``own``) with the variant's SKU, price
    and registered columns, then the variant columns."""
    row = list(own)
    row[_POSITIONS["sku"]] = variant["sku"]
    row[_POSITIONS["price"]] = f"{variant['price']:.2f}"
    for name, column in extras.items():
        row[_POSITIONS[name]] = column.export_cell(variant[f"extra_{name}"])
    pairs: list[str] = []
    for name in options:
        pairs += [name, variant["option_values"].get(name, "")]
    pairs += [""] * (len(OPTION_COLUMNS) - len(pairs))
    weight = variant["weight_grams"]
    return [
        *row,
        own[_POSITIONS["sku"]],
        own[_POSITIONS["price"]],
        *pairs,
        variant["barcode"] or "",
        "" if weight is None else str(weight),
        "true" if variant["track_stock"] else "false",
    ]


def _formatter(
    name: str, paths: dict[int, str], extras: dict[str, ExtraColumn]
) -> Callable[[Any], str]:
    """Return how the column ``name`` turns a stored value into its cell."""
    if name in extras:
        return extras[name].export_cell
    if name == "price":
        return lambda price: f"{price:.2f}"
    if name == "category":
        return lambda category: paths.get(category, "") if category else ""
    if name == "attributes":
        return lambda attrs: json.dumps(attrs, ensure_ascii=False, sort_keys=True) if attrs else ""
    return lambda text: text


def export_csv(
    products: QuerySet[Product] | None = None,
    *,
    rows_per_chunk: int = 500,
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """Yield the CSV text in chunks of ``rows_per_chunk`` rows (for files and responses).

    ``progress`` is told how many product rows each chunk holds.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    pending = -1  # the header is not a product
    for row in export_rows(products):
        writer.writerow([cell_for_export(cell) for cell in row])
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if progress:
                progress(pending)
            pending = 0
    if buffer.tell():
        yield buffer.getvalue()
    if progress and pending > 0:
        progress(pending)
