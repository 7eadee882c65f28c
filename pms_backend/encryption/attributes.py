"""Model attributes whose column holds AES-256-GCM ciphertext bound to table/column/pk."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pms_backend.encryption.ciphers import blind_index, decrypt, encrypt

if TYPE_CHECKING:
    from django.db import models

# Every model attribute declared with EncryptedAttribute, for rotate_encryption_key.
REGISTRY: list[tuple[type[models.Model], EncryptedAttribute]] = []


class EncryptedAttribute(property):
    """Plaintext on the model, ciphertext in ``column_field``.

    The associated data is ``<db table>/<column>/<primary key>``, so a ciphertext copied
    into another row or column no longer decrypts. The primary key must be known before
    the value is set (UUID keys, or a natural key); ``row_key`` names another unique
    field, set on instantiation, to bind instead (an auto-increment table's public id).
    With ``index_field`` the attribute also keeps a blind index (keyed hash) for equality
    search. ``kind``: ``str``, ``json`` (keys sorted) or ``json_exact`` (keys kept in
    their order, so the value reads back byte for byte as it was written).
    """

    def __init__(
        self,
        column_field: str,
        *,
        index_field: str | None = None,
        kind: str = "str",
        row_key: str | None = None,
    ):
        self.column_field = column_field
        self.index_field = index_field
        self.kind = kind
        self.row_key = row_key
        super().__init__(self._get, self._set)

    def __set_name__(self, owner, name: str) -> None:
        self.name = name
        REGISTRY.append((owner, self))

    def aad(self, instance) -> bytes:
        row = getattr(instance, self.row_key) if self.row_key else instance.pk
        if row is None or row == "":
            raise ValueError(f"{type(instance).__name__} needs its row key before {self.name}")
        column = instance._meta.get_field(self.column_field).column
        return row_aad(instance._meta.db_table, column, row)

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
        return {} if self.kind in JSON_KINDS else ""

    def reencrypt(self, instance) -> bool:
        """Encrypt the current value again with the newest key; return whether it changed."""
        token = getattr(instance, self.column_field)
        if not token:
            return False
        value = self._get(instance)
        self._set(instance, value)
        return True


JSON_KINDS = ("json", "json_exact")


def row_aad(table: str, column: str, row: Any) -> bytes:
    """Return the associated data binding a value to its table, column and row."""
    return f"{table}/{column}/{row}".encode()


def _encode(value: Any, kind: str) -> str:
    if kind in JSON_KINDS:
        return json.dumps(value or {}, sort_keys=kind == "json", separators=(",", ":"))
    return "" if value is None else str(value)


def _decode(text: str, kind: str) -> Any:
    return json.loads(text) if kind in JSON_KINDS else text
