"""Finding the key behind a presented credential, with a shared cache in front."""

from __future__ import annotations

import hmac
import secrets
import time

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.services import (
    PREFIXES_VERSION_CACHE_KEY,
    cache_key_for_prefix,
    hash_key,
)

_MISSING = "missing"


def api_key_parse_prefix(raw_key: str) -> str | None:
    """Return the prefix of a well-formed ``pms_<prefix>_<secret>`` key, else None."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != "pms" or not parts[1] or len(parts[2]) < 40:
        return None
    if len(raw_key) > 100:
        return None
    return parts[1]


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """Return the usable key that ``raw_key`` is, or None (unknown, revoked, expired)."""
    prefix = api_key_parse_prefix(raw_key)
    if prefix is None:
        return None
    cache_key = cache_key_for_prefix(prefix)
    key = cache.get(cache_key)
    if key is None:
        key = ApiKey.objects.filter(prefix=prefix).first() or _MISSING
        cache.set(cache_key, key, settings.PMS_API_KEY_CACHE_SECONDS)
    if key == _MISSING:
        return None
    if not hmac.compare_digest(key.key_hash, hash_key(raw_key)):
        return None
    if not key.is_usable:
        return None
    _touch_last_used(key)
    return key


# The prefixes of every key, with the version of the set they were loaded at (the cache
# holds the current version; creating a key changes it).
_prefixes: tuple[str, frozenset[str]] | None = None


def api_key_prefix_exists(prefix: str) -> bool:
    """Return whether some key (usable or not) has ``prefix``.

    One cache read; a database query only in a process that has not loaded the prefixes
    since a key was created. A flood of made-up prefixes costs no query at all.
    """
    global _prefixes
    version = cache.get(PREFIXES_VERSION_CACHE_KEY)
    if version is None:
        cache.add(PREFIXES_VERSION_CACHE_KEY, secrets.token_hex(8), None)
        version = cache.get(PREFIXES_VERSION_CACHE_KEY) or ""  # "": the cache is down
    known = _prefixes
    if known is None or known[0] != version or not version:
        known = (version, frozenset(ApiKey.objects.values_list("prefix", flat=True)))
        _prefixes = known
    return prefix in known[1]


# Keys (by prefix) this process has stamped recently: it asks the cache again only after
# a minute, so a busy key costs no cache round trip per request.
_touched_at: dict[str, float] = {}
_TOUCH_RECHECK_SECONDS = 60


def _touch_last_used(key: ApiKey) -> None:
    now = time.monotonic()
    if now - _touched_at.get(key.prefix, -_TOUCH_RECHECK_SECONDS) < _TOUCH_RECHECK_SECONDS:
        return
    if len(_touched_at) >= 10_000:
        _touched_at.clear()
    _touched_at[key.prefix] = now
    # One write per key per interval across all processes, not one per request.
    if cache.add(f"apikey:used:{key.pk}", 1, timeout=300):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
