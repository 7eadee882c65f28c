from enum import StrEnum


class MonitoringErrorCode(StrEnum):
    INVALID_TIME_RANGE = "invalid_time_range"
