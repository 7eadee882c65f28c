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

from catalog.csv_columns import COLUMNS, ExtraColumn, cell_for_export, extra_columns
from catalog.models import Product
from catalog.selectors import category_paths

CHUNK_SIZE = 2000


def export_rows(products: QuerySet[Product] | None = None) -> Iterator[list[str]]:
    """Yield the header, then one row of cells per product (in primary-key order).

    The columns other apps own (the stock level) come from their ``ExtraColumn``: an
    annotation of the same query, so the export stays one streamed query.
    """
    paths = category_paths()
    extras = {column.name: column for column in extra_columns()}
    queryset = (Product.objects.all() if products is None else products).order_by("pk")
    queryset = queryset.annotate(
        **{f"extra_{name}": column.export_expression() for name, column in extras.items()}
    )
    yield list(COLUMNS)
    fields = [
        "category_id" if name == "category" else (f"extra_{name}" if name in extras else name)
        for name in COLUMNS
    ]
    cells = [_formatter(name, paths, extras) for name in COLUMNS]
    for values in queryset.values_list(*fields).iterator(chunk_size=CHUNK_SIZE):
        yield [cell(value) for cell, value in zip(cells, values, strict=True)]


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
