"""Every tunable of the shop: its type, default, bounds and meaning; and the kinds of
object a tunable may have values of its own for (its *scope*).

Each app registers its tunables (``register_tunables``), and the app that owns a kind of
object registers it as a scope (``register_scope``), from ``AppConfig.ready()``. A fresh
install runs on the defaults, which are read from Django settings at call time (so the
environment and ``override_settings`` keep working). A stored value, global or for one
object where the tunable's scope allows it, replaces the default once it has passed the
same checks (``Tunable.clean``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import ForeignObjectRel

from pms_backend.api.ratelimit import Rate

if TYPE_CHECKING:
    from django.db.models import Model


class SettingType(StrEnum):
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    STRING = "string"
    JSON = "json"
    SECRET = "secret"  # noqa: S105 - a type name, not a password


# What staff read for each type (the settings list's filter, a setting's page).
TYPE_LABELS = {
    SettingType.INT: "Whole number",
    SettingType.DECIMAL: "Decimal number",
    SettingType.BOOL: "Yes or no",
    SettingType.STRING: "Text",
    SettingType.JSON: "JSON",
    SettingType.SECRET: "Secret",
}

MASK = "***"
MAX_JSON_CHARS = 10_000


@dataclass(frozen=True)
class Tunable:
    key: str
    type: SettingType
    default: Callable[[], Any]
    description: str
    minimum: int | Decimal | None = None
    maximum: int | Decimal | None = None
    max_length: int = 500
    # Raises ValueError with a sentence saying what is wrong.
    check: Callable[[Any], None] | None = None
    # The name of a registered scope whose objects may have values of their own.
    scope: str | None = None
    sensitive: bool = False

    @property
    def is_sensitive(self) -> bool:
        return self.sensitive or self.type == SettingType.SECRET

    def default_value(self) -> Any:
        return self.default()

    def clean(self, value: Any) -> Any:
        """Return ``value`` in its canonical form; raise ``ValueError`` saying what is wrong."""
        value = _CLEANERS[self.type](self, value)
        if self.check is not None:
            self.check(value)
        return value

    def dump(self, value: Any) -> str:
        """Return a clean value as the JSON text the database keeps."""
        if self.type == SettingType.DECIMAL:
            value = str(value)  # a JSON number would go through float
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def load(self, text: str) -> Any:
        """Return the value kept as ``text``; raise ``ValueError`` if it no longer fits."""
        value = json.loads(text)
        return self.clean(value)

    def check_range(self, value: int | Decimal) -> None:
        """Raise ``ValueError`` saying the bounds when ``value`` is outside them."""
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                raise ValueError(f"must be from {low} to {high}")
            if low is not None:
                raise ValueError(f"must be at least {low}")
            raise ValueError(f"must be at most {high}")


# --- one cleaner per type: return the canonical value or raise ValueError ---------------


def _clean_int(tunable: Tunable, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    tunable.check_range(value)
    return value


def _clean_decimal(tunable: Tunable, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("must be a decimal number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite decimal number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError("must be a decimal number") from exc
    if not number.is_finite():
        raise ValueError("must be a finite decimal number")
    tunable.check_range(number)
    return number


def _clean_bool(tunable: Tunable, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _clean_string(tunable: Tunable, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if tunable.type == SettingType.SECRET and not value:
        raise ValueError("must not be empty")
    if len(value) > tunable.max_length:
        raise ValueError(f"must be at most {tunable.max_length} characters")
    return value


def _clean_json(tunable: Tunable, value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError("must be JSON") from exc
    if len(text) > MAX_JSON_CHARS:
        raise ValueError(f"must be at most {MAX_JSON_CHARS} characters as JSON")
    return value


_CLEANERS: dict[SettingType, Callable[[Tunable, Any], Any]] = {
    SettingType.INT: _clean_int,
    SettingType.DECIMAL: _clean_decimal,
    SettingType.BOOL: _clean_bool,
    SettingType.STRING: _clean_string,
    SettingType.SECRET: _clean_string,
    SettingType.JSON: _clean_json,
}


def _rate(value: str) -> None:
    rate = Rate.parse(value)  # its ValueError already says what a rate looks like
    if rate.count < 1:
        raise ValueError("must allow at least one request per period")


@dataclass(frozen=True)
class Scope:
    """A kind of object a tunable may have values of its own for, e.g. ``product``.

    ``value_model`` keeps those values (``StoredJsonMixin``): a ``setting`` foreign key,
    a foreign key named ``name`` to the object, ``value_json`` and ``value_ct``. The API
    and the service name the objects ``<name>s`` (``<name>_ids``, ``<name>_id``); the
    admin shows an object as ``label(obj)``. The refusals: ``unknown_<name>`` for an id
    that names no object, ``setting_not_<name>_scoped`` for a setting of another scope.
    """

    name: str
    value_model: type[Model]
    label: Callable[[Any], str] = str

    @property
    def plural(self) -> str:
        return f"{self.name}s"

    @property
    def object_model(self) -> type[Model]:
        model = self.value_model._meta.get_field(self.name).related_model
        assert isinstance(model, type), f"{self.name} is not a foreign key"
        return model

    @property
    def values_name(self) -> str:
        """The name of a setting's values for objects of this scope (``setting.<it>``)."""
        field = self.value_model._meta.get_field("setting")
        rel = field.remote_field
        accessor = rel.get_accessor_name() if isinstance(rel, ForeignObjectRel) else None
        assert isinstance(accessor, str), "a scope's value model needs a `setting` foreign key"
        return accessor

    @property
    def unknown_code(self) -> str:
        return f"unknown_{self.name}"

    @property
    def not_scoped_code(self) -> str:
        return f"setting_not_{self.name}_scoped"


TUNABLES: dict[str, Tunable] = {}
SCOPES: dict[str, Scope] = {}


def register_tunables(*tunables: Tunable) -> None:
    """Make ``tunables`` known; a key may be registered once."""
    for tunable in tunables:
        if TUNABLES.get(tunable.key, tunable) != tunable:
            raise ValueError(f"setting {tunable.key} is registered twice")
        TUNABLES[tunable.key] = tunable


def register_scope(scope: Scope) -> None:
    """Let tunables with ``scope=scope.name`` have values of their own per object."""
    if SCOPES.get(scope.name, scope) != scope:
        raise ValueError(f"settings scope {scope.name} is registered twice")
    SCOPES[scope.name] = scope


def scope_of(tunable: Tunable) -> Scope | None:
    """Return the scope of ``tunable``'s own values; ``None`` for a shop-wide one."""
    return SCOPES[tunable.scope] if tunable.scope else None


def scope_named(keyword: str, suffix: str) -> Scope:
    """Return the scope a ``<scope><suffix>`` keyword names (``product_ids``: product);
    raise ``TypeError`` like a call with an unknown keyword."""
    scope = SCOPES.get(keyword.removesuffix(suffix)) if keyword.endswith(suffix) else None
    if scope is None:
        raise TypeError(f"unexpected keyword argument {keyword!r}")
    return scope


register_tunables(
    Tunable(
        key="ratelimit.orders_per_minute",
        type=SettingType.STRING,
        default=lambda: settings.PMS_RATE_LIMITS["orders"],
        description=(
            "Order placements allowed per API key or staff user, as count/period "
            "('120/minute', '10/5m')."
        ),
        max_length=40,
        check=_rate,
    )
)
