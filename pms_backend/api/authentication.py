"""How API requests prove who they are: an API key, or a staff member's admin session."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from audit.actors import Actor
from audit.services import audit_record
from pms_backend.api import ratelimit
from pms_backend.api.guard import client_ip
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.selectors import api_key_authenticate, api_key_parse_prefix


class ApiKeyPrincipal(AnonymousUser):
    """``request.user`` for key-authenticated requests: authenticated, never staff."""

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    @property
    def is_authenticated(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"api_key:{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Api-Key <key>`` or ``X-API-Key: <key>``."""

    keyword = "Api-Key"

    def authenticate(self, request):
        raw = self._presented_key(request)
        if raw is None:
            return None
        ip = client_ip(request._request)
        limited = settings.PMS_RATE_LIMITS_ENABLED
        failures = ratelimit.rate("auth_failures")
        # Read by the guard middleware in its own round trip to Redis, when it ran.
        seen = getattr(request._request, "pms_auth_failures", None)
        if limited and seen is None:
            seen = ratelimit.peek("authfail", ip, failures)
        if limited and seen >= failures.count:
            # Past the limit no key is even checked: guessing gains nothing.
            raise exceptions.Throttled(detail="Too many failed authentications from this address.")
        key = api_key_authenticate(raw)
        if key is None:
            self._record_failure(request, ip, raw, limited)
            raise exceptions.AuthenticationFailed("The API key is invalid, revoked or expired.")
        return ApiKeyPrincipal(key), key

    def _record_failure(self, request, ip: str, raw: str, limited: bool) -> None:
        count, limit = 1, None
        if limited:
            (verdict,) = ratelimit.hit([("authfail", ip, ratelimit.rate("auth_failures"))])
            count, limit = verdict.limit - verdict.remaining, verdict.limit
        # Audit the first failure of a window and the one that trips the limit, not every
        # guess: a flood must not turn into a flood of audit rows.
        if count not in (1, limit):
            return
        with transaction.atomic():
            audit_record(
                actor=Actor(request_id=getattr(request, "request_id", ""), ip=ip),
                action="auth.locked_out" if count == limit else "auth.failed",
                object_type="apikeys.apikey",
                object_id=api_key_parse_prefix(raw) or "",
                changes={"failures_in_window": {"before": None, "after": count}},
            )

    def authenticate_header(self, request) -> str:
        return self.keyword

    def _presented_key(self, request) -> str | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == self.keyword.lower():
                value = value.strip()
                if not value:
                    raise exceptions.AuthenticationFailed("The Api-Key header carries no key.")
                return value
            return None
        value = request.META.get("HTTP_X_API_KEY", "").strip()
        return value or None


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """The admin session of an active staff member, with CSRF enforced."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        if not user.is_staff:
            return None
        return result


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "pms_backend.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key pms_<prefix>_<secret>` (or the `X-API-Key` header)",
        }


class StaffSessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "pms_backend.api.authentication.StaffSessionAuthentication"
    name = "StaffSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
