from enum import StrEnum


class CatalogErrorCode(StrEnum):
    INVALID_TRANSITION = "invalid_transition"
    PUBLISH_REQUIREMENTS_UNMET = "publish_requirements_unmet"
    CONCURRENT_MODIFICATION = "concurrent_modification"
    DUPLICATE_SKU = "duplicate_sku"
    DUPLICATE_SLUG = "duplicate_slug"
    CATEGORY_CYCLE = "category_cycle"
    CATEGORY_IN_USE = "category_in_use"
    CATEGORY_HAS_CHILDREN = "category_has_children"
    UNKNOWN_CATEGORY = "unknown_category"
    UNKNOWN_TRANSITION = "unknown_transition"
    INVALID_ATTRIBUTES = "validation_error"
    IMPORT_REJECTED = "import_rejected"
    IMPORT_TOO_LARGE = "import_too_large"
