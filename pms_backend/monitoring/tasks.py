from celery import shared_task

from pms_backend.monitoring.services import metrics_collect


@shared_task(name="monitoring.collect_metrics")
def collect_metrics() -> int:
    """Snapshot the shop's metrics for the current and previous hour and day (hourly)."""
    return metrics_collect().rows
