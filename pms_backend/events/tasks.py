from celery import shared_task

from pms_backend.events import relay
from pms_backend.outbound.coordination import shared

# Set while an events.dispatch task is queued and not yet started: a commit that finds it
# leaves its events to that task (pms_backend/events/handoff.py).
QUEUED_KEY = "events:dispatch:queued"


@shared_task(name="events.dispatch", acks_late=True)
def dispatch(event_ids: list[int]) -> int:
    """Fan committed events out to webhook deliveries and websocket groups: every event
    waiting, oldest first, ``event_ids`` (the events of the commit that queued it) among
    them, and those of the commits that found this task queued and left theirs to it. One
    statement takes them all, as one took the given ids."""
    shared.delete(QUEUED_KEY)  # from now on, a commit queues a task of its own
    return relay.dispatch_waiting()


@shared_task(name="events.sweep")
def sweep() -> int:
    """Dispatch events a lost task or a broker outage left behind."""
    return relay.sweep()


@shared_task(name="events.prune")
def prune() -> int:
    """Delete old, fully delivered events (setting webhooks.event_retention_days)."""
    return relay.prune()
