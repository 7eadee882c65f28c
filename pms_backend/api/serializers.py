"""Serializer plumbing shared by every app's API."""

from typing import TYPE_CHECKING

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import force_instance, get_doc
from rest_framework import serializers

# JSON types as the schema states them: DRF alone would read "5" as 5, 1 as true, 5 as "5".
_JSON_TYPES = (
    (serializers.BooleanField, (bool,), "Must be true or false."),
    (serializers.IntegerField, (int,), "Must be a whole number."),
    (serializers.CharField, (str,), "Must be a string."),
    (serializers.DecimalField, (str,), 'Must be a string, such as "12.50".'),
)


def _json_type_error(field, value) -> str | None:
    if value is None:
        return None  # the field's own allow_null decides
    for kind, types, message in _JSON_TYPES:
        if kind is serializers.DecimalField and not getattr(field, "coerce_to_string", False):
            continue  # documented as a number
        if isinstance(field, kind):
            wrong = not isinstance(value, types) or (
                kind is serializers.IntegerField and isinstance(value, bool)
            )
            return message if wrong else None
    return None


if TYPE_CHECKING:
    _SerializerBase = serializers.Serializer  # what the mixin is mixed into
else:
    _SerializerBase = object


class StrictInputMixin(_SerializerBase):
    """Refuse write bodies carrying fields the endpoint does not accept, or values of
    another JSON type than the field's, naming them."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        writable = {name for name, field in self.fields.items() if not field.read_only}
        errors = {}
        for name, value in data.items():
            if name in writable:
                message = _json_type_error(self.fields[name], value)
                if message:
                    errors[name] = [message]
                continue
            if name in self.fields:
                errors[name] = ["This field is read-only."]
            else:
                errors[name] = ["Unknown field."]
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def _without_mixin_docstring(schema: dict) -> dict:
    """Drop a description that is StrictInputMixin's docstring.

    drf-spectacular describes a serializer with the nearest docstring of its ancestry: for
    one without its own, the mixin's, which is written for us, not for a storefront
    developer.
    """
    if schema.get("description") == get_doc(StrictInputMixin):
        del schema["description"]
    return schema


class StrictInputSchema(OpenApiSerializerExtension):
    """The schema says what StrictInputMixin does: no properties beyond those documented,
    and lists of nested objects as long as they may be."""

    target_class = StrictInputMixin
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = _without_mixin_docstring(
            auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        )
        if direction != "request":
            return schema
        schema["additionalProperties"] = False
        for name, field in force_instance(self.target).fields.items():
            prop = schema.get("properties", {}).get(name)
            if not isinstance(field, serializers.ListSerializer) or not prop:
                continue
            if not field.allow_empty:
                prop.setdefault("minItems", 1)
            # DRF's ListSerializer has them since 3.15; the stubs do not yet.
            min_length = getattr(field, "min_length", None)
            max_length = getattr(field, "max_length", None)
            if min_length is not None:
                prop["minItems"] = max(min_length, prop.get("minItems", 0))
            if max_length is not None:
                prop.setdefault("maxItems", max_length)
        for name, field in force_instance(self.target).fields.items():
            prop = schema.get("properties", {}).get(name)
            if isinstance(field, serializers.DecimalField) and prop and prop.get("pattern"):
                prop["pattern"] = _decimal_pattern(field)
        return schema


def _decimal_pattern(field: serializers.DecimalField) -> str:
    """What DecimalField reads from a string: at least one digit, no sign below zero."""
    whole = (field.max_digits or 30) - (field.decimal_places or 0)
    places = field.decimal_places or 0
    sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
    # [0-9], not \d: to a Python reader of the schema \d means any Unicode digit.
    if not places:
        return rf"^{sign}[0-9]{{1,{whole}}}$"
    return rf"^{sign}(?:[0-9]{{1,{whole}}}(?:\.[0-9]{{0,{places}}})?|\.[0-9]{{1,{places}}})$"
