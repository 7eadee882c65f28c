"""The outbox: events are rows written in the caller's transaction."""

from __future__ import annotations

from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from pms_backend.apikeys import scopes
from pms_backend.events.models import Event
from pms_backend.events.relay import schedule_dispatch
from pms_backend.monitoring.request_context import current_request_id

EVENT_TOPICS = {
    "product.created": "products",
    "product.updated": "products",
    "product.published": "products",
    "product.unpublished": "products",
    "product.archived": "products",
    "product.restored": "products",
    "category.updated": "products",
    "stock.updated": "stock",
    "stock.low": "stock",
    "order.created": "orders",
    "order.status_changed": "orders",
    # Sensitive values arrive masked. Webhooks only: websockets offer no "settings" topic.
    "settings.updated": "settings",
    # The audit chain's anchor (count and head) after each seal: keep it outside.
    "audit.sealed": "audit",
}
# Sent to a webhook endpoint only when it names them: an endpoint taking "every event"
# (no event_types) is a shop's receiver, not an operator's anchor store.
OPT_IN_EVENT_TYPES = frozenset({"audit.sealed"})

# The scope that reads each topic's data. A webhook endpoint is subscribed to a topic only
# by credentials holding it: an endpoint receives the data whoever subscribed it could read.
TOPIC_READ_SCOPES = {
    "products": scopes.CATALOG_READ,
    "stock": scopes.INVENTORY_READ,
    "orders": scopes.ORDERS_READ,
    "settings": scopes.SETTINGS_MANAGE,
    "audit": scopes.AUDIT_READ,
}


def event_type_read_scopes(event_types: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Return ``{event type: the scope that reads it}`` for ``event_types``; an empty list
    means every event type (an endpoint without event types receives them all)."""
    # "Every event" leaves out the opt-in types: their scopes are not needed for it.
    wanted = event_types or [t for t in EVENT_TOPICS if t not in OPT_IN_EVENT_TYPES]
    return {t: TOPIC_READ_SCOPES[EVENT_TOPICS[t]] for t in wanted}


def publish(type: str, data: dict[str, Any], *, subject: str = "") -> Event:
    """Write one outbox event in the caller's transaction and return it.

    Raise ``ValueError`` for a type CONTRACT.md does not name, and ``RuntimeError``
    outside a transaction: an event must commit with its change or not at all.
    """
    if type not in EVENT_TOPICS:
        raise ValueError(f"unknown event type {type!r}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("publish must run inside the business transaction")
    # Round-trip through Django's encoder so Decimals and datetimes land as the API shows them.
    encoder = DjangoJSONEncoder()
    payload = _json_ready(data, encoder)
    event = Event.build(
        type=type,
        topic=EVENT_TOPICS[type],
        subject=subject,
        data=payload,
        request_id=current_request_id(),
    )
    event.save(force_insert=True)
    schedule_dispatch(event.pk)
    return event


def _json_ready(value: Any, encoder: DjangoJSONEncoder) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v, encoder) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v, encoder) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return encoder.default(value)


def publish_many(events: list[tuple[str, dict[str, Any], str]]) -> int:
    """Write ``(type, data, subject)`` events in the caller's transaction; return how many.

    The same rows ``publish`` writes, inserted in batches: for bulk work (imports) where
    one insert per event would cost a query per row. Dispatch still happens after commit.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("publish_many must run inside the business transaction")
    unknown = {type for type, _data, _subject in events} - set(EVENT_TOPICS)
    if unknown:
        raise ValueError(f"unknown event type(s) {sorted(unknown)!r}")
    encoder = DjangoJSONEncoder()
    request_id = current_request_id()
    for start in range(0, len(events), 1000):
        rows = Event.objects.bulk_create(
            [
                Event.build(
                    type=type,
                    topic=EVENT_TOPICS[type],
                    subject=subject,
                    data=_json_ready(data, encoder),
                    request_id=request_id,
                )
                for type, data, subject in events[start : start + 1000]
            ]
        )
        for event in rows:
            schedule_dispatch(event.pk)
    return len(events)
