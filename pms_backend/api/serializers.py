"""Serializer plumbing shared by every app's API."""

from rest_framework import serializers


class StrictInputMixin:
    """Refuse write bodies carrying fields the endpoint does not accept, naming them."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        writable = {name for name, field in self.fields.items() if not field.read_only}
        errors = {}
        for name in data:
            if name in writable:
                continue
            if name in self.fields:
                errors[name] = ["This field is read-only."]
            else:
                errors[name] = ["Unknown field."]
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
