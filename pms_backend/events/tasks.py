from celery import shared_task

from pms_backend.events import relay


@shared_task(name="events.dispatch", acks_late=True)
def dispatch(event_ids: list[int]) -> int:
    """Fan committed events out to webhook deliveries and websocket groups."""
    return relay.dispatch_events(event_ids)


@shared_task(name="events.sweep")
def sweep() -> int:
    """Dispatch events a lost task or a broker outage left behind."""
    return relay.sweep()


@shared_task(name="events.prune")
def prune() -> int:
    """Delete old, fully delivered events (setting webhooks.event_retention_days)."""
    return relay.prune()
