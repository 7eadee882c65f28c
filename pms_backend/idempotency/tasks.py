from celery import shared_task

from pms_backend.idempotency.services import idempotency_prune


@shared_task(name="idempotency.prune")
def prune() -> int:
    """Delete expired idempotency keys."""
    return idempotency_prune()
