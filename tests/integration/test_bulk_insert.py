"""bulk_insert_rows writes what bulk_create would: every column, defaults, keys."""

import uuid
from decimal import Decimal

import pytest
from django.db import transaction

from audit.models import AuditLog
from orders.models import Order
from pms_backend.bulk_insert import SMALL, bulk_insert_rows
from pms_backend.events.models import Event

pytestmark = pytest.mark.django_db


def test_rows_get_their_keys_in_order_and_every_column_lands():
    entries = [
        AuditLog(
            actor_type="system",
            actor_label=f"job:test {n}",
            action="test.inserted",
            object_type="tests.thing",
            object_id=str(n),
            changes={"n": {"before": None, "after": n}, "text": "ü \\ \" '"},
            ip="203.0.113.7" if n else None,
        )
        for n in range(3)
    ]

    with transaction.atomic():
        assert bulk_insert_rows(entries) is entries

    assert [e.pk for e in entries] == sorted(e.pk for e in entries)
    stored = AuditLog.objects.in_bulk([e.pk for e in entries])
    for n, entry in enumerate(entries):
        row = stored[entry.pk]
        assert (row.actor_label, row.object_id, row.changes, row.ip) == (
            f"job:test {n}",
            str(n),
            {"n": {"before": None, "after": n}, "text": "ü \\ \" '"},
            "203.0.113.7" if n else None,
        )
        assert row.created_at == entry.created_at is not None  # auto_now_add applied
        assert not entry._state.adding


def test_field_defaults_and_given_uuid_keys_are_written():
    events = [Event(type="stock.updated", topic="stock", data={"n": n}) for n in range(2)]
    order = Order(currency="EUR", total=Decimal("12.50"), customer_name="Ada")
    order_id = order.pk

    bulk_insert_rows(events)
    bulk_insert_rows([order])

    for event in events:
        assert Event.objects.get(pk=event.pk).event_id == event.event_id
        assert event.event_id.startswith("evt_")
    assert order.pk == order_id and isinstance(order_id, uuid.UUID)
    stored = Order.objects.get(pk=order_id)
    assert (stored.status, stored.total, stored.customer_name) == (
        "pending",
        Decimal("12.50"),
        "Ada",
    )


def test_many_rows_go_through_bulk_create_with_the_same_result():
    events = [Event(type="stock.updated", topic="stock", data={"n": n}) for n in range(SMALL + 1)]

    bulk_insert_rows(events)

    assert Event.objects.filter(pk__in=[e.pk for e in events]).count() == SMALL + 1
