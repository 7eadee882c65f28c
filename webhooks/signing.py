"""Standard Webhooks signatures and the optional JWE body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from joserfc import jwe
from joserfc.jwk import OctKey

SECRET_PREFIX = "whsec_"  # noqa: S105 -- a format prefix, not a secret


def new_secret() -> str:
    """Return a fresh ``whsec_<base64 of 32 random bytes>`` secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """Return ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    digest = hmac.new(
        secret_bytes(secret), f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


def encrypt_body(secret: str, body: str) -> str:
    """Return ``body`` as a JWE compact string (alg dir, enc A256GCM, key = the secret)."""
    key = OctKey.import_key(secret_bytes(secret))
    return jwe.encrypt_compact({"alg": "dir", "enc": "A256GCM"}, body.encode(), key)
