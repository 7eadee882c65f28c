"""How API requests prove who they are: an API key, or a staff member's admin session."""

from __future__ import annotations

import time
from typing import NoReturn

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from audit.actors import Actor
from audit.services import audit_record
from pms_backend.api import ratelimit
from pms_backend.api.guard import address_refusal_detail, client_ip, record_verdict
from pms_backend.api.throttles import credential_buckets, credential_ident
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.selectors import (
    api_key_authenticate,
    api_key_parse_prefix,
    api_key_prefix_exists,
)


class ApiKeyPrincipal(AnonymousUser):
    """``request.user`` for key-authenticated requests: authenticated, never staff."""

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]  # the point of this class
        return True

    def __str__(self) -> str:
        return f"api_key:{self.api_key.prefix}"


# Addresses this process has seen locked out, until their window ends. From such an
# address a key whose prefix no key has is refused on Redis's word (still the authority)
# without being looked up: a flood of made-up keys costs no database query.
_locked_until: dict[str, float] = {}


def _throttled(detail: str, retry_after: int) -> exceptions.Throttled:
    exc = exceptions.Throttled(detail=detail)
    # Set after __init__ (given to it, DRF would add a sentence to the detail). The stubs
    # leave out the attribute. The problem handler sends Retry-After: wait + 1.
    exc.wait = retry_after - 1  # type: ignore[attr-defined]
    return exc


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Api-Key <key>`` or ``X-API-Key: <key>``.

    With rate limits on, it also counts the request in one round trip to Redis, once the
    key is checked: the per-IP window (the guard middleware leaves it to this), then the
    key's windows or, for a wrong key, the address's failed authentications. Past that
    limit the address is locked out for guessing: wrong keys get 429, but a valid key is
    still served (it spends its own budgets, never the failures'), so one guesser behind
    a shared address cannot lock the shop's storefront out. A key's budget is spent only
    by requests bearing it.
    """

    keyword = "Api-Key"
    _invalid = "The API key is invalid, revoked or expired."

    def authenticate(self, request):
        raw = self._presented_key(request)
        if raw is None:
            return None
        ip = client_ip(request._request)
        if not settings.PMS_RATE_LIMITS_ENABLED:
            key = api_key_authenticate(raw)
            if key is None:
                self._audit_failure(request, ip, raw, count=1, limit=None)
                raise exceptions.AuthenticationFailed(self._invalid)
            return ApiKeyPrincipal(key), key
        ip_bucket = ("ip", ip, ratelimit.rate("ip"))
        gate = ("authfail", ip, ratelimit.rate("auth_failures"))
        if _locked_until.get(ip, 0.0) > time.monotonic() and self._surely_wrong(raw):
            # A guess from a locked-out address: refused on Redis's word, not looked up.
            self._enforce(request, ratelimit.count([ip_bucket], gate=gate, gate_at=1), gate)
            _locked_until.pop(ip, None)  # Redis no longer has it locked (cleared by hand)
            self._refuse_wrong_key(request, ip, raw, ratelimit.count([gate]).verdict(0))
        key = api_key_authenticate(raw)
        if key is None:
            outcome = ratelimit.count([ip_bucket, gate], gate=gate, gate_at=1)
            self._enforce(request, outcome, gate)
            self._refuse_wrong_key(request, ip, raw, outcome.verdict(1))
        view = (request.parser_context or {}).get("view")
        buckets = credential_buckets(credential_ident(key), view)
        # No gate: a lockout for guessing never refuses a valid key.
        outcome = ratelimit.count([ip_bucket, *buckets])
        self._enforce(request, outcome, None)
        request._request.pms_credential_verdicts = [v for v in outcome.verdicts[1:] if v]
        return ApiKeyPrincipal(key), key

    @staticmethod
    def _surely_wrong(raw: str) -> bool:
        """Whether ``raw`` is no key at all: malformed, or a prefix no key has."""
        prefix = api_key_parse_prefix(raw)
        return prefix is None or not api_key_prefix_exists(prefix)

    def _enforce(self, request, outcome: ratelimit.Outcome, gate: ratelimit.Bucket | None) -> None:
        """Record the per-IP verdict; refuse if the address is past its limit or (with a
        ``gate``) locked out for failed authentications."""
        django_request = request._request
        django_request.pms_ip_pending = False
        ip_verdict = outcome.verdict(0)  # the first bucket: always counted
        record_verdict(django_request, ip_verdict)
        if not ip_verdict.allowed:
            raise _throttled(address_refusal_detail(ip_verdict), ip_verdict.reset)
        if gate is not None and outcome.refused_by_gate(gate):
            self._remember_lockout(gate[1], outcome.gate_reset)
            raise _throttled(
                "Too many failed authentications from this address.", outcome.gate_reset
            )

    def _refuse_wrong_key(self, request, ip: str, raw: str, verdict: ratelimit.Verdict) -> NoReturn:
        """Raise 401 for a wrong key, counted in the address's failures: 429 past the limit."""
        count, limit = verdict.limit - verdict.remaining, verdict.limit
        if count >= limit:
            self._remember_lockout(ip, verdict.reset)
        if count > limit:  # concurrent guesses raced past the gate
            raise _throttled("Too many failed authentications from this address.", verdict.reset)
        self._audit_failure(request, ip, raw, count=count, limit=limit)
        raise exceptions.AuthenticationFailed(self._invalid)

    @staticmethod
    def _remember_lockout(ip: str, seconds: int) -> None:
        if len(_locked_until) >= 10_000:
            _locked_until.clear()
        _locked_until[ip] = time.monotonic() + seconds
        api_key_prefix_exists("")  # load the prefixes now, not during the flood

    def _audit_failure(self, request, ip: str, raw: str, *, count: int, limit) -> None:
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
