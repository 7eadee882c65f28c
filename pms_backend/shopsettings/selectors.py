"""Reading settings: ``setting_get`` for the code that obeys them (cached), and the
full state of each setting for the API and the admin (fresh from the database)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pms_backend.encryption.ciphers import DecryptionError
from pms_backend.errors import NotFound
from pms_backend.shopsettings.cache import stored_values
from pms_backend.shopsettings.errors import SettingErrorCode as Code
from pms_backend.shopsettings.models import ProductSetting, Setting
from pms_backend.shopsettings.registry import MASK, TUNABLES, Tunable


def tunable_for(key: str) -> Tunable:
    """Return the registry entry of ``key``; raise ``NotFound`` ``unknown_setting``."""
    tunable = TUNABLES.get(key) if isinstance(key, str) else None
    if tunable is None:
        raise NotFound(
            Code.UNKNOWN_SETTING,
            f"There is no setting {key!r}; known: {', '.join(sorted(TUNABLES))}.",
        )
    return tunable


def setting_get(key: str, *, product_id: int | None = None) -> Any:
    """Return the value in force for ``key``: the product's own value if ``product_id``
    has one, else the global value, else the default.

    Served from memory while no change has been committed since the last read (see
    ``cache.py``); a change made in the current transaction shows only after commit.
    """
    tunable = tunable_for(key)
    stored = stored_values()
    if product_id is not None:
        own = stored.product_values.get(key, {})
        if product_id in own:
            return own[product_id]
    if key in stored.values:
        return stored.values[key]
    return tunable.default_value()


def setting_get_many(key: str, *, product_ids: Iterable[int]) -> dict[int, Any]:
    """Return ``{product_id: value in force}`` for ``key``, reading the cache once."""
    tunable = tunable_for(key)
    stored = stored_values()
    own = stored.product_values.get(key, {})
    fallback = stored.values[key] if key in stored.values else tunable.default_value()
    return {pid: own.get(pid, fallback) for pid in product_ids}


@dataclass
class SettingState:
    """A setting as staff see it: the registry entry and what is stored for it."""

    tunable: Tunable
    has_value: bool = False
    value: Any = None
    product_values: dict[int, Any] = field(default_factory=dict)
    updated_at: datetime | None = None

    @property
    def key(self) -> str:
        return self.tunable.key

    @property
    def effective(self) -> Any:
        return self.value if self.has_value else self.tunable.default_value()


def setting_states(keys: Iterable[str] | None = None) -> list[SettingState]:
    """Return the state of every setting (or of ``keys``), read from the database."""
    wanted = sorted(TUNABLES) if keys is None else [tunable_for(k).key for k in keys]
    states = {key: SettingState(tunable=TUNABLES[key]) for key in wanted}
    for row in Setting.objects.filter(key__in=wanted).prefetch_related("product_values"):
        states[row.key] = setting_state_of(row)
    return [states[key] for key in wanted]


def setting_state(key: str) -> SettingState:
    (state,) = setting_states([key])
    return state


def setting_state_of(row: Setting) -> SettingState:
    """Return the state a ``Setting`` row holds (its ``product_values`` prefetched)."""
    tunable = TUNABLES[row.key]
    state = SettingState(tunable=tunable, updated_at=row.updated_at)
    state.has_value, state.value = _load(tunable, row)
    for own in row.product_values.all():
        ok, value = _load(tunable, own)
        if ok:
            state.product_values[own.product_id] = value
    return state


def _load(tunable: Tunable, row: Setting | ProductSetting) -> tuple[bool, Any]:
    """Return ``(True, value)``, or ``(False, None)`` when none is stored or it is unusable
    (the ``setting_get`` path logs why)."""
    try:
        text = row.stored_json()
        return (True, tunable.load(text)) if text else (False, None)
    except (ValueError, DecryptionError):
        return False, None


def masked(tunable: Tunable, value: Any) -> Any:
    """Return ``value`` as staff may see it: ``***`` for a sensitive one that is set."""
    if tunable.is_sensitive and value not in (None, ""):
        return MASK
    return public_value(value)


def public_value(value: Any) -> Any:
    """Return ``value`` as JSON shows it: decimals as strings, like every API price."""
    return str(value) if isinstance(value, Decimal) else value


def setting_representation(state: SettingState) -> dict[str, Any]:
    """Return a setting as the API and the ``settings.updated`` event show it."""
    tunable = state.tunable
    return {
        "key": tunable.key,
        "type": tunable.type.value,
        "description": tunable.description,
        "sensitive": tunable.is_sensitive,
        "per_product": tunable.per_product,
        "minimum": public_value(tunable.minimum),
        "maximum": public_value(tunable.maximum),
        "default": masked(tunable, tunable.default_value()),
        "value": masked(tunable, state.effective),
        "is_default": not state.has_value,
        "products": [
            {"product": pid, "value": masked(tunable, value)}
            for pid, value in sorted(state.product_values.items())
        ],
        "updated_at": state.updated_at,
    }
