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


class CredentialRateThrottle(BaseThrottle):
    """Count each request against its API key (or staff user); order placement also
    against the key's order budget, so a storefront cannot hoard stock."""

    def __init__(self) -> None:
        self.verdict: ratelimit.Verdict | None = None

    def allow_request(self, request, view) -> bool:
        if not settings.PMS_RATE_LIMITS_ENABLED:
            return True
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            return True  # the per-IP limit covers anonymous requests
        buckets = [("cred", ident, ratelimit.rate("key"))]
        if getattr(view, "rate_limit_bucket", {}).get(getattr(view, "action", None)):
            bucket = view.rate_limit_bucket[view.action]
            buckets.append((bucket, ident, bucket_rate(bucket)))
        verdicts = ratelimit.hit(buckets)
        self.verdict = ratelimit.most_constraining(verdicts)
        record_verdict(request._request, self.verdict)
        return self.verdict.allowed

    def wait(self) -> float | None:
        return self.verdict.reset if self.verdict else None
