from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pms_backend.api.serializers import StrictInputMixin
from pms_backend.shopsettings.registry import SettingType


@extend_schema_field(OpenApiTypes.ANY)
class SettingValueField(serializers.JSONField):
    """A value of the setting's type: integer, decimal (as a string), boolean, string or
    any JSON; ``"***"`` for a sensitive value."""


class ProductValueSerializer(serializers.Serializer):
    product = serializers.IntegerField()
    value = SettingValueField()


class SettingSerializer(serializers.Serializer):
    key = serializers.CharField()
    type = serializers.ChoiceField(choices=[t.value for t in SettingType])
    description = serializers.CharField()
    sensitive = serializers.BooleanField(help_text="Values are stored encrypted, shown as ***.")
    per_product = serializers.BooleanField(help_text="Products may have values of their own.")
    minimum = SettingValueField(allow_null=True)
    maximum = SettingValueField(allow_null=True)
    default = SettingValueField()
    value = SettingValueField(help_text="The value in force for the whole shop.")
    is_default = serializers.BooleanField(help_text="No value is stored: the default applies.")
    products = ProductValueSerializer(
        many=True, help_text="Products with a value of their own, which beats `value`."
    )
    updated_at = serializers.DateTimeField(allow_null=True)


class SettingWriteSerializer(StrictInputMixin, serializers.Serializer):
    value = SettingValueField(
        allow_null=True,
        help_text=(
            "The new value. null removes the stored value: the default applies again "
            "(with `products`: the shop-wide value applies to them again)."
        ),
    )
    products = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        allow_empty=False,
        max_length=1000,
        help_text="Set the value for these products only (per-product settings).",
    )


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
