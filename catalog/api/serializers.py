from decimal import Decimal

from rest_framework import serializers

from catalog.backorders import MAX_WAITING_LIMIT
from catalog.models import (
    CURRENCY_VALIDATOR,
    PRICE_TEXT_MESSAGE,
    SKU_VALIDATOR,
    Category,
    price_text_is_valid,
    validate_attributes,
)
from catalog.payloads import (
    CategorySerializer,
    OptionSerializer,
    ProductListSerializer,
    ProductSerializer,
    VariantSerializer,
)
from pms_backend.api.serializers import StrictInputMixin

# The representations are the catalog's (the events carry them too); the views use them here.
__all__ = [
    "CategorySerializer",
    "CategoryWriteSerializer",
    "OptionSerializer",
    "PriceField",
    "ProductListSerializer",
    "ProductSerializer",
    "ProductWriteSerializer",
    "VariantGenerateSerializer",
    "VariantSerializer",
    "VariantWriteSerializer",
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
    # A product without variants is its own variant: its backorder settings (a product
    # with variants is refused: each variant has its own).
    allow_backorder = serializers.BooleanField(required=False)
    backorder_limit = serializers.IntegerField(
        min_value=0, max_value=MAX_WAITING_LIMIT, allow_null=True, required=False
    )
    preorder_until = serializers.DateTimeField(allow_null=True, required=False)
    preorder_limit = serializers.IntegerField(
        min_value=0, max_value=MAX_WAITING_LIMIT, allow_null=True, required=False
    )
    # Shown so clients learn they exist, refused by StrictInputMixin on input.
    id = serializers.IntegerField(read_only=True)
    options = OptionSerializer(many=True, read_only=True)
    status = serializers.CharField(read_only=True)
    published_at = serializers.DateTimeField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    variants = serializers.ListField(child=serializers.DictField(), read_only=True)


class VariantWriteSerializer(StrictInputMixin, serializers.Serializer):
    """A new variant (``options`` and ``sku`` required), or a change of one (any field)."""

    options = serializers.DictField(
        child=serializers.CharField(max_length=100),
        help_text='A value of each option the product declares: {"Size": "M", "Colour": "Red"}.',
    )
    sku = serializers.CharField(max_length=64, validators=[SKU_VALIDATOR])
    price = PriceField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0"),
        coerce_to_string=True,
        required=False,
        help_text="The product's price unless given.",
    )
    barcode = serializers.CharField(
        max_length=14,
        allow_null=True,
        allow_blank=True,
        required=False,
        help_text="GTIN-8, UPC-A (12), EAN-13 or GTIN-14 with its check digit; unique.",
    )
    weight_grams = serializers.IntegerField(
        min_value=0, max_value=10**9, allow_null=True, required=False
    )
    track_stock = serializers.BooleanField(required=False)
    allow_backorder = serializers.BooleanField(
        required=False, help_text="Take orders beyond stock; the units wait for stock."
    )
    backorder_limit = serializers.IntegerField(
        min_value=0,
        max_value=MAX_WAITING_LIMIT,
        allow_null=True,
        required=False,
        help_text="At most this many units waiting at once (null: no limit).",
    )
    preorder_until = serializers.DateTimeField(
        allow_null=True,
        required=False,
        help_text="Take orders without stock until then (null: no preorders).",
    )
    preorder_limit = serializers.IntegerField(
        min_value=0,
        max_value=MAX_WAITING_LIMIT,
        allow_null=True,
        required=False,
        help_text="At most this many units waiting at once while preorders are taken.",
    )


class VariantGenerateSerializer(StrictInputMixin, serializers.Serializer):
    combinations = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField(max_length=100)),
        min_length=1,
        max_length=1000,
        required=False,
        help_text="The combinations to make; every combination of the options when left out.",
    )


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
