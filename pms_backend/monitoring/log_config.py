"""The ``LOGGING`` setting: JSON lines in production, plain text in development.

Imported by ``settings.py``, so it imports nothing from Django.
"""

from __future__ import annotations

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(request_id)s"


def logging_config(*, json_lines: bool, level: str) -> dict:
    """Return a ``dictConfig`` dictionary writing to stderr, every line with its request id."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "pms_backend.monitoring.request_context.RequestIdLogFilter"},
            "redis_outage": {"()": "pms_backend.monitoring.redis_outage.IgnoredRedisErrorFilter"},
        },
        "formatters": {
            "plain": {"format": PLAIN_FORMAT},
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": JSON_FIELDS,
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": True,  # ISO 8601, UTC
            },
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json" if json_lines else "plain",
                "filters": ["request_id"],
            },
        },
        # Upper-cased: scripts/worker.sh hands the same value to Celery, which takes "info".
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            # Django's own defaults give "django" a console handler (in debug) on top of
            # propagating to the root: every request warning was written twice. Named
            # here, the loggers lose those handlers and write through the root only.
            "django": {"level": level.upper(), "handlers": [], "propagate": True},
            "django.server": {"level": "WARNING", "handlers": [], "propagate": True},
            "django_redis": {"level": "ERROR"},
            # A cache call that failed for want of Redis: one outage line a minute instead
            # of a traceback per call.
            "django_redis.cache": {"level": "ERROR", "filters": ["redis_outage"]},
            # A line per outgoing request: webhook attempts are recorded in the database.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }
