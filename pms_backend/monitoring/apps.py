import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("pms")


class MonitoringConfig(AppConfig):
    name = "pms_backend.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
        broker = "redis" if settings.REDIS_URL else "filesystem"
        logger.info(
            "backends: database=%s cache=%s broker=%s channel_layer=%s debug=%s",
            settings.DATABASE_BACKEND,
            settings.CACHE_BACKEND_NAME,
            broker,
            layer,
            settings.DEBUG,
        )
