"""Products, variants and categories as clients see them: the API returns these and the
``product.*`` / ``variant.*`` / ``category.*`` events carry them (CONTRACT.md: "data holds
the object as the API would return it"). The catalog builds them; the API serializers
reuse them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.availability import availability_of
from catalog.fields import PRODUCT_LIST_FIELDS, PRODUCT_REPRESENTATION_FIELDS
from catalog.models import Category, Product
from catalog.selectors import VARIANT_SHOWN_FIELDS, variant_rows_of


class VariantSerializer(serializers.Serializer):
    """A variant as every client sees it (``variant_payload`` builds it; this describes it)."""

    id = serializers.IntegerField(
        help_text='What orders, stock and transfers name (``{"variant": id}``).'
    )
    product = serializers.IntegerField(
        help_text="The product it belongs to (its own id for a product without variants)."
    )
    sku = serializers.CharField()
    barcode = serializers.CharField(allow_null=True, help_text="GTIN-8/12/13/14, or null.")
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    options = serializers.DictField(
        child=serializers.CharField(),
        help_text='One value of each option the product declares: {"Size": "M"}.',
    )
    weight_grams = serializers.IntegerField(allow_null=True)
    track_stock = serializers.BooleanField()
    allow_backorder = serializers.BooleanField(
        help_text="Orders beyond stock are taken; their units wait for the next arrival."
    )
    backorder_limit = serializers.IntegerField(
        allow_null=True, help_text="At most this many units waiting at once (null: no limit)."
    )
    preorder_until = serializers.DateTimeField(
        allow_null=True, help_text="Orders without stock are taken until then (preorders)."
    )
    preorder_limit = serializers.IntegerField(
        allow_null=True,
        help_text="At most this many units waiting at once while preorders are taken "
        "(null: no limit). With backorders allowed too, the larger limit applies.",
    )
    status = serializers.CharField(help_text="Always its product's status.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    available = serializers.IntegerField(
        help_text="Units on hand and not reserved, summed over the active locations."
    )
    in_stock = serializers.BooleanField(help_text="available > 0.")


class OptionSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    values = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100)


@extend_schema_field(OptionSerializer(many=True))
class OptionsField(serializers.JSONField):
    """A product's declared options, shown as stored (a nested serializer per product
    cost a list page of 20 half a millisecond more)."""


class ProductSerializer(serializers.ModelSerializer):
    """A product as every client sees it (and as events carry it). ``variants`` is filled
    by ``product_payload`` (the serializer alone leaves it out: the lists)."""

    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    options = OptionsField(read_only=True)
    variants = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = list(PRODUCT_REPRESENTATION_FIELDS)
        read_only_fields = fields

    @extend_schema_field(VariantSerializer(many=True))
    def get_variants(self, obj: Product) -> list[dict[str, Any]]:
        return product_payload(obj)["variants"]


class ProductListSerializer(ProductSerializer):
    """A product in a list: without its variants (read the product for them)."""

    class Meta(ProductSerializer.Meta):
        fields = list(PRODUCT_LIST_FIELDS)
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
_product = ProductListSerializer()
_category = CategorySerializer()


def _stamp(moment) -> str:
    """A moment as DRF's DateTimeField writes it in the current time zone, which is UTC
    (settings.TIME_ZONE): ``…Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _list_column(name: str) -> tuple[str, Any]:
    """The column ``product_list_item`` reads for the list field ``name``, and how it
    shows its value as ``ProductListSerializer`` would (None stays None)."""
    field = Product._meta.get_field(name)
    if isinstance(field, models.ForeignKey):
        return field.attname, None  # the related object's id
    if isinstance(field, models.DateTimeField):
        return name, _stamp  # UTC (settings.TIME_ZONE), as DRF writes it: ...Z
    if isinstance(field, models.DecimalField):
        return name, f"{{:.{field.decimal_places}f}}".format
    if isinstance(field, (models.CharField, models.TextField, models.JSONField, models.AutoField)):
        return name, None  # as stored (a JSON column decoded)
    raise ImproperlyConfigured(
        f"product_list_item does not know how to show {name} ({type(field).__name__})"
    )


_LIST_COLUMNS = {name: _list_column(name) for name in PRODUCT_LIST_FIELDS}
# What a list of products reads of each: ``queryset.values(*PRODUCT_LIST_COLUMNS)``.
PRODUCT_LIST_COLUMNS = tuple(column for column, _ in _LIST_COLUMNS.values())


