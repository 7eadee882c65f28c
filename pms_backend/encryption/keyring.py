"""The key ring behind field encryption: ``PMS_ENCRYPTION_KEYS``, newest key first."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class DataKey:
    kid: str
    secret: bytes

    def __repr__(self) -> str:  # never print key material
        return f"DataKey(kid={self.kid!r})"


def key_id(secret: bytes) -> str:
    """Return a short, public identifier of a key (stored beside each ciphertext)."""
    return hashlib.sha256(b"pms-kid:" + secret).hexdigest()[:8]


def parse_keyring(value: str) -> list[DataKey]:
    """Parse comma-separated standard-base64 32-byte keys; raise ImproperlyConfigured."""
    keys = []
    for index, part in enumerate(p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            secret = base64.b64decode(part, validate=True)
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(
                f"PMS_ENCRYPTION_KEYS entry {index + 1} is not standard base64."
            ) from None
        if len(secret) != 32:
            raise ImproperlyConfigured(
                f"PMS_ENCRYPTION_KEYS entry {index + 1} decodes to {len(secret)} bytes, not 32."
            )
        keys.append(DataKey(key_id(secret), secret))
    if len({k.kid for k in keys}) != len(keys):
        raise ImproperlyConfigured("PMS_ENCRYPTION_KEYS lists the same key twice.")
    return keys


@functools.cache
def keyring() -> tuple[DataKey, ...]:
    """Return the configured keys, newest first (the first one encrypts)."""
    keys = parse_keyring(settings.PMS_ENCRYPTION_KEYS)
    if not keys:
        raise ImproperlyConfigured("PMS_ENCRYPTION_KEYS is empty.")
    return tuple(keys)


def current_key() -> DataKey:
    return keyring()[0]


def find_key(kid: str) -> DataKey | None:
    for key in keyring():
        if key.kid == kid:
            return key
    return None


@functools.cache
def blind_index_key() -> bytes:
    """Return the HMAC key of the blind indexes (independent of the data-key ring)."""
    return hashlib.sha256(b"pms-blind-index:" + settings.PMS_BLIND_INDEX_SECRET.encode()).digest()


def reset_caches() -> None:
    """Forget the parsed keys (tests and rotation change the settings underneath)."""
    keyring.cache_clear()
    blind_index_key.cache_clear()
