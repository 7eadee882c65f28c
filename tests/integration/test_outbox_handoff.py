"""The outbox hands committed events to the relay: a transaction's events together, in
order, in a task of their own or in one already queued and not yet started."""

from __future__ import annotations

import time
from weakref import WeakKeyDictionary

import pytest
from django.db import transaction

from pms_backend.events import handoff, relay, tasks
from pms_backend.events.models import Event
from pms_backend.events.services import publish, publish_many
from pms_backend.outbound.coordination import shared

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """The id lists handed to ``events.dispatch``, one per task; each task "starts" at once
    (clears the queued flag) unless ``queued.workers_busy`` is set."""

    class Calls(list):
        workers_busy = False

    calls = Calls()

    def apply_async(args, **_):
        calls.append(args[0])
        if not calls.workers_busy:
            shared.delete(tasks.QUEUED_KEY)

    shared.delete(tasks.QUEUED_KEY)
    monkeypatch.setattr(handoff, "_pending", WeakKeyDictionary())
    monkeypatch.setattr(handoff.dispatch, "apply_async", apply_async)
    yield calls
    shared.delete(tasks.QUEUED_KEY)


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


def _commit(*numbers: int, hooks) -> list[int]:
    with hooks(execute=True), transaction.atomic():
        return [publish(*_event(n)[:2], subject=f"product:{n}").pk for n in numbers]


def test_commits_while_a_task_waits_leave_their_events_to_it(
    queued, django_capture_on_commit_callbacks
):
    queued.workers_busy = True  # the first task waits in the queue
    first = _commit(1, hooks=django_capture_on_commit_callbacks)
    second = _commit(2, 3, hooks=django_capture_on_commit_callbacks)
    third = _commit(4, hooks=django_capture_on_commit_callbacks)
    assert queued == [first]  # one broker message for three commits

    # The task starts: it dispatches its own events and those left to it, in order.
    assert tasks.dispatch.run(first) == 4
    taken = Event.objects.filter(pk__in=first + second + third, dispatched_at__isnull=False)
    assert taken.count() == 4

    # Started, it no longer stands for later commits: the next one queues a task.
    fourth = _commit(5, hooks=django_capture_on_commit_callbacks)
    assert queued == [first, fourth]


def test_a_lost_task_holds_commits_back_only_for_a_few_seconds(
    queued, monkeypatch, django_capture_on_commit_callbacks
):
    # The second commit has to come while the flag lives: 0.2 s was within reach of a
    # busy machine's pause between two commits (CI once took 1.2 s for five calls).
    monkeypatch.setattr(handoff, "QUEUED_FOR_SECONDS", 3.0)
    queued.workers_busy = True  # its task is never started (a worker killed, say)
    first = _commit(1, hooks=django_capture_on_commit_callbacks)
    assert len(queued) == 1
    _commit(2, hooks=django_capture_on_commit_callbacks)
    assert len(queued) == 1
    # The flag expires by itself (waited for, not slept through: returns as it goes).
    deadline = time.monotonic() + 60
    while shared.get(tasks.QUEUED_KEY) is not None:
        assert time.monotonic() < deadline, "the queued flag never expired"
        time.sleep(0.05)

    later = _commit(3, hooks=django_capture_on_commit_callbacks)
    assert queued == [first, later]
    # That task takes what the lost one held too.
    assert tasks.dispatch.run(later) == 3


def test_a_broker_that_refuses_leaves_no_flag_behind(
    queued, monkeypatch, django_capture_on_commit_callbacks
):
    def refused(args, **_):
        raise OSError("broker refused the connection")

    monkeypatch.setattr(handoff.dispatch, "apply_async", refused)
    _commit(1, hooks=django_capture_on_commit_callbacks)  # logged; the sweep will

    sent: list[list[int]] = []
    monkeypatch.setattr(handoff.dispatch, "apply_async", lambda args, **_: sent.append(args[0]))
    second = _commit(2, hooks=django_capture_on_commit_callbacks)
    assert sent == [second]  # queued at once, not held back by the failed attempt


def test_a_task_takes_at_most_its_batches_of_waiting_events(queued):
    # Events no commit handed over: one task takes them oldest first, a bounded number of
    # batches; the next task or the sweep takes the rest.
    with transaction.atomic():
        publish_many([_event(n) for n in range(7)])
    assert relay.dispatch_waiting(batch_size=2) == 7  # the last batch was not full

    with transaction.atomic():
        publish_many([_event(n) for n in range(30)])
    ids = list(Event.objects.filter(dispatched_at__isnull=True).values_list("pk", flat=True))
    taken = relay.dispatch_waiting(batch_size=2)
    assert taken == 2 * relay.WAITING_BATCHES < 30
    left = Event.objects.filter(dispatched_at__isnull=True).order_by("pk")
    assert list(left.values_list("pk", flat=True)) == ids[taken:]
