from celery import shared_task

from audit.chain import audit_seal


@shared_task(name="audit.seal")
def seal() -> int:
    """Seal settled audit entries onto the hash chain."""
    return audit_seal()
