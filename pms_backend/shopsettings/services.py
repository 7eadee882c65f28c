"""Changing settings. Each change is one transaction: the value, its audit entry and a
``settings.updated`` event; every process reads the new value once it has committed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connections, transaction

from audit.actors import Actor
from audit.services import audit_record
from pms_backend.errors import InvalidInput, NotFound
from pms_backend.events.services import publish
from pms_backend.plurals import noun
from pms_backend.shopsettings.cache import settings_changed
from pms_backend.shopsettings.errors import SettingErrorCode as Code
from pms_backend.shopsettings.models import Setting
from pms_backend.shopsettings.registry import SCOPES, TUNABLES, Scope, Tunable, scope_named
from pms_backend.shopsettings.selectors import (
    SettingState,
    masked,
    setting_get,
    setting_representation,
    setting_state,
    tunable_for,
)

__all__ = [
    "setting_clean",
    "setting_get",  # reads live in selectors; here too for callers of "the service"
    "setting_reset",
    "setting_set",
    "settings_set_many",
    "settings_sync_registry",
]

# Stands for "no stored value: the default (or the global value) applies".
UNSET: Any = object()


def setting_set(
    *, actor: Actor, key: str, value: Any, **object_ids: Iterable[int] | None
) -> SettingState:
    """Store ``value`` for ``key``: globally, or only for each object that
    ``<scope>_ids`` names (e.g. ``product_ids``, for a setting of the product scope).

    Raise ``NotFound`` for an unknown key (``unknown_setting``) or object (the scope's
    code, e.g. ``unknown_product``), and ``InvalidInput`` naming what is wrong with the
    value; nothing is written then.
    """
    tunable = tunable_for(key)
    clean = _clean(tunable, value, field="value")
    objects = _check_objects(tunable, object_ids)
    with transaction.atomic():
        return _write(actor=actor, tunable=tunable, value=clean, objects=objects)


def setting_clean(key: str, value: Any) -> Any:
    """Return ``value`` as ``key`` stores it, or raise what ``setting_set`` would raise
    (forms check with it before saving)."""
    return _clean(tunable_for(key), value, field="value")


def setting_reset(*, actor: Actor, key: str, **object_ids: Iterable[int] | None) -> SettingState:
    """Remove the global value of ``key`` (the default applies again), or the values of
    the objects ``<scope>_ids`` names (the global value applies to them again)."""
    tunable = tunable_for(key)
    objects = _check_objects(tunable, object_ids)
    with transaction.atomic():
        return _write(actor=actor, tunable=tunable, value=UNSET, objects=objects)


def settings_set_many(*, actor: Actor, values: Mapping[str, Any]) -> list[SettingState]:
    """Store several global values at once, all or none; ``None`` resets one to its
    default. Every unknown key and bad value is named in one refusal."""
    if not isinstance(values, Mapping) or not values:
        raise InvalidInput(
            Code.INVALID_VALUE,
            "Send an object of setting keys and their values.",
            errors={"non_field_errors": ["Expected a non-empty object."]},
        )
    unknown = sorted(str(key) for key in values if key not in TUNABLES)
    if unknown:
        raise NotFound(
            Code.UNKNOWN_SETTING,
            f"Unknown {noun(unknown, 'setting')}: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(TUNABLES))}.",
            errors={key: ["Unknown setting."] for key in unknown},
        )
    cleaned, errors = {}, {}
    for key, value in sorted(values.items()):
        try:
            cleaned[key] = UNSET if value is None else _clean(TUNABLES[key], value, field=key)
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidInput(
            Code.INVALID_VALUE,
            "; ".join(f"{key} {messages[0]}" for key, messages in errors.items()) + ".",
            errors=errors,
        )
    with transaction.atomic():
        return [
            _write(actor=actor, tunable=TUNABLES[key], value=value, objects=None)
            for key, value in cleaned.items()
        ]


def settings_sync_registry(*, using: str = "default") -> None:
    """Give every tunable of the registry its row, with the registry's type, description
    and sensitivity (run after ``migrate``). Values are kept, re-stored encrypted or in
    plain text when a tunable's sensitivity changed."""
    connection = connections[using]
    if Setting._meta.db_table not in connection.introspection.table_names():
        return  # migrating backwards, or only some apps
    with transaction.atomic(using=using):
        for tunable in TUNABLES.values():
            setting, created = Setting.objects.using(using).get_or_create(
                key=tunable.key, defaults=_metadata(tunable)
            )
            if created or _metadata(setting) == _metadata(tunable):
                continue
            resensitize = setting.sensitive != tunable.is_sensitive
            for name, value in _metadata(tunable).items():
                setattr(setting, name, value)
            if resensitize:
                setting.store_json(setting.stored_json(), sensitive=tunable.is_sensitive)
                for scope in SCOPES.values():
                    for own in getattr(setting, scope.values_name).using(using).all():
                        own.store_json(own.stored_json(), sensitive=tunable.is_sensitive)
                        own.save(using=using)
            setting.save(using=using)


