from celery import shared_task

from webhooks.services import delivery_attempt, due_deliveries, enqueue_deliveries


@shared_task(name="webhooks.deliver", acks_late=True)
def deliver(delivery_id: int) -> str:
    """Send one delivery if it is due (safe to run twice: the row is leased)."""
    return delivery_attempt(delivery_id)


@shared_task(name="webhooks.deliver_due")
def deliver_due() -> int:
    """Queue every delivery whose next attempt is due (retries, waits, lost tasks)."""
    ids = due_deliveries()
    enqueue_deliveries(ids)
    return len(ids)
