"""Give every request an id (the caller's ``X-Request-ID`` if sane, else a new one) and
count and time it for ``/metrics``."""

import re
import time
import uuid

from django.http import HttpRequest, HttpResponse
from django.utils.log import log_response

from pms_backend.monitoring import metrics
from pms_backend.monitoring.request_context import bind_request_id, unbind_request_id

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        # Views and problem+json bodies read it from the request (an attribute of ours).
        request.request_id = request_id  # type: ignore[attr-defined]
        # Log lines and outbox events written while serving this request carry its id.
        token = bind_request_id(request_id)
        try:
            response = self.get_response(request)
            if response.status_code >= 400:
                # Django logs 4xx/5xx after the last middleware has returned, where the id
                # is gone; log it here, as Django would, and Django will not log it again.
                log_response(
                    "%s: %s",
                    response.reason_phrase,
                    request.path,
                    response=response,
                    request=request,
                )
        finally:
            unbind_request_id(token)
        response["X-Request-ID"] = request_id
        return response


class RequestMetricsMiddleware:
    """Count requests and observe their latency per endpoint (the resolved route's name,
    never the raw path: one series per view, whatever ids the paths hold)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.observe_request(
            method=request.method or "",
            endpoint=endpoint_name(request),
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response


def endpoint_name(request: HttpRequest) -> str:
    """Return the URL name of the view that served ``request`` (its route if unnamed)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unmatched>"
    return match.view_name or match.route or "<unnamed>"
