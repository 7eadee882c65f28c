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

from django.db.models import QuerySet

from catalog.csv_columns import cell_for_export
from catalog.importing import COLUMNS
from catalog.models import Product
from catalog.selectors import category_paths

CHUNK_SIZE = 2000


def export_rows(products: QuerySet[Product] | None = None) -> Iterator[list[str]]:
    """Yield the header, then one row of cells per product (in primary-key order)."""
    paths = category_paths()
    queryset = (Product.objects.all() if products is None else products).order_by("pk")
    yield list(COLUMNS)
    rows = queryset.values_list(
        "sku",
        "name",
        "slug",
        "description",
        "price",
        "currency",
        "category_id",
        "status",
        "stock__on_hand",
        "attributes",
    )
    for (
        sku,
        name,
        slug,
        description,
        price,
        currency,
        category,
        status,
        on_hand,
        attrs,
    ) in rows.iterator(chunk_size=CHUNK_SIZE):
        yield [
            sku,
            name,
            slug,
            description,
            f"{price:.2f}",
            currency,
            paths.get(category, "") if category else "",
            status,
            str(on_hand or 0),
            json.dumps(attrs, ensure_ascii=False, sort_keys=True) if attrs else "",
        ]


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
