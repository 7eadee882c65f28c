"""Creating and revoking API keys."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.scopes import expand_scopes
from pms_backend.errors import InvalidInput, NotFound

_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
PREFIX_LENGTH = 8


def hash_key(raw_key: str) -> str:
    """Return the stored form of a key. The secret carries 256 bits, so SHA-256 suffices."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def cache_key_for_prefix(prefix: str) -> str:
    return f"apikey:{prefix}"


# Changes whenever a key is created: processes holding the set of prefixes load it again.
PREFIXES_VERSION_CACHE_KEY = "apikey:prefixes:version"


def prefixes_changed() -> None:
    cache.set(PREFIXES_VERSION_CACHE_KEY, secrets.token_hex(8), None)


def _new_raw_key() -> tuple[str, str]:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return prefix, f"pms_{prefix}_{secret}"


def api_key_create(
    *,
    name: str,
    scopes: list[str],
    actor: Actor,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw key, which is never retrievable again."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("invalid_name", "A key needs a name of 1 to 100 characters.")
    try:
        scope_list = expand_scopes(scopes)
    except ValueError as exc:
        raise InvalidInput("invalid_scopes", str(exc)) from exc
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("invalid_expiry", "The expiry must lie in the future.")
    with transaction.atomic():
        prefix, raw = _new_raw_key()
        while ApiKey.objects.filter(prefix=prefix).exists():  # 32^8 prefixes; a clash is rare
            prefix, raw = _new_raw_key()
        key = ApiKey.objects.create(
            name=name,
            prefix=prefix,
            key_hash=hash_key(raw),
            scopes=scope_list,
            expires_at=expires_at,
            created_by=actor.user,
        )
        audit_record(
            actor=actor,
            action="api_key.created",
            target=key,
            changes={
                "name": {"before": None, "after": name},
                "scopes": {"before": None, "after": scope_list},
                "expires_at": {
                    "before": None,
                    "after": expires_at.isoformat() if expires_at else None,
                },
            },
        )
        transaction.on_commit(lambda: cache.delete(cache_key_for_prefix(prefix)))
        # Now and again after commit: a process that reloads in between (without the new
        # key) reloads once more.
        prefixes_changed()
        transaction.on_commit(prefixes_changed)
    return key, raw


def api_key_revoke(*, prefix: str, actor: Actor) -> ApiKey:
    """Revoke the key with ``prefix``; the next request that presents it is refused."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
        if key is None:
            raise NotFound("api_key_not_found", f"No API key has the prefix {prefix!r}.")
        if key.revoked_at is None:
            key.is_active = False
            key.revoked_at = timezone.now()
            key.save(update_fields=["is_active", "revoked_at"])
            audit_record(
                actor=actor,
                action="api_key.revoked",
                target=key,
                changes={"is_active": {"before": True, "after": False}},
            )
        # Drop the cached copy now and again after commit, so no request sees a stale one.
        cache.delete(cache_key_for_prefix(prefix))
        transaction.on_commit(lambda: cache.delete(cache_key_for_prefix(prefix)))
    return key
