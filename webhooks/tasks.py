from celery import shared_task

from webhooks import services


@shared_task(name="webhooks.deliver", acks_late=True)
def deliver(delivery_id: int) -> str:
    """Send one delivery if it is due (safe to run twice: the row is leased). Kept for
    tasks queued before batches existed."""
    return services.delivery_attempt(delivery_id)


@shared_task(name=services.DELIVER_BATCH_TASK, acks_late=True)
def deliver_batch(delivery_ids: list[int], endpoint_id: str | None = None) -> dict[str, str]:
    """Send one endpoint's due deliveries in event order, over one connection (those of
    ``delivery_ids`` only, for tasks queued without ``endpoint_id``)."""
    outcome = services.deliver_batch(delivery_ids, endpoint_id=endpoint_id)
    return {str(k): v for k, v in outcome.items()}


@shared_task(name="webhooks.deliver_due")
def deliver_due() -> int:
    """Queue every delivery whose next attempt is due (retries, waits, lost tasks)."""
    ids = services.due_deliveries()
    services.enqueue_deliveries(ids)
    return len(ids)
