"""The outbox: events are rows written in the caller's transaction."""

from __future__ import annotations

from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from pms_backend.bulk_insert import bulk_insert_rows
from pms_backend.events.handoff import schedule_dispatch
from pms_backend.events.models import Event
from pms_backend.events.registry import EVENT_TOPICS
from pms_backend.monitoring.request_context import current_request_id
from pms_backend.plurals import noun

__all__ = ["EVENT_TOPICS", "publish", "publish_many"]


def publish(type: str, data: dict[str, Any], *, subject: str = "") -> Event:
    """Write one outbox event in the caller's transaction and return it.

    Raise ``ValueError`` for a type no app registered (see ``registry``), and ``RuntimeError``
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
    schedule_dispatch([event.pk])
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
        raise ValueError(f"unknown {noun(unknown, 'event type')} {sorted(unknown)!r}")
    encoder = DjangoJSONEncoder()
    request_id = current_request_id()
    for start in range(0, len(events), 1000):
        rows = bulk_insert_rows(
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
        schedule_dispatch([event.pk for event in rows])
    return len(events)
