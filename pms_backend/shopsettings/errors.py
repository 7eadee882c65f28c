from enum import StrEnum


class SettingErrorCode(StrEnum):
    UNKNOWN_SETTING = "unknown_setting"
    INVALID_VALUE = "invalid_setting_value"
    # A scope's own codes: setting_not_<scope>_scoped, and its Scope.unknown_code.
