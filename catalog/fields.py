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
# Set by the catalog itself: the status moves only by transition.
PRODUCT_STATUS_FIELDS = ("status", "published_at")
PRODUCT_TIMESTAMP_FIELDS = ("created_at", "updated_at")
# A product as the API returns it and as its events carry it.
PRODUCT_REPRESENTATION_FIELDS = (
    "id",
    *PRODUCT_EDITABLE_FIELDS,
    *PRODUCT_STATUS_FIELDS,
    *PRODUCT_TIMESTAMP_FIELDS,
)
