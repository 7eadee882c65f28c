from decimal import Decimal

from rest_framework import serializers

from catalog.models import (
    CURRENCY_VALIDATOR,
    PRICE_TEXT_MESSAGE,
    SKU_VALIDATOR,
    Category,
    price_text_is_valid,
    validate_attributes,
)
from catalog.payloads import CategorySerializer, ProductSerializer
from pms_backend.api.serializers import StrictInputMixin

# The representations are the catalog's (the events carry them too); the views use them here.
__all__ = [
    "CategorySerializer",
    "CategoryWriteSerializer",
    "PriceField",
    "ProductSerializer",
    "ProductWriteSerializer",
]


class PriceField(serializers.DecimalField):
    """A price: what DecimalField reads, but only in ASCII digits and never signed."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not price_text_is_valid(data):
            raise serializers.ValidationError(PRICE_TEXT_MESSAGE)
        return super().to_internal_value(data)


class ProductWriteSerializer(StrictInputMixin, serializers.Serializer):
    """What a client may send to create or change a product."""

    sku = serializers.CharField(max_length=64, validators=[SKU_VALIDATOR])
    name = serializers.CharField(max_length=200, allow_blank=False)
    slug = serializers.SlugField(max_length=220, required=False)
    description = serializers.CharField(max_length=10_000, allow_blank=True, required=False)
    price = PriceField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), coerce_to_string=True
    )
    currency = serializers.CharField(
        max_length=3, min_length=3, validators=[CURRENCY_VALIDATOR], required=False
    )
    category = serializers.PrimaryKeyRelatedField(
        queryset=Category.objects.all(), allow_null=True, required=False
    )
    attributes = serializers.JSONField(required=False, validators=[validate_attributes])
    # Shown so clients learn they exist, refused by StrictInputMixin on input.
    id = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True)
    published_at = serializers.DateTimeField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class CategoryWriteSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=140, required=False)
    parent = serializers.PrimaryKeyRelatedField(
        queryset=Category.objects.all(), allow_null=True, required=False
    )
    position = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)
    is_active = serializers.BooleanField(required=False)
    id = serializers.IntegerField(read_only=True)
    children = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