# --- internals -------------------------------------------------------------------------


def _metadata(source: Tunable | Setting) -> dict[str, Any]:
    if isinstance(source, Setting):
        return {name: getattr(source, name) for name in ("type", "description", "sensitive")}
    return {
        "type": source.type.value,
        "description": source.description,
        "sensitive": source.is_sensitive,
    }


def _clean(tunable: Tunable, value: Any, *, field: str) -> Any:
    try:
        return tunable.clean(value)
    except ValueError as exc:
        raise InvalidInput(
            Code.INVALID_VALUE, f"{tunable.key} {exc}.", errors={field: [str(exc).capitalize()]}
        ) from exc


# The objects a write is for: their scope and their ids (``None``: the global value).
Objects = tuple[Scope, list[int]] | None


def _check_objects(tunable: Tunable, given: dict[str, Iterable[int] | None]) -> Objects:
    named = {keyword: ids for keyword, ids in given.items() if ids is not None}
    if not named:
        return None
    if len(named) > 1:
        raise TypeError(f"expected one <scope>_ids keyword argument, got {sorted(named)}")
    ((keyword, object_ids),) = named.items()
    scope = scope_named(keyword, "_ids")
    if tunable.scope != scope.name:
        raise InvalidInput(
            scope.not_scoped_code,
            f"{tunable.key} applies to the whole shop; it cannot be set per {scope.name}.",
            errors={scope.plural: [f"This setting has no per-{scope.name} values."]},
        )
    ids = list(object_ids)
    if not ids or any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
        raise InvalidInput(
            Code.INVALID_VALUE,
            f"{scope.plural.capitalize()} must be a non-empty list of {scope.name} ids.",
            errors={scope.plural: ["Expected a non-empty list of integers."]},
        )
    ids = sorted(set(ids))
    found = set(scope.object_model._default_manager.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        listed = ", ".join(map(str, missing))
        which = f"the id {listed}" if len(missing) == 1 else f"any of the ids {listed}"
        raise NotFound(
            scope.unknown_code,
            f"No {scope.name} has {which}.",
            errors={scope.plural: [f"Unknown {scope.name} {noun(missing, 'id')}: {listed}."]},
        )
    return scope, ids


def _lock(tunable: Tunable) -> Setting:
    """Return the setting's row, locked: writers of one key take turns."""
    Setting.objects.get_or_create(key=tunable.key, defaults=_metadata(tunable))
    return Setting.objects.select_for_update().get(pk=tunable.key)


def _loaded(tunable: Tunable, text: str) -> Any:
    if not text:
        return None
    try:
        return tunable.load(text)
    except ValueError:
        return None


def _change(tunable: Tunable, before: Any, after: Any) -> dict[str, Any]:
    # Compared in the clear, recorded masked: a new secret is a change even though the
    # audit log shows *** on both sides.
    return {"before": masked(tunable, before), "after": masked(tunable, after)}


def _write(*, actor: Actor, tunable: Tunable, value: Any, objects: Objects) -> SettingState:
    setting = _lock(tunable)
    sensitive = tunable.is_sensitive
    text = "" if value is UNSET else tunable.dump(value)
    after = None if value is UNSET else value
    changes: dict[str, Any] = {}
    if objects is None:
        stored = setting.stored_json()
        if stored != text:
            setting.store_json(text, sensitive=sensitive)
            setting.save()
            changes["value"] = _change(tunable, _loaded(tunable, stored), after)
    else:
        scope, object_ids = objects
        id_field = f"{scope.name}_id"
        existing: dict[int, Any] = {
            getattr(own, id_field): own
            for own in scope.value_model._default_manager.filter(
                setting=setting, **{f"{id_field}__in": object_ids}
            )
        }
        for object_id in object_ids:
            own: Any = existing.get(object_id)
            stored = own.stored_json() if own else ""
            if stored == text:
                continue
            if value is UNSET:
                own.delete()
            else:
                own = own or scope.value_model(setting=setting, **{id_field: object_id})
                own.store_json(text, sensitive=sensitive)
                own.save()
            changes[f"{scope.name}:{object_id}"] = _change(tunable, _loaded(tunable, stored), after)
        if changes:
            setting.save(update_fields=["updated_at"])
    state = setting_state(tunable.key)
    if changes:
        audit_record(actor=actor, action="setting.updated", target=setting, changes=changes)
        publish(
            "settings.updated",
            setting_representation(state) | {"changed": sorted(changes)},
            subject=f"setting:{tunable.key}",
        )
        settings_changed()
    return state
