"""After commit, events leave the outbox: to webhook deliveries and websocket groups.

The business transaction only writes outbox rows. On commit, their ids go to a worker
(``events.dispatch``); if that hand-off is lost (broker down, worker killed), the sweep
finds events still undispatched a few seconds later. Dispatching twice is harmless:
deliveries are unique per event and endpoint.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from pms_backend.events.models import Event
from pms_backend.monitoring import redis_outage

logger = logging.getLogger(__name__)


def schedule_dispatch(event_id: int) -> None:
    """Queue ``event_id`` for dispatch when the current transaction commits.

    Events of one transaction travel in one task, in the order they were written. The
    id list rides on the on-commit hook itself, so a rollback discards both together.
    """
    for _savepoints, hook, _robust in reversed(connection.run_on_commit):
        ids = getattr(hook, "pms_event_ids", None)
        if ids is not None:
            ids.append(event_id)
            return
    ids = [event_id]

    def flush() -> None:
        enqueue_dispatch(ids)

    flush.pms_event_ids = ids
    transaction.on_commit(flush)


def enqueue_dispatch(event_ids: list[int]) -> None:
    from pms_backend.events.tasks import dispatch

    if not event_ids or redis_outage.paused():
        return  # the sweep dispatches them from the outbox
    try:
        dispatch.apply_async((event_ids,), retry=False)
    except Exception as exc:  # broker unreachable: the sweep dispatches from the outbox
        if redis_outage.unreachable(exc):
            redis_outage.report("broker", exc)
        else:
            logger.exception(
                "could not queue dispatch of %d event(s); the sweep will", len(event_ids)
            )


def dispatch_events(event_ids: list[int]) -> int:
    """Fan the given undispatched events out to webhooks and websockets; return how many."""
    from pms_backend.events.broadcast import broadcast
    from webhooks.services import deliveries_for_events, queue_batches

    with transaction.atomic():
        events = list(
            Event.objects.select_for_update(skip_locked=True)
            .filter(pk__in=event_ids, dispatched_at__isnull=True)
            .order_by("pk")
        )
        if not events:
            return 0
        batches = deliveries_for_events(events)
        Event.objects.filter(pk__in=[e.pk for e in events]).update(dispatched_at=timezone.now())
        # Live clients first: a websocket frame is the latency-sensitive path.
        transaction.on_commit(lambda: broadcast(events))
        transaction.on_commit(lambda: queue_batches(batches))
    return len(events)


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
                .filter(pk__gt=last, topic="orders", personal_ct="")
                .order_by("pk")[:batch_size]
            )
            if not batch:
                return sealed
            changed = [event for event in batch if event.seal_personal()]
            Event.objects.bulk_update(changed, ["data", "personal_ct"])
        sealed += len(changed)
        last = batch[-1].pk


def prune(*, batch_size: int = 2000) -> int:
    """Delete dispatched events past retention whose deliveries all succeeded (and seal
    any personal data still in clear)."""
    seal_personal_leftovers()
    from pms_backend.shopsettings.selectors import setting_get
    from webhooks.models import WebhookDelivery

    cutoff = timezone.now() - timedelta(days=setting_get("webhooks.event_retention_days"))
    removed = 0
    while True:
        ids = list(
            Event.objects.filter(dispatched_at__isnull=False, created_at__lt=cutoff)
            .exclude(
                pk__in=WebhookDelivery.objects.exclude(
                    status=WebhookDelivery.Status.SUCCEEDED
                ).values("event_id")
            )
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return removed
        with transaction.atomic():
            removed += Event.objects.filter(pk__in=ids).delete()[0]
