"""The admin login's lockout (django-axes): the page a locked-out sign-in gets, and one
audit entry per lockout, however many attempts it refuses."""

from __future__ import annotations

import logging

from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_cache, get_client_cache_keys, get_failure_limit
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import transaction
from django.dispatch import receiver
from django.template.response import TemplateResponse

from audit.actors import Actor
from audit.services import audit_record
from pms_backend.encryption.ciphers import blind_index

logger = logging.getLogger(__name__)


class LockoutCacheHandler(AxesCacheHandler):
    """Axes' cache handler, letting a failed sign-in through uncounted when the cache is
    unreachable (as the API's limits do) instead of failing it with a 500: django-redis
    then raises from ``incr`` and answers None elsewhere, neither of which axes expects."""

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        try:
            super().user_login_failed(sender, credentials, request=request, **kwargs)
        except Exception:
            if _cache_answers():
                raise  # a real error, not the cache being away
            logger.warning("sign-in failure not counted: the cache is unreachable")


def _cache_answers() -> bool:
    try:
        return get_cache().add("axes-probe", 1, 1) is not None
    except Exception:
        return False


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the admin-styled lockout page, 429."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed sign-ins",
        "failure_limit": get_failure_limit(request, credentials),
        "cooloff_minutes": minutes,
    }
    response = TemplateResponse(request, settings.AXES_LOCKOUT_TEMPLATE, context, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response.render()


@receiver(user_locked_out)
def audit_lockout(sender, request, username=None, ip_address=None, **kwargs):
    # Axes sends this on the failure that trips the lockout and again on every attempt it
    # refuses. Only the tripping failure was counted (axes_failures_since_start is set):
    # that one is audited, with what it locked (this username, this address, or both).
    if getattr(request, "axes_failures_since_start", None) is None:
        return
    credentials = getattr(request, "axes_credentials", None)
    limit = get_failure_limit(request, credentials)
    keys = get_client_cache_keys(request, credentials)  # in AXES_LOCKOUT_PARAMETERS order
    names = {"username": "username", "ip_address": "address"}
    locked = [
        names.get(str(parameter), str(parameter))
        for parameter, key in zip(settings.AXES_LOCKOUT_PARAMETERS, keys, strict=False)
        if _count(key) >= limit
    ]
    User = get_user_model()
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first() if username else None
    changes = {
        "failures": {"before": None, "after": limit},
        "locked": {"before": None, "after": locked},
    }
    if user is None and username:
        # What was typed is often a password in the wrong box: only its keyed hash.
        changes["unknown_username_hmac"] = {"before": None, "after": blind_index(username)}
    with transaction.atomic():
        audit_record(
            actor=Actor(request_id=getattr(request, "request_id", ""), ip=ip_address),
            action="auth.login_locked_out",
            object_type="auth.user",
            object_id=str(user.pk) if user is not None else "",
            changes=changes,
        )


def _count(key: str) -> int:
    try:
        return int(get_cache().get(key) or 0)
    except (TypeError, ValueError):
        return 0
