"""The product CSV's columns, in order (docs/import-export.md): shared by the import, the
export, the admin and the benchmark's file generator, which runs without Django."""

COLUMNS = (
    "sku",
    "name",
    "slug",
    "description",
    "price",
    "currency",
    "category",
    "status",
    "on_hand",
    "attributes",
)
