"""What a websocket passes to listen, and what ends it: the failed-authentication budget it
shares with HTTP, the per-address cap on sockets still waiting to authenticate, and the
watch that closes the sockets of a key once it is revoked or has expired, and of a staff
session once it has ended (logged out, expired, password changed, no longer staff)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from importlib import import_module
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from audit.actors import Actor
from audit.services import audit_record
from pms_backend.api import ratelimit
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.selectors import api_key_authenticate, api_key_parse_prefix
from pms_backend.plurals import counted

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_MANY = 4429
CLOSE_KEY_REVOKED = 4410
CLOSE_KEY_EXPIRED = 4440
CLOSE_SESSION_ENDED = 4401  # as a socket that never authenticated: sign in again


# --- the failed-authentication budget --------------------------------------------------


def socket_key_authenticate(raw_key: str, ip: str | None) -> tuple[ApiKey | None, int]:
    """Return the usable key ``raw_key`` is, or None and the code to close with.

    A wrong key spends the address's failed-authentication budget, the same window that
    HTTP's key authentication counts (``authfail``): 4401 within it, 4429 once it is
    spent, for sockets and API requests alike. Failures are audited as HTTP's are (the
    first of a window and the one that spends it) and each is logged.
    """
    key = api_key_authenticate(raw_key)
    if key is not None:
        return key, 0
    if not settings.PMS_RATE_LIMITS_ENABLED:
        _record_failure(ip, raw_key, count=1, limit=None)
        return None, CLOSE_UNAUTHENTICATED
    gate = ("authfail", ip or "unknown", ratelimit.rate("auth_failures"))
    (verdict,) = ratelimit.hit([gate])
    count, limit = verdict.limit - verdict.remaining, verdict.limit
    if count > limit:
        logger.warning(
            "websocket authentication refused: too many failed authentications from %s",
            ip,
            extra={"client_ip": ip, "failures_in_window": count},
        )
        return None, CLOSE_TOO_MANY
    _record_failure(ip, raw_key, count=count, limit=limit)
    return None, CLOSE_UNAUTHENTICATED


def _record_failure(ip: str | None, raw_key: str, *, count: int, limit: int | None) -> None:
    prefix = api_key_parse_prefix(raw_key) or ""
    logger.warning(
        "websocket authentication failed from %s (key prefix %r, failure %d of the window)",
        ip,
        prefix,
        count,
        extra={"client_ip": ip, "key_prefix": prefix, "failures_in_window": count},
    )
    # The same entries as HTTP's (ApiKeyAuthentication): not one per guess.
    if count not in (1, limit):
        return
    with transaction.atomic():
        audit_record(
            actor=Actor(ip=ip),
            action="auth.locked_out" if count == limit else "auth.failed",
            object_type="apikeys.apikey",
            object_id=prefix,
            changes={"failures_in_window": {"before": None, "after": count}},
        )


# --- sockets waiting to authenticate, per address (in this process) ---------------------

_waiting: dict[str, int] = defaultdict(int)


def waiting_claim(ip: str) -> bool:
    """Count one more unauthenticated socket from ``ip``; False past the cap."""
    if _waiting[ip] >= settings.PMS_WEBSOCKET_UNAUTHENTICATED_PER_ADDRESS:
        return False
    _waiting[ip] += 1
    return True


def waiting_release(ip: str) -> None:
    """The socket from ``ip`` authenticated or closed."""
    _waiting[ip] -= 1
    if _waiting[ip] <= 0:
        del _waiting[ip]


# --- the watch: revoked or expired keys and ended staff sessions lose their sockets -----


class Closable(Protocol):
    async def end(self, code: int, reason: str) -> None: ...


_watched: dict[str, set[Closable]] = defaultdict(set)
_watched_sessions: dict[str, set[Closable]] = defaultdict(set)
_watcher: asyncio.Task | None = None


def key_watch(prefix: str, socket: Closable) -> None:
    """Close ``socket`` once the key ``prefix`` is revoked or expires."""
    _watched[prefix].add(socket)
    _start_watcher()


def key_unwatch(prefix: str, socket: Closable) -> None:
    _unwatch(_watched, prefix, socket)


def session_watch(session_key: str, socket: Closable) -> None:
    """Close ``socket`` once the staff session ``session_key`` ends: logout, expiry, a
    password change, or its user no longer active staff. A socket outliving its session
    kept showing a signed-out browser (or a dismissed employee) every new order."""
    _watched_sessions[session_key].add(socket)
    _start_watcher()


def session_unwatch(session_key: str, socket: Closable) -> None:
    _unwatch(_watched_sessions, session_key, socket)


def _unwatch(watched: dict[str, set[Closable]], name: str, socket: Closable) -> None:
    sockets = watched.get(name)
    if sockets is not None:
        sockets.discard(socket)
        if not sockets:
            del watched[name]


def _start_watcher() -> None:
    global _watcher
    loop = asyncio.get_running_loop()
    if _watcher is None or _watcher.done() or _watcher.get_loop() is not loop:
        _watcher = loop.create_task(_watch())


async def _watch() -> None:
    # One check per process and interval, however many sockets: revocation and logout are
    # written by whichever process handled them (the admin, the API, manage.py), so the
    # database, not a message that might not reach us, is what each server process asks.
    while _watched or _watched_sessions:
        await asyncio.sleep(settings.PMS_WEBSOCKET_KEY_CHECK_SECONDS)
        try:
            ended = await database_sync_to_async(_ended)(list(_watched), list(_watched_sessions))
        except Exception:
            logger.warning("websocket key check failed; retrying", exc_info=True)
            continue
        for watched, name, code, reason in ended:
            sockets = list(watched.get(name, ()))
            if sockets:
                logger.info("closing %s: %s", counted(len(sockets), "websocket"), reason)
            for socket in sockets:
                try:
                    await socket.end(code, reason)
                except Exception:
                    logger.warning("could not close a websocket", exc_info=True)
                _unwatch(watched, name, socket)


def _ended(
    prefixes: list[str], session_keys: list[str]
) -> list[tuple[dict[str, set[Closable]], str, int, str]]:
    ended: list[tuple[dict[str, set[Closable]], str, int, str]] = []
    for prefix, code in (_ended_keys(prefixes) if prefixes else {}).items():
        reason = "api key revoked" if code == CLOSE_KEY_REVOKED else "api key expired"
        ended.append((_watched, prefix, code, reason))
    for session_key in _ended_sessions(session_keys):
        ended.append((_watched_sessions, session_key, CLOSE_SESSION_ENDED, "session ended"))
    return ended


def _ended_keys(prefixes: list[str]) -> dict[str, int]:
    """Return the close code for each of ``prefixes`` whose key may no longer be used."""
    now = timezone.now()
    rows = ApiKey.objects.filter(prefix__in=prefixes).filter(
        Q(is_active=False) | Q(revoked_at__isnull=False) | Q(expires_at__lte=now)
    )
    return {
        prefix: CLOSE_KEY_REVOKED if revoked_at is not None or not active else CLOSE_KEY_EXPIRED
        for prefix, active, revoked_at in rows.values_list("prefix", "is_active", "revoked_at")
    }


def _ended_sessions(session_keys: list[str]) -> list[str]:
    """Return the ``session_keys`` that no longer sign in active staff.

    As Django's ``get_user`` decides for the next page the browser loads: the session
    exists and is unexpired in the configured store, names an active staff user, and
    carries the hash of that user's current password. Read only: ``get_user`` itself may
    flush a session or cycle its key, which a watcher must never do to a live browser's.
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore
    users = get_user_model()._default_manager
    ended = []
    for session_key in session_keys:
        data = store(session_key).load()  # empty when missing or expired
        user = None
        if data.get(SESSION_KEY) is not None:
            with contextlib.suppress(ValidationError, ValueError):
                user = users.filter(pk=data[SESSION_KEY], is_active=True, is_staff=True).first()
        if user is None or not constant_time_compare(
            str(data.get(HASH_SESSION_KEY, "")), user.get_session_auth_hash()
        ):
            ended.append(session_key)
    return ended
