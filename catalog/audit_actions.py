"""The catalog's audit actions as staff read them in the audit log."""

from audit.action_names import register_action_names

register_action_names(
    {
        "category.created": "Category created",
        "category.updated": "Category changed",
        "category.deleted": "Category deleted",
        "product.created": "Product created",
        "product.updated": "Product changed",
        "product.published": "Product published",
        "product.unpublished": "Product moved back to draft",
        "product.archived": "Product archived",
        "product.restored": "Product restored to draft",
        "product.bulk_created": "Product created (bulk)",
        "product.imported": "Products imported",
        "variant.created": "Variant created",
        "variant.updated": "Variant changed",
        "variant.deleted": "Variant deleted",
        "variant.bulk_created": "Variant created (bulk)",
    }
)
