"""RFC 9457 problem details: the single place where errors become responses."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

from pms_backend.errors import DomainError

logger = logging.getLogger("pms.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://pms.example/problems/"

_DRF_CODES = {
    exceptions.ParseError: ("malformed_request", "Malformed request"),
    exceptions.AuthenticationFailed: ("authentication_failed", "Authentication failed"),
    exceptions.NotAuthenticated: ("not_authenticated", "Authentication required"),
    exceptions.PermissionDenied: ("permission_denied", "Permission denied"),
    exceptions.NotFound: ("not_found", "Not found"),
    exceptions.MethodNotAllowed: ("method_not_allowed", "Method not allowed"),
    exceptions.NotAcceptable: ("not_acceptable", "Not acceptable"),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", "Unsupported media type"),
    exceptions.Throttled: ("rate_limited", "Too many requests"),
    exceptions.ValidationError: ("validation_error", "Invalid input"),
}


def problem_body(
    *, status_code: int, code: str, title: str, detail: str, errors=None, **extra
) -> dict:
    body = {
        "type": PROBLEM_BASE + code.replace("_", "-"),
        "title": title,
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def _flatten_errors(data, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error structure into ``{"field.sub": [messages]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                # A nested object's or list's own error belongs to the field holding it.
                name = prefix or "non_field_errors"
            for k, v in _flatten_errors(value, name).items():
                flat.setdefault(k, []).extend(v)
    elif isinstance(data, list):
        if all(not isinstance(v, dict | list) for v in data):
            flat[prefix or "non_field_errors"] = [str(v) for v in data]
        else:
            for index, value in enumerate(data):
                for k, v in _flatten_errors(value, f"{prefix}[{index}]").items():
                    flat.setdefault(k, []).extend(v)
    else:
        flat[prefix or "non_field_errors"] = [str(data)]
    return flat


def domain_error_body(exc: DomainError) -> dict:
    """Return the problem+json body of a service's refusal."""
    return problem_body(
        status_code=exc.status,
        code=exc.code,
        title=exc.code.replace("_", " ").capitalize(),
        detail=exc.detail,
        errors=exc.errors,
        **exc.extra,
    )


def problem_response(body: dict, status_code: int, headers: dict | None = None) -> Response:
    response = Response(body, status=status_code, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def problem_exception_handler(exc, context) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every handled error leaves as problem+json."""
    headers = {}
    if isinstance(exc, DomainError):
        return problem_response(domain_error_body(exc), exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError):
        return _database_unavailable(exc)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django log it and answer 500 through handler500

    code, title = "error", "Error"
    for cls in type(exc).__mro__:
        if cls in _DRF_CODES:
            code, title = _DRF_CODES[cls]
            break
    errors = None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten_errors(exc.detail)
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())[:1000]
    else:
        detail = str(exc.detail)
        if isinstance(exc.detail, dict | list):
            detail = "; ".join(
                f"{k}: {' '.join(v)}" for k, v in _flatten_errors(exc.detail).items()
            )
    # Set by NotAuthenticated/AuthenticationFailed and by Throttled, when they have one.
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait is not None:
        headers["Retry-After"] = str(int(wait) + 1)
    body = problem_body(
        status_code=exc.status_code, code=code, title=title, detail=detail, errors=errors
    )
    return problem_response(body, exc.status_code, headers)


# Seconds a client is asked to wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER = 2


def _database_unavailable(exc: Exception) -> Response:
    """The database could not be reached (restart, failover) or gave up on the statement:
    nothing was done (the request's transaction rolled back), so the client may retry —
    with the same Idempotency-Key, which then makes the order exactly once."""
    logger.warning("database unavailable: %s: %s", type(exc).__name__, str(exc)[:300])
    body = problem_body(
        status_code=503,
        code="database_unavailable",
        title="Service unavailable",
        detail="The database is unavailable; nothing was done. Retry shortly.",
    )
    return problem_response(body, 503, {"Retry-After": str(DATABASE_RETRY_AFTER)})


def _plain_problem(status_code: int, code: str, title: str, detail: str) -> JsonResponse:
    return JsonResponse(
        problem_body(status_code=status_code, code=code, title=title, detail=detail),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler404(request: HttpRequest, exception=None):
    if _is_api(request):
        return _plain_problem(
            404,
            "not_found",
            "Not found",
            "No such resource. The endpoints are listed at /api/docs/ (schema: /api/schema/).",
        )
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request: HttpRequest):
    if _is_api(request):
        return _plain_problem(
            500, "server_error", "Server error", "The server failed; the failure was logged."
        )
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request: HttpRequest, exception=None):
    if _is_api(request):
        return _plain_problem(400, "bad_request", "Bad request", "The request was malformed.")
    from django.views.defaults import bad_request

    return bad_request(request, exception)
