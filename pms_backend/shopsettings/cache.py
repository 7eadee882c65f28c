"""The hot path of ``setting_get``: every stored value, decoded once per process.

The shared cache (Redis in production) holds only a version stamp, replaced after each
committed change. A process keeps the values it loaded under one stamp and loads them
again when the stamp moves, so a read costs one small cache lookup and no query, and
secrets never leave the database except into process memory. A request looks the stamp
up once, at its first read: all its reads see one set of values. With the cache
unreachable every read goes to the database. A process also reloads after ``MAX_AGE``
seconds, so a stamp lost with the cache (or a process-local cache in development)
cannot keep a value stale for long.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import transaction

from pms_backend.encryption.ciphers import DecryptionError
from pms_backend.monitoring.request_context import request_memo
from pms_backend.shopsettings.models import Setting, StoredJsonMixin
from pms_backend.shopsettings.registry import SCOPES, TUNABLES

logger = logging.getLogger(__name__)

VERSION_KEY = "settings:version"
MAX_AGE = 60.0


@dataclass(frozen=True)
class StoredValues:
    """The values stored for every known key: global, and per object of its scope
    (``object_values[key][object id]``)."""

    version: str | None
    loaded_at: float
    values: dict[str, Any] = field(default_factory=dict)
    object_values: dict[str, dict[int, Any]] = field(default_factory=dict)


_current: StoredValues | None = None


def stored_values() -> StoredValues:
    """Return the stored values, from this process's copy while the stamp is unchanged."""
    global _current
    memo = request_memo()
    version = memo.get(VERSION_KEY) if memo is not None else None
    if version is None:
        version = _version()
        if memo is not None and version is not None:
            memo[VERSION_KEY] = version
    current = _current
    if (
        version is not None
        and current is not None
        and current.version == version
        and time.monotonic() - current.loaded_at < MAX_AGE
    ):
        return current
    fresh = load_stored_values(version)
    if version is not None:
        _current = fresh
    return fresh


def load_stored_values(version: str | None = None) -> StoredValues:
    """Read and decode every stored value of a known key (one query, and one per scope)."""
    loaded = StoredValues(version=version, loaded_at=time.monotonic())
    for setting in Setting.objects.filter(key__in=list(TUNABLES)):
        value = _decode(setting.key, setting, f"setting {setting.key}")
        if value is not _INVALID:
            loaded.values[setting.key] = value
    for scope in SCOPES.values():
        rows: Any = scope.value_model._default_manager.filter(setting_id__in=list(TUNABLES))
        for row in rows:  # a scope's value model: StoredJsonMixin with setting_id, <scope>_id
            object_id = getattr(row, f"{scope.name}_id")
            label = f"setting {row.setting_id} of {scope.name} {object_id}"
            value = _decode(row.setting_id, row, label)
            if value is not _INVALID:
                loaded.object_values.setdefault(row.setting_id, {})[object_id] = value
    return loaded


_INVALID = object()


def _decode(key: str, row: StoredJsonMixin, label: str) -> Any:
    """Return the row's value, or ``_INVALID`` when it has none that can be used."""
    try:
        text = row.stored_json()
    except DecryptionError:
        logger.error("stored %s cannot be decrypted (key ring?); using the default", label)
        return _INVALID
    if not text:
        return _INVALID
    try:
        return TUNABLES[key].load(text)
    except ValueError:
        # The registry's type or bounds changed since it was stored: the default is safe.
        logger.warning("stored %s no longer valid; using the default", label)
        return _INVALID


def settings_changed() -> None:
    """Make every process read the values again once the current transaction commits."""
    transaction.on_commit(_bump)


def _bump() -> None:
    global _current
    _current = None
    memo = request_memo()
    if memo is not None:
        memo.pop(VERSION_KEY, None)
    cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)


def _version() -> str | None:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        version = cache.get(VERSION_KEY)
    return version
