"""The line a serving process logs when it starts: which backends it uses."""

from __future__ import annotations

import logging

from django.conf import settings

logger = logging.getLogger("pms")

_logged = False


def log_backends() -> None:
    """Log the database, cache, broker and channel layer in use, once per process.

    Called by the web entry points (``wsgi.py``, ``asgi.py``) and a Celery worker's start,
    not by every ``manage.py`` command: ``dev.sh`` alone runs four of those before the
    server, and the line is worth reading once.
    """
    global _logged
    if _logged:
        return
    _logged = True
    layer = str(settings.CHANNEL_LAYERS["default"]["BACKEND"]).rsplit(".", 1)[-1]
    broker = "redis" if settings.REDIS_URL else "filesystem"
    logger.info(
        "backends: database=%s cache=%s broker=%s channel_layer=%s debug=%s",
        settings.DATABASE_BACKEND,
        settings.CACHE_BACKEND_NAME,
        broker,
        layer,
        settings.DEBUG,
    )
