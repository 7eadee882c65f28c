from decimal import Decimal

from rest_framework import serializers

from catalog.models import (
    CURRENCY_VALIDATOR,
    PRICE_TEXT_MESSAGE,
    SKU_VALIDATOR,
    Category,
    Product,
    price_text_is_valid,
)
from pms_backend.api.serializers import StrictInputMixin

MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_LENGTH = 500


def _storable_text(text: str) -> bool:
    # PostgreSQL's jsonb cannot hold NUL, and no encoder can write an unpaired surrogate.
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def validate_attributes(value):
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be a JSON object of name → value.")
    if len(value) > MAX_ATTRIBUTES:
        raise serializers.ValidationError(f"At most {MAX_ATTRIBUTES} attributes.")
    for name, item in value.items():
        if not 1 <= len(name) <= 100:
            raise serializers.ValidationError("Attribute names must be 1 to 100 characters.")
        if not _storable_text(name) or (isinstance(item, str) and not _storable_text(item)):
            raise serializers.ValidationError(
                f"Attribute {name!r}: null and surrogate characters are not allowed."
            )
        if isinstance(item, dict | list):
            raise serializers.ValidationError(
                f"Attribute {name!r}: values must be strings, numbers, booleans or null."
            )
        if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_LENGTH:
            raise serializers.ValidationError(
                f"Attribute {name!r}: at most {MAX_ATTRIBUTE_LENGTH} characters."
            )
    return value


class PriceField(serializers.DecimalField):
    """A price: what DecimalField reads, but only in ASCII digits and never signed."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not price_text_is_valid(data):
            raise serializers.ValidationError(PRICE_TEXT_MESSAGE)
        return super().to_internal_value(data)


class ProductSerializer(serializers.ModelSerializer):
    """A product as every client sees it (and as events carry it)."""

    price = serializers.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name",
            "slug",
            "description",
            "price",
            "currency",
            "category",
            "attributes",
            "status",
            "published_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


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


class CategorySerializer(serializers.ModelSerializer):
    """A category with its parent and the ids of its children."""

    children = serializers.SerializerMethodField()

    class Meta:
        model = Category
        fields = [
            "id",
            "name",
            "slug",
            "parent",
            "children",
            "position",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_children(self, obj: Category) -> list[int]:
        return [child.pk for child in obj.children.all()]


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