def product_list_item(row: dict[str, Any]) -> dict[str, Any]:
    """A product as the lists show it (``ProductListSerializer``'s representation, which
    the schema describes and a test holds this to), from its ``PRODUCT_LIST_COLUMNS``.

    The product lists build their pages with this rather than the serializer: DRF's
    fields (built for each request, then called per field and row) and model instances
    made about half of an uncached page's CPU (scripts/bench.sh catalog)."""
    item = {}
    for name, (column, show) in _LIST_COLUMNS.items():
        value = row[column]
        item[name] = value if show is None or value is None else show(value)
    return item


def variant_payload(variant: Product, *, available: int | None = None) -> dict[str, Any]:
    """A variant as the API shows it and the ``variant.*`` events carry it; ``available``
    is read from stock unless given. A product without variants passed here is shown as
    its own single variant (``product`` is then its own id)."""
    if available is None:
        available = availability_of([variant.pk])[variant.pk]
    row = {name: getattr(variant, name) for name in VARIANT_SHOWN_FIELDS}
    return _variant_shown(row, available)


def _variant_shown(row: dict[str, Any], available: int) -> dict[str, Any]:
    """A variant's representation from its ``VARIANT_SHOWN_FIELDS``."""
    return {
        "id": row["id"],
        "product": row["parent_id"] or row["id"],
        "sku": row["sku"],
        "barcode": row["barcode"],
        # A Decimal read back, or as a caller gave it (a string is a price too).
        "price": f"{Decimal(row['price']):.2f}",
        "currency": row["currency"],
        "options": dict(row["option_values"]),
        "weight_grams": row["weight_grams"],
        "track_stock": row["track_stock"],
        "allow_backorder": row["allow_backorder"],
        "backorder_limit": row["backorder_limit"],
        "preorder_until": _stamp(row["preorder_until"]) if row["preorder_until"] else None,
        "preorder_limit": row["preorder_limit"],
        "status": row["status"],
        "created_at": _stamp(row["created_at"]),
        "updated_at": _stamp(row["updated_at"]),
        "available": available,
        "in_stock": available > 0,
    }


class PayloadBatch:
    """Product payloads made one by one, each the product as it is when added (a bulk
    write records a product at each of its steps), whose variants and their availability
    are read for all of them at once by ``complete``: two queries at most, however many
    products and variants (no variant query for products without options: only a product
    that declares options can have variants)."""

    def __init__(self) -> None:
        self._pending: list[tuple[Product, dict[str, Any]]] = []

    def add(self, product: Product) -> dict[str, Any]:
        """Return ``product``'s payload; its ``variants`` are complete after ``complete``."""
        payload = dict(_product.to_representation(product))
        # A product without options is its own single variant: shown as it is now.
        payload["variants"] = None if product.options else [variant_payload(product, available=0)]
        self._pending.append((product, payload))
        return payload

    def complete(self) -> None:
        """Fill in the variants of every payload added, and what is available of each."""
        pending, self._pending = self._pending, []
        found = variant_rows_of([p.pk for p, payload in pending if payload["variants"] is None])
        for product, payload in pending:
            if payload["variants"] is None:
                rows = found.get(product.pk)
                payload["variants"] = (
                    [_variant_shown(row, 0) for row in rows]
                    if rows
                    else [variant_payload(product, available=0)]
                )
        fill_availability([v for _, payload in pending for v in payload["variants"]])


def fill_availability(variants: list[dict[str, Any]]) -> None:
    """Set ``available`` and ``in_stock`` of these variant representations: one query."""
    available = availability_of(v["id"] for v in variants)
    for variant in variants:
        variant["available"] = available[variant["id"]]
        variant["in_stock"] = variant["available"] > 0


def product_payloads(products: Iterable[Product]) -> list[dict[str, Any]]:
    """Return ``products`` as the API shows each one (with its variants) and the
    ``product.*`` events carry it, in the queries of ``PayloadBatch.complete``."""
    batch = PayloadBatch()
    payloads = [batch.add(p) for p in products]
    batch.complete()
    return payloads


def product_payload(product: Product) -> dict[str, Any]:
    """Return ``product`` as the API shows it and the ``product.*`` events carry it."""
    return product_payloads([product])[0]


def category_payload(category: Category) -> dict[str, Any]:
    """Return ``category`` as the API shows it and the ``category.updated`` event carries it."""
    return dict(_category.to_representation(category))
