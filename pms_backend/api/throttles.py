"""Per-credential rate limits, with a stricter one for order placement."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from pms_backend.api import ratelimit
from pms_backend.api.guard import record_verdict
from pms_backend.apikeys.models import ApiKey
from pms_backend.shopsettings.selectors import setting_get

# Buckets whose limit staff can change in the settings service (PMS_RATE_LIMITS is the
# default there).
SETTING_RATES = {"orders": "ratelimit.orders_per_minute"}


def bucket_rate(bucket: str) -> ratelimit.Rate:
    """Return the limit of ``bucket``: the settings service's, else PMS_RATE_LIMITS."""
    if bucket in SETTING_RATES:
        return ratelimit.Rate.parse(setting_get(SETTING_RATES[bucket]))
    return ratelimit.rate(bucket)


def credential_ident(key: ApiKey) -> str:
    return f"key:{key.prefix}"


def credential_buckets(ident: str, view) -> list[ratelimit.Bucket]:
    """The windows a request of credential ``ident`` to ``view`` counts against: the
    credential's own, and the view action's stricter one if it has one."""
    buckets = [("cred", ident, ratelimit.rate("key"))]
    action_bucket = getattr(view, "rate_limit_bucket", {}).get(getattr(view, "action", None))
    if action_bucket:
        buckets.append((action_bucket, ident, bucket_rate(action_bucket)))
    return buckets


class CredentialRateThrottle(BaseThrottle):
    """Count each request against its API key (or staff user); order placement also
    against the key's order budget, so a storefront cannot hoard stock.

    ApiKeyAuthentication has already counted a key's windows (with the per-IP one, in one
    round trip to Redis) and left the verdicts on the request; this only enforces them.
    """

    def __init__(self) -> None:
        self.verdict: ratelimit.Verdict | None = None

    def allow_request(self, request, view) -> bool:
        if not settings.PMS_RATE_LIMITS_ENABLED:
            return True
        verdicts = getattr(request._request, "pms_credential_verdicts", None)
        if verdicts is None:
            if isinstance(request.auth, ApiKey):
                ident = credential_ident(request.auth)
            elif request.user and request.user.is_authenticated:
                ident = f"user:{request.user.pk}"
            else:
                return True  # the per-IP limit covers anonymous requests
            verdicts = ratelimit.hit(credential_buckets(ident, view))
        self.verdict = ratelimit.most_constraining(verdicts)
        record_verdict(request._request, self.verdict)
        return self.verdict.allowed

    def wait(self) -> float | None:
        return self.verdict.reset if self.verdict else None
