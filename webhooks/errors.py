from enum import StrEnum


class WebhookErrorCode(StrEnum):
    INVALID_URL = "invalid_webhook_url"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    ENDPOINT_NOT_FOUND = "endpoint_not_found"
    SCOPE_FOR_EVENT_TYPE_MISSING = "scope_for_event_type_missing"
