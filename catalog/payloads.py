"""Products and categories as clients see them: the API returns these and the
``product.*`` / ``category.*`` events carry them (CONTRACT.md: "data holds the object as
the API would return it"). The catalog builds them; the API serializers reuse them."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from catalog.fields import PRODUCT_REPRESENTATION_FIELDS
from catalog.models import Category, Product


class ProductSerializer(serializers.ModelSerializer):
    """A product as every client sees it (and as events carry it)."""

    price = serializers.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        model = Product
        fields = list(PRODUCT_REPRESENTATION_FIELDS)
        read_only_fields = fields


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


# One of each for the process: building a ModelSerializer's fields costs more than using
# them (an import announces thousands of products), and to_representation keeps no state.
_product = ProductSerializer()
_category = CategorySerializer()


def product_payload(product: Product) -> dict[str, Any]:
    """Return ``product`` as the API shows it and the ``product.*`` events carry it."""
    return dict(_product.to_representation(product))


def category_payload(category: Category) -> dict[str, Any]:
    """Return ``category`` as the API shows it and the ``category.updated`` event carries it."""
    return dict(_category.to_representation(category))
