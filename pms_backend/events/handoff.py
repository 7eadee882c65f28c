"""Handing committed events to the relay: one ``events.dispatch`` task per transaction.

The business transaction only writes outbox rows. On commit, their ids go to a worker
(``events.dispatch``); if that hand-off is lost (broker down, worker killed), the relay's
sweep finds events still undispatched a few seconds later.
"""

from __future__ import annotations

import logging
from functools import partial
from weakref import WeakKeyDictionary

from django.db import transaction

from pms_backend.events.tasks import dispatch
from pms_backend.monitoring import redis_outage
from pms_backend.plurals import counted

logger = logging.getLogger(__name__)

# Per database connection: ids of events written since its last commit hook ran.
_pending: WeakKeyDictionary = WeakKeyDictionary()


def schedule_dispatch(event_ids: list[int]) -> None:
    """Queue ``event_ids`` for dispatch when the current transaction commits.

    Events of one transaction travel in one task, in the order they were written: each
    call adds an on-commit hook, and the first of them to run takes every id waiting
    (the others find none). A hook dropped by a savepoint rollback drops nothing else;
    ids left by a rolled-back transaction ride along with the next commit's, where the
    relay finds no such events.
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
        dispatch.apply_async((event_ids,), retry=False)
    except Exception as exc:  # broker unreachable: the sweep dispatches from the outbox
        if redis_outage.unreachable(exc):
            redis_outage.report("broker", exc)
        else:
            logger.exception(
                "could not queue dispatch of %s; the sweep will", counted(len(event_ids), "event")
            )
