"""Model attributes whose column holds AES-256-GCM ciphertext bound to table/column/pk."""

from __future__ import annotations

import json
from typing import Any

from pms_backend.encryption.ciphers import blind_index, decrypt, encrypt

# Every model attribute declared with EncryptedAttribute, for rotate_encryption_key.
REGISTRY: list[tuple[type, EncryptedAttribute]] = []


class EncryptedAttribute(property):
    """Plaintext on the model, ciphertext in ``column_field``.

    The associated data is ``<db table>/<column>/<primary key>``, so a ciphertext copied
    into another row or column no longer decrypts. The primary key must be known before
    the value is set (UUID keys, or a natural key). With ``index_field`` the attribute
    also keeps a blind index (keyed hash) for equality search.
    """

    def __init__(self, column_field: str, *, index_field: str | None = None, kind: str = "str"):
        self.column_field = column_field
        self.index_field = index_field
        self.kind = kind
        super().__init__(self._get, self._set)

    def __set_name__(self, owner, name: str) -> None:
        self.name = name
        REGISTRY.append((owner, self))

    def aad(self, instance) -> bytes:
        if instance.pk is None:
            raise ValueError(f"{type(instance).__name__} needs its primary key before {self.name}")
        column = instance._meta.get_field(self.column_field).column
        return f"{instance._meta.db_table}/{column}/{instance.pk}".encode()

    def _cache_name(self) -> str:
        return f"_plain_{self.name}"

    def _get(self, instance) -> Any:
        token = getattr(instance, self.column_field)
        cached = instance.__dict__.get(self._cache_name())
        if cached is not None and cached[0] == token:
            return cached[1]
        if not token:
            return self._empty()
        text = decrypt(token, aad=self.aad(instance))
        value = _decode(text, self.kind)
        instance.__dict__[self._cache_name()] = (token, value)
        return value

    def _set(self, instance, value: Any) -> None:
        text = _encode(value, self.kind)
        token = encrypt(text, aad=self.aad(instance))
        setattr(instance, self.column_field, token)
        instance.__dict__[self._cache_name()] = (token, value)
        if self.index_field:
            setattr(instance, self.index_field, blind_index(text) if text else "")

    def _empty(self):
        return {} if self.kind == "json" else ""

    def reencrypt(self, instance) -> bool:
        """Encrypt the current value again with the newest key; return whether it changed."""
        token = getattr(instance, self.column_field)
        if not token:
            return False
        value = self._get(instance)
        self._set(instance, value)
        return True


def _encode(value: Any, kind: str) -> str:
    if kind == "json":
        return json.dumps(value or {}, sort_keys=True, separators=(",", ":"))
    return "" if value is None else str(value)


def _decode(text: str, kind: str) -> Any:
    return json.loads(text) if kind == "json" else text
