"""AES-256-GCM for single values, with the row they belong to bound as associated data."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pms_backend.encryption.keyring import blind_index_key, current_key, find_key

PREFIX = "pms1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """The ciphertext is damaged, belongs to another row, or its key is gone."""


def encrypt(plaintext: str, *, aad: bytes) -> str:
    """Return ``pms1.<key id>.<base64url(nonce || ciphertext+tag)>``."""
    key = current_key()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key.secret).encrypt(nonce, plaintext.encode("utf-8"), aad)
    return f"{PREFIX}.{key.kid}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def token_key_id(token: str) -> str | None:
    parts = token.split(".", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    return parts[1]


def decrypt(token: str, *, aad: bytes) -> str:
    """Return the plaintext of ``token``; raise ``DecryptionError`` if it cannot be opened."""
    parts = token.split(".", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise DecryptionError("not a PMS ciphertext")
    key = find_key(parts[1])
    if key is None:
        raise DecryptionError(f"key {parts[1]} is not in PMS_ENCRYPTION_KEYS")
    try:
        raw = base64.urlsafe_b64decode(parts[2])
        plaintext = AESGCM(key.secret).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("ciphertext does not open with its key and row") from exc
    return plaintext.decode("utf-8")


def blind_index(value: str) -> str:
    """Return a keyed hash for equality search over an encrypted value (case-folded)."""
    normalised = value.strip().casefold().encode("utf-8")
    return hmac.new(blind_index_key(), normalised, hashlib.sha256).hexdigest()
