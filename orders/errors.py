from enum import StrEnum


class OrderErrorCode(StrEnum):
    INVALID_TRANSITION = "invalid_transition"
    CONCURRENT_MODIFICATION = "concurrent_modification"
    PRODUCT_UNAVAILABLE = "product_unavailable"
    MIXED_CURRENCIES = "mixed_currencies"
    TOTAL_TOO_LARGE = "order_total_too_large"
    INVALID_ORDER = "invalid_order"
    UNKNOWN_TRANSITION = "unknown_transition"
