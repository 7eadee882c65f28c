import logging

from celery import shared_task

from inventory.integrity import inventory_drift

logger = logging.getLogger(__name__)


@shared_task(name="inventory.check_integrity")
def check_integrity() -> int:
    """Compare stock with its ledger and open orders; log every drift as an error."""
    drift = inventory_drift()
    for item in drift:
        logger.error("inventory drift: %s", item)
    if not drift:
        logger.info("inventory integrity: stock, ledger and open orders agree")
    return len(drift)
