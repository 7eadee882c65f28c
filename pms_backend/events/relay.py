"""After commit, events leave the outbox: to the relay's subscribers (webhook deliveries)
and websocket groups.

The business transaction only writes outbox rows; on commit a task is queued (``handoff``)
unless one is queued and not yet started, and the task takes every event waiting, oldest
first (:func:`dispatch_waiting`); if that hand-off is lost (broker down, worker killed),
:func:`sweep` finds events still undispatched a few seconds later.
Dispatching twice is harmless: subscribers record what they owe an event once (webhook
deliveries are unique per event and endpoint).
"""

from __future__ import annotations

import functools
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from pms_backend import raw_rows
from pms_backend.events import registry
from pms_backend.events.broadcast import broadcast
from pms_backend.events.models import Event
from pms_backend.shopsettings.selectors import setting_get

# A dispatch task takes at most this many batches of waiting events: under a steady load
# the commits meanwhile queue tasks of their own (other worker processes share the work),
# and the sweep finds anything left.
WAITING_BATCHES = 10


def dispatch_events(event_ids: list[int]) -> int:
    """Fan the given undispatched events out to subscribers and websockets; return how
    many."""
    with transaction.atomic():
        return _fan_out(_take(event_ids, timezone.now()))


def dispatch_waiting(*, batch_size: int = 500) -> int:
    """Fan out every event still waiting that no other dispatcher holds, oldest first (the
    queuing commit's, and those of commits that left theirs to an already queued task), at
    most ``WAITING_BATCHES`` batches; return how many."""
    total = 0
    for _ in range(WAITING_BATCHES):
        with transaction.atomic():
            done = _fan_out(_take_waiting(batch_size, timezone.now()))
        total += done
        if done < batch_size:
            break
    return total


def _fan_out(events: list[Event]) -> int:
    """Hand ``events`` (taken in the caller's transaction) to subscribers and websockets
    when it commits; return how many."""
    if not events:
        return 0
    after_commit = [subscriber.take(events) for subscriber in registry.subscribers()]
    # Live clients first: a websocket frame is the latency-sensitive path.
    transaction.on_commit(lambda: broadcast(events))
    for action in after_commit:
        transaction.on_commit(action)
    return len(events)


def _take(event_ids: list[int], now) -> list[Event]:
    """Mark the given events that are not dispatched and that no other dispatcher holds as
    dispatched at ``now`` (in the caller's transaction); return them in order."""
    if connection.vendor != "postgresql":
        events = list(
            Event.objects.select_for_update(skip_locked=True)
            .filter(pk__in=event_ids, dispatched_at__isnull=True)
            .order_by("pk")
        )
        Event.objects.filter(pk__in=[e.pk for e in events]).update(dispatched_at=now)
        return events
    with connection.cursor() as cursor:
        cursor.execute(_take_sql(), [now, event_ids])
        rows = cursor.fetchall()
    return sorted((raw_rows.build(Event, row) for row in rows), key=lambda event: event.pk)


def _take_waiting(limit: int, now) -> list[Event]:
    """``_take`` of the oldest ``limit`` undispatched events, whichever they are."""
    if connection.vendor != "postgresql":
        ids = (
            Event.objects.filter(dispatched_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        return _take(list(ids), now)
    with connection.cursor() as cursor:
        cursor.execute(_take_sql(waiting=True), [now, limit])
        rows = cursor.fetchall()
    return sorted((raw_rows.build(Event, row) for row in rows), key=lambda event: event.pk)


@functools.cache
def _take_sql(*, waiting: bool = False) -> str:
    # Written out: one statement (lock and mark) instead of two querysets, whose compiling
    # cost the worker more CPU than running them (bench/webhook_worker_cpu.py). The events
    # asked for by id, or (``waiting``) the oldest undispatched ones up to a LIMIT, through
    # the partial index of undispatched events.
    table, c = raw_rows.quoted(Event)
    which = "" if waiting else f"{c['id']} = ANY(%s) AND "
    limit = " LIMIT %s" if waiting else ""
    return (
        f"UPDATE {table} SET {c['dispatched_at']} = %s WHERE {c['id']} IN "  # noqa: S608 -- model names
        f"(SELECT {c['id']} FROM {table} WHERE {which}"
        f"{c['dispatched_at']} IS NULL ORDER BY {c['id']}{limit} FOR UPDATE SKIP LOCKED) "
        f"RETURNING {raw_rows.select_list(Event, table)}"
    )


def sweep(*, batch_size: int = 500) -> int:
    """Dispatch events that stayed undispatched too long (a lost task, a broker outage)."""
    cutoff = timezone.now() - timedelta(seconds=settings.PMS_OUTBOX_SWEEP_AFTER_SECONDS)
    total = 0
    while True:
        ids = list(
            Event.objects.filter(dispatched_at__isnull=True, created_at__lte=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return total
        done = dispatch_events(ids)
        total += done
        if done == 0:
            return total  # all locked by a dispatcher already at work


def seal_personal_leftovers(*, batch_size: int = 500) -> int:
    """Encrypt personal data that events hold in clear (written by the previous release
    during a rolling deploy); return how many events were sealed."""
    sealed, last = 0, 0
    while True:
        with transaction.atomic():
            batch = list(
                Event.objects.select_for_update(skip_locked=True)
                .filter(pk__gt=last, topic__in=registry.personal_topics(), personal_ct="")
                .order_by("pk")[:batch_size]
            )
            if not batch:
                return sealed
            changed = [event for event in batch if event.seal_personal()]
            Event.objects.bulk_update(changed, ["data", "personal_ct"])
        sealed += len(changed)
        last = batch[-1].pk


def prune(*, batch_size: int = 2000) -> int:
    """Delete dispatched events past retention that no subscriber still holds (webhook
    deliveries not yet succeeded), and seal any personal data still in clear."""
    seal_personal_leftovers()
    cutoff = timezone.now() - timedelta(days=setting_get("webhooks.event_retention_days"))
    expired = Event.objects.filter(dispatched_at__isnull=False, created_at__lt=cutoff)
    for subscriber in registry.subscribers():
        if subscriber.holds is not None:
            expired = expired.exclude(pk__in=subscriber.holds())
    removed = 0
    while True:
        ids = list(expired.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return removed
        with transaction.atomic():
            removed += Event.objects.filter(pk__in=ids).delete()[0]
