"""The outbox hands committed events to the relay: one task per transaction, in order."""

from __future__ import annotations

from weakref import WeakKeyDictionary

import pytest
from django.db import transaction

from pms_backend.events import handoff
from pms_backend.events.models import Event
from pms_backend.events.services import publish, publish_many

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """The id lists handed to ``events.dispatch``, one per task."""
    calls: list[list[int]] = []
    monkeypatch.setattr(handoff, "_pending", WeakKeyDictionary())
    monkeypatch.setattr(handoff.dispatch, "apply_async", lambda args, **_: calls.append(args[0]))
    return calls


def _event(n: int) -> tuple[str, dict, str]:
    return ("stock.updated", {"product": n, "on_hand": n}, f"product:{n}")


def test_events_of_one_transaction_travel_in_one_task_in_order(
    queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        first = publish(*_event(1)[:2], subject="product:1")
        publish_many([_event(2), _event(3)])
        last = publish(*_event(4)[:2], subject="product:4")

    ids = list(Event.objects.filter(pk__gte=first.pk, pk__lte=last.pk).values_list("pk", flat=True))
    assert queued == [ids] and len(ids) == 4


def test_a_rolled_back_savepoint_takes_only_its_own_events(
    queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        try:
            with transaction.atomic():
                publish(*_event(1)[:2])
                raise RuntimeError("refused")
        except RuntimeError:
            pass
        kept = publish(*_event(2)[:2])

    assert len(queued) == 1 and queued[0][-1] == kept.pk
    assert Event.objects.filter(pk__in=queued[0]).count() == 1


def test_nothing_is_queued_before_commit(queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as hooks, transaction.atomic():
        publish(*_event(1)[:2])
    assert queued == [] and hooks
