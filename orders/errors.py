from enum import StrEnum


class OrderErrorCode(StrEnum):
    INVALID_TRANSITION = "invalid_transition"
    CONCURRENT_MODIFICATION = "concurrent_modification"
    PRODUCT_UNAVAILABLE = "product_unavailable"
    MIXED_CURRENCIES = "mixed_currencies"
    INVALID_ORDER = "invalid_order"
    UNKNOWN_TRANSITION = "unknown_transition"
