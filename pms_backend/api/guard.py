"""What every API request passes before DRF sees it: a body-size cap and the per-IP
rate limit; and what every API response carries out: the RateLimit-* headers.

A request presenting an API key has its per-IP window counted by key authentication
instead, in the same round trip to Redis as the failed-authentication gate and the key's
own windows; the guard counts it afterwards only if no key authentication ran."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import is_valid_path

from pms_backend.api import ratelimit
from pms_backend.api.problems import PROBLEM_CONTENT_TYPE, problem_body
from pms_backend.plurals import counted


def client_ip(request: HttpRequest) -> str:
    """Return the peer address. Forwarded headers count only when the ASGI server was told
    to trust the proxy (FORWARDED_ALLOW_IPS), which then rewrites REMOTE_ADDR itself."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def presents_api_key(request: HttpRequest) -> bool:
    """Whether the request carries an API key for ApiKeyAuthentication to check."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "api-key" and bool(value.strip())
    return bool(request.META.get("HTTP_X_API_KEY", "").strip())


def record_verdict(request: HttpRequest, verdict: ratelimit.Verdict) -> None:
    """Keep the most constraining verdict for this request's RateLimit-* headers."""
    current = getattr(request, "pms_ratelimit", None)
    request.pms_ratelimit = (  # type: ignore[attr-defined]  # the guard's own mark
        verdict if current is None else ratelimit.most_constraining([current, verdict])
    )


def address_refusal_detail(verdict: ratelimit.Verdict) -> str:
    requests = counted(verdict.limit, "request")
    return f"More than {requests} from this address; retry in {verdict.reset} s."


def _problem(status: int, code: str, title: str, detail: str, **headers) -> JsonResponse:
    response = JsonResponse(
        problem_body(status_code=status, code=code, title=title, detail=detail),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


class ApiGuardMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        response = (
            self._refuse(request) or self._missing_slash(request) or self.get_response(request)
        )
        if getattr(request, "pms_ip_pending", False):
            # A key was presented but no key authentication counted the address (a view
            # without it, a malformed header, a 404): count it now.
            response = self._count_ip(request) or response
        verdict = getattr(request, "pms_ratelimit", None)
        if verdict is not None:
            response["RateLimit-Limit"] = str(verdict.limit)
            response["RateLimit-Remaining"] = str(max(verdict.remaining, 0))
            response["RateLimit-Reset"] = str(verdict.reset)
        return response

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            try:
                request.body  # noqa: B018 -- reading enforces DATA_UPLOAD_MAX_MEMORY_SIZE
            except RequestDataTooBig:
                return _problem(
                    413,
                    "payload_too_large",
                    "Payload too large",
                    f"The request body exceeds {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
                )
        if not settings.PMS_RATE_LIMITS_ENABLED:
            return None
        if presents_api_key(request):
            # ApiKeyAuthentication counts it, see above.
            request.pms_ip_pending = True  # type: ignore[attr-defined]
            return None
        return self._count_ip(request)

    @staticmethod
    def _missing_slash(request: HttpRequest) -> HttpResponse | None:
        """A 404 naming the right path for an API path missing its final slash.

        Django's APPEND_SLASH would answer a redirect instead: one that turns a POST into a
        GET (and, with DEBUG on, a 500), neither of which an API client should act on.
        """
        path = request.path_info
        if path.endswith("/") or is_valid_path(path) or not is_valid_path(f"{path}/"):
            return None
        return _problem(
            404,
            "not_found",
            "Not found",
            f"No such resource: API paths end with a slash ({request.path}/).",
        )

    def _count_ip(self, request: HttpRequest) -> HttpResponse | None:
        request.pms_ip_pending = False  # type: ignore[attr-defined]
        (verdict,) = ratelimit.hit([("ip", client_ip(request), ratelimit.rate("ip"))])
        record_verdict(request, verdict)
        if not verdict.allowed:
            return _problem(
                429,
                "rate_limited",
                "Too many requests",
                address_refusal_detail(verdict),
                Retry_After=str(verdict.reset),
            )
        return None
