"""Liveness and readiness probes, and the Prometheus scrape endpoint."""

import hmac
import ipaddress
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from pms_backend.api.problems import PROBLEM_CONTENT_TYPE, problem_body
from pms_backend.celery import app as celery_app
from pms_backend.monitoring import metrics as prometheus


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
    checks: dict[str, dict[str, Any]] = {}
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
    failures = [name for name, check in checks.items() if check["status"] != "ok"]
    body: dict[str, Any] = {
        "status": "ok" if healthy else "unavailable",
        "checks": checks,
        "backends": backends,
    }
    if failures:
        body["failures"] = failures
    return JsonResponse(body, status=200 if healthy else 503)


def _scraper_allowed(request: HttpRequest) -> bool:
    """A bearer token (``PMS_METRICS_TOKEN``) or an address in ``PMS_METRICS_ALLOWED_NETWORKS``."""
    token = settings.PMS_METRICS_TOKEN
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer":
        return hmac.compare_digest(presented.strip().encode(), token.encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in settings.PMS_METRICS_ALLOWED_NETWORKS)


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Serve every metric in the Prometheus text format to allowed scrapers only."""
    if not _scraper_allowed(request):
        status = 401 if settings.PMS_METRICS_TOKEN else 403
        response = JsonResponse(
            problem_body(
                status_code=status,
                code="metrics_forbidden",
                title="Not allowed to scrape",
                detail="Send Authorization: Bearer <PMS_METRICS_TOKEN>, or scrape from an "
                "address in PMS_METRICS_ALLOWED_NETWORKS.",
            ),
            status=status,
            content_type=PROBLEM_CONTENT_TYPE,
        )
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(prometheus.render(), content_type=prometheus.CONTENT_TYPE)
