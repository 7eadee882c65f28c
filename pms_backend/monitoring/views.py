"""Liveness and readiness probes."""

import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from pms_backend.celery import app as celery_app


@require_GET
@never_cache
def live(request: HttpRequest) -> JsonResponse:
    """Answer 200 while the process can serve requests at all."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    # django-redis swallows outages (IGNORE_EXCEPTIONS); a round trip tells the truth.
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")
    cache.delete(key)


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@require_GET
@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the database, cache and broker all answer; 503 naming the failures."""
    checks = {}
    healthy = True
    for name, check in (
        ("database", _check_database),
        ("cache", _check_cache),
        ("broker", _check_broker),
    ):
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:
            healthy = False
            checks[name] = {"status": "error", "error": type(exc).__name__}
        else:
            checks[name] = {"status": "ok"}
        checks[name]["ms"] = round((time.perf_counter() - started) * 1000, 2)
    backends = {
        "database": settings.DATABASE_BACKEND,
        "cache": settings.CACHE_BACKEND_NAME,
        "broker": "redis" if settings.REDIS_URL else "filesystem",
    }
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks, "backends": backends},
        status=200 if healthy else 503,
    )
