"""The product's field lists, written once: every other list (services, serializers,
payloads, admin form, CSV columns) is derived from these. No Django import: the
benchmark's file generator reads the CSV columns without Django."""

# What staff and clients edit, in the order the API and the CSV show them.
PRODUCT_EDITABLE_FIELDS = (
    "sku",
    "name",
    "slug",
    "description",
    "price",
    "currency",
    "category",
    "attributes",
)
# A sellable product's (a variant's, or a product's without variants) settings for
# selling beyond stock (catalog/backorders.py), written through the API's PATCH of either;
# not in the CSV (yet) nor in the product's list representation (its variants show them).
BACKORDER_FIELDS = ("allow_backorder", "backorder_limit", "preorder_until", "preorder_limit")
# Set by the catalog itself: the status moves only by transition.
PRODUCT_STATUS_FIELDS = ("status", "published_at")
PRODUCT_TIMESTAMP_FIELDS = ("created_at", "updated_at")
# A product in the lists: its options (PUT /products/{id}/options/ sets them), not its
# variants.
PRODUCT_LIST_FIELDS = (
    "id",
    *PRODUCT_EDITABLE_FIELDS,
    "options",
    *PRODUCT_STATUS_FIELDS,
    *PRODUCT_TIMESTAMP_FIELDS,
)
# A product as the API returns it and as its events carry it: with its variants.
PRODUCT_REPRESENTATION_FIELDS = (*PRODUCT_LIST_FIELDS, "variants")
