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
from pms_backend.shopsettings.models import Setting, StoredJsonMixin
from pms_backend.shopsettings.registry import MASK, SCOPES, TUNABLES, Tunable, scope_named


def tunable_for(key: str) -> Tunable:
    """Return the registry entry of ``key``; raise ``NotFound`` ``unknown_setting``."""
    tunable = TUNABLES.get(key) if isinstance(key, str) else None
    if tunable is None:
        raise NotFound(
            Code.UNKNOWN_SETTING,
            f"There is no setting {key!r}; known: {', '.join(sorted(TUNABLES))}.",
        )
    return tunable


def setting_get(key: str, **object_id: int | None) -> Any:
    """Return the value in force for ``key``: the object's own value if ``<scope>_id``
    (e.g. ``product_id``) names one that has it, else the global value, else the default.

    Served from memory while no change has been committed since the last read (see
    ``cache.py``); a change made in the current transaction shows only after commit.
    """
    tunable = tunable_for(key)
    stored = stored_values()
    own_id = _one_keyword(object_id, "_id", required=False)
    if own_id is not None:
        own = stored.object_values.get(key, {})
        if own_id in own:
            return own[own_id]
    if key in stored.values:
        return stored.values[key]
    return tunable.default_value()


def setting_get_many(key: str, **object_ids: Iterable[int]) -> dict[int, Any]:
    """Return ``{object id: value in force}`` for ``key`` and the objects that
    ``<scope>_ids`` (e.g. ``product_ids``) names, reading the cache once."""
    tunable = tunable_for(key)
    ids = _one_keyword(object_ids, "_ids", required=True)
    stored = stored_values()
    own = stored.object_values.get(key, {})
    fallback = stored.values[key] if key in stored.values else tunable.default_value()
    return {pid: own.get(pid, fallback) for pid in ids}


def setting_object_values(key: str) -> dict[int, Any]:
    """Return ``{object id: value}`` for the objects that have a value of their own for
    ``key`` (from the cache)."""
    tunable_for(key)
    return dict(stored_values().object_values.get(key, {}))


def _one_keyword(given: dict[str, Any], suffix: str, *, required: bool) -> Any:
    """Return the value of the one ``<scope><suffix>`` keyword in ``given``."""
    if len(given) > 1 or (required and not given):
        raise TypeError(f"expected one <scope>{suffix} keyword argument, got {sorted(given)}")
    for keyword, value in given.items():
        scope_named(keyword, suffix)
        return value
    return None


@dataclass
class SettingState:
    """A setting as staff see it: the registry entry and what is stored for it, shop-wide
    and per object of its scope (``object_values``)."""

    tunable: Tunable
    has_value: bool = False
    value: Any = None
    object_values: dict[int, Any] = field(default_factory=dict)
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
    values = [scope.values_name for scope in SCOPES.values()]
    for row in Setting.objects.filter(key__in=wanted).prefetch_related(*values):
        states[row.key] = setting_state_of(row)
    return [states[key] for key in wanted]


def setting_state(key: str) -> SettingState:
    (state,) = setting_states([key])
    return state


def setting_state_of(row: Setting) -> SettingState:
    """Return the state a ``Setting`` row holds (its values per object prefetched)."""
    tunable = TUNABLES[row.key]
    state = SettingState(tunable=tunable, updated_at=row.updated_at)
    state.has_value, state.value = _load(tunable, row)
    for scope in SCOPES.values():
        for own in getattr(row, scope.values_name).all():
            ok, value = _load(tunable, own)
            if ok:
                state.object_values[getattr(own, f"{scope.name}_id")] = value
    return state


def _load(tunable: Tunable, row: StoredJsonMixin) -> tuple[bool, Any]:
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
    """Return a setting as the API and the ``settings.updated`` event show it: for each
    scope (e.g. product), ``per_<scope>`` and the values of ``<scope>s``."""
    tunable = state.tunable
    return {
        "key": tunable.key,
        "type": tunable.type.value,
        "description": tunable.description,
        "sensitive": tunable.is_sensitive,
        **{f"per_{name}": tunable.scope == name for name in SCOPES},
        "minimum": public_value(tunable.minimum),
        "maximum": public_value(tunable.maximum),
        "default": masked(tunable, tunable.default_value()),
        "value": masked(tunable, state.effective),
        "is_default": not state.has_value,
        **{
            scope.plural: [
                {name: object_id, "value": masked(tunable, value)}
                for object_id, value in sorted(state.object_values.items())
                if tunable.scope == name
            ]
            for name, scope in SCOPES.items()
        },
        "updated_at": state.updated_at,
    }
