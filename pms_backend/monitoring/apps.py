import atexit

from celery import signals as celery_signals
from django.apps import AppConfig
from django.conf import settings


class MonitoringConfig(AppConfig):
    name = "pms_backend.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        # Importing task_metrics connects its Celery signal receivers.
        from pms_backend.monitoring import metrics, task_metrics

        if metrics.multiprocess_dir():
            atexit.register(metrics.mark_this_process_dead)
        if settings.LOGGING["handlers"]["stderr"]["formatter"] == "json":
            # A worker would otherwise replace the JSON handler with Celery's plain one.
            celery_signals.setup_logging.connect(task_metrics.keep_json_logs, weak=False)
