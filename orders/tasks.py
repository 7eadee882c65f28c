import logging

from celery import shared_task

from audit.actors import Actor
from orders.services import order_expire_reservations
from pms_backend.plurals import counted

logger = logging.getLogger(__name__)


@shared_task(name="orders.expire_reservations")
def expire_reservations() -> int:
    """Cancel Pending orders whose reservation ran out (the seed's inventory cleanup job)."""
    expired = order_expire_reservations(actor=Actor.system("cleanup_inventory"))
    if expired:
        logger.info(
            "cancelled %s, %s stock released",
            counted(expired, "expired order"),
            "its" if expired == 1 else "their",
        )
    return expired
