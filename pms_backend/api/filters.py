"""Filter pieces shared by every app's API."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework import filters, serializers

MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """A whole-number id in the key range; "1.5" or 10**25 is refused, never read as 1 or a 500."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.Field):
    """``true`` or ``false`` as JSON spells them; anything else is invalid, not ignored."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if value in ("true", "false"):
            return value == "true"
        raise ValidationError('Use "true" or "false".', code="invalid")


@extend_schema_field({"type": "boolean"})
class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 moment, handed to the database in UTC.

    Python accepts offsets up to ±23:59 but PostgreSQL only up to ±15:59, and a moment near
    the ends of the calendar may not exist in UTC at all: both are invalid input, not a 500.
    """

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Out of the supported range of dates.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class StrictOrderingFilter(filters.OrderingFilter):
    """DRF's ``ordering``, but a field it does not offer is a 400 naming the ones it does,
    not silently ignored (a client would page through an order it never asked for)."""

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if raw:
            valid = self.get_valid_fields(queryset, view, {"request": request})
            allowed = [name for name, _ in valid]
            terms = [term.strip() for term in raw.split(",") if term.strip()]
            unknown = [term for term in terms if term.removeprefix("-") not in allowed]
            if unknown:
                raise serializers.ValidationError(
                    {
                        self.ordering_param: [
                            f"Unknown ordering {', '.join(repr(t[:50]) for t in unknown[:5])}; "
                            f"allowed: {', '.join(allowed)} (prefix - to reverse)."
                        ]
                    }
                )
        return super().get_ordering(request, queryset, view)


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend (every API's default), but a list asked for without any of
    its filters is its queryset as it is: django-filter would build the filter set's form,
    its fields and deep copies of its filters on every request only to apply nothing (an
    eighth of an uncached product page's CPU, scripts/bench.sh catalog). A parameter that
    begins like a filter's name reads through to django-filter, as do all others."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return queryset
        names = tuple(filterset_class.base_filters)
        if not any(parameter.startswith(names) for parameter in request.query_params):
            return queryset
        return super().filter_queryset(request, queryset, view)


def ordering_pattern(fields: list[str]) -> str:
    """The schema pattern of an ``ordering`` value over ``fields``."""
    one = f"-?(?:{'|'.join(fields)})"
    return f"^{one}(?:,{one})*$"
