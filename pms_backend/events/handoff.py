"""Handing committed events to the relay: an ``events.dispatch`` task, unless one is
already queued and not yet started.

The business transaction only writes outbox rows. On commit, their ids go to a worker
(``events.dispatch``), which dispatches them and then every other event still waiting. A
commit that finds such a task queued (a flag in Redis, shared by every process, that the
task clears as it starts) leaves its events to it: under load one task carries the events
of many transactions, and a commit costs one Redis round trip instead of a broker message
(about 0.8 ms of CPU per order, bench/profile_orders.py). If a hand-off is lost (broker
down, worker killed), the next commit after ``QUEUED_FOR_SECONDS`` queues a task again, and
the relay's sweep finds events still undispatched a few seconds later.
"""

from __future__ import annotations

import logging
from functools import partial
from weakref import WeakKeyDictionary

from django.db import transaction

from pms_backend.events.tasks import QUEUED_KEY, dispatch
from pms_backend.monitoring import redis_outage
from pms_backend.outbound.coordination import shared
from pms_backend.plurals import counted

logger = logging.getLogger(__name__)

# Per database connection: ids of events written since its last commit hook ran.
_pending: WeakKeyDictionary = WeakKeyDictionary()
# How long the flag of a queued task (QUEUED_KEY) lives: a task lost after being queued
# holds commits back no longer than this; one waiting longer in a busy queue gets a twin
# (harmless: dispatching is idempotent, and the twin finds the events taken).
QUEUED_FOR_SECONDS = 5.0


def schedule_dispatch(event_ids: list[int]) -> None:
    """Queue ``event_ids`` for dispatch when the current transaction commits.

    Events of one transaction travel together, in the order they were written: each
    call adds an on-commit hook, and the first of them to run takes every id waiting
    (the others find none), to a task of their own or to one already queued. A hook
    dropped by a savepoint rollback drops nothing else; ids left by a rolled-back
    transaction ride along with the next commit's, where the relay finds no such events.
    """
    if not event_ids:
        return
    connection = transaction.get_connection()
    _pending.setdefault(connection, []).extend(event_ids)
    transaction.on_commit(partial(_flush, connection))


def _flush(connection) -> None:
    ids = _pending.pop(connection, None)
    if ids:
        enqueue_dispatch(ids)


def enqueue_dispatch(event_ids: list[int]) -> None:
    if not event_ids or redis_outage.paused():
        return  # the sweep dispatches them from the outbox
    try:
        if not shared.add_among_processes(QUEUED_KEY, "1", QUEUED_FOR_SECONDS):
            return  # a queued task takes these when it starts
        dispatch.apply_async((event_ids,), retry=False)
    except Exception as exc:  # broker unreachable: the sweep dispatches from the outbox
        shared.delete(QUEUED_KEY)
        if redis_outage.unreachable(exc):
            redis_outage.report("broker", exc)
        else:
            logger.exception(
                "could not queue dispatch of %s; the sweep will", counted(len(event_ids), "event")
            )
