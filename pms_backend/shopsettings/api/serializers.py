from functools import cache

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pms_backend.api.serializers import StrictInputMixin
from pms_backend.shopsettings.registry import SCOPES, Scope, SettingType


@extend_schema_field(OpenApiTypes.ANY)
class SettingValueField(serializers.JSONField):
    """A value of the setting's type: integer, decimal (as a string), boolean, string or
    any JSON; ``"***"`` for a sensitive value."""


@cache
def object_value_serializer(scope: Scope) -> type[serializers.Serializer]:
    """The serializer of one object's own value, e.g. ``{"product": 7, "value": 3}``."""
    return type(
        f"{scope.name.title()}ValueSerializer",
        (serializers.Serializer,),
        {
            "__module__": __name__,
            scope.name: serializers.IntegerField(),
            "value": SettingValueField(),
        },
    )


def _after(fields: dict, anchor: str, extra: dict) -> dict:
    """Return ``fields`` with ``extra`` inserted after ``anchor`` (the API's field order)."""
    ordered = {}
    for name, field in fields.items():
        ordered[name] = field
        if name == anchor:
            ordered |= extra
    return ordered


# For each scope (e.g. product), a setting also shows ``per_<scope>`` and ``<scope>s``
# (added by get_fields; no docstring: it would become the schema's description).
class SettingSerializer(serializers.Serializer):
    key = serializers.CharField()
    type = serializers.ChoiceField(choices=[t.value for t in SettingType])
    description = serializers.CharField()
    sensitive = serializers.BooleanField(help_text="Values are stored encrypted, shown as ***.")
    minimum = SettingValueField(allow_null=True)
    maximum = SettingValueField(allow_null=True)
    default = SettingValueField()
    value = SettingValueField(help_text="The value in force for the whole shop.")
    is_default = serializers.BooleanField(help_text="No value is stored: the default applies.")
    updated_at = serializers.DateTimeField(allow_null=True)

    def get_fields(self):
        # The scopes are registered by the apps that own them, after this class is built.
        fields = super().get_fields()
        fields = _after(
            fields,
            "sensitive",
            {
                f"per_{scope.name}": serializers.BooleanField(
                    help_text=f"{scope.plural.capitalize()} may have values of their own."
                )
                for scope in SCOPES.values()
            },
        )
        return _after(
            fields,
            "is_default",
            {
                scope.plural: object_value_serializer(scope)(
                    many=True,
                    help_text=(
                        f"{scope.plural.capitalize()} with a value of their own, "
                        "which beats `value`."
                    ),
                )
                for scope in SCOPES.values()
            },
        )


# For a setting of a scope (e.g. product), ``<scope>s`` limits a new value to those
# objects (added by get_fields; no docstring: it would become the schema's description).
class SettingWriteSerializer(StrictInputMixin, serializers.Serializer):
    value = SettingValueField(allow_null=True)

    def get_fields(self):
        fields = super().get_fields()
        plurals = [scope.plural for scope in SCOPES.values()]
        with_them = " or ".join(f"`{plural}`" for plural in plurals)
        fields["value"].help_text = (
            "The new value. null removes the stored value: the default applies again"
            + (
                f" (with {with_them}: the shop-wide value applies to them again)."
                if plurals
                else "."
            )
        )
        for scope in SCOPES.values():
            fields[scope.plural] = serializers.ListField(
                child=serializers.IntegerField(min_value=1),
                required=False,
                allow_empty=False,
                max_length=1000,
                help_text=(
                    f"Set the value for these {scope.plural} only (per-{scope.name} settings)."
                ),
            )
        return fields


class SettingPageSerializer(serializers.Serializer):
    """The list of settings, as ``GET /settings/`` pages it."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SettingSerializer(many=True)


SETTINGS_MAP_SCHEMA = {
    "type": "object",
    "description": "Setting keys and their new values; null resets a key to its default.",
    "minProperties": 1,
    "additionalProperties": {"description": "A value of the setting's type, or null."},
    "example": {"orders.reservation_minutes": 45, "orders.max_lines": None},
}


def settings_map_field() -> serializers.DictField:
    """The body of ``PUT /settings/`` (documented by ``SETTINGS_MAP_SCHEMA``)."""
    return serializers.DictField(child=SettingValueField(allow_null=True), allow_empty=False)
