from enum import StrEnum


class InventoryErrorCode(StrEnum):
    INSUFFICIENT_STOCK = "insufficient_stock"
    INVALID_MOVEMENT = "invalid_movement"
    UNKNOWN_PRODUCT = "unknown_product"
    STOCK_LIMIT = "stock_limit_exceeded"
