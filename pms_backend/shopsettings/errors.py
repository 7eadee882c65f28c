from enum import StrEnum


class SettingErrorCode(StrEnum):
    UNKNOWN_SETTING = "unknown_setting"
    INVALID_VALUE = "invalid_setting_value"
    NOT_PRODUCT_SCOPED = "setting_not_product_scoped"
    UNKNOWN_PRODUCT = "unknown_product"
