import logging

from celery import shared_task

from audit.actors import Actor
from orders.services import order_expire_reservations

logger = logging.getLogger(__name__)


@shared_task(name="orders.expire_reservations")
def expire_reservations() -> int:
    """Cancel Pending orders whose reservation ran out (the seed's inventory cleanup job)."""
    expired = order_expire_reservations(actor=Actor.system("cleanup_inventory"))
    if expired:
        logger.info("cancelled %d expired order(s), their stock released", expired)
    return expired
