from collections import Counter

from rest_framework import serializers

from catalog.models import Product
from inventory.models import InventoryMovement, Location, Transfer
from inventory.payloads import transfer_representation
from inventory.services import MANUAL_KINDS, MAX_MOVEMENT_QUANTITY
from pms_backend.api.serializers import StrictInputMixin

MAX_STOCKTAKE_LINES = 10_000


class StockSerializer(serializers.Serializer):
    product = serializers.IntegerField()
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()
    in_stock = serializers.BooleanField()


class LocationStockSerializer(serializers.Serializer):
    location = serializers.CharField()
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()


class StockByLocationSerializer(StockSerializer):
    """The stock as inventory readers see it: also per active location."""

    locations = LocationStockSerializer(
        many=True, required=False, help_text="Only for callers who may read the ledger."
    )


class LocationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Location
        fields = ["code", "name", "address", "is_active", "priority"]
        read_only_fields = fields


class LocationWithStockSerializer(LocationSerializer):
    """A location as inventory readers see it: with the units it holds (only callers who
    may read the ledger get them, so the schema marks them optional)."""

    # Output only, but not read_only: spectacular marks read-only fields required, and a
    # storefront key's answer leaves these out.
    on_hand = serializers.IntegerField(required=False)
    reserved = serializers.IntegerField(required=False)

    class Meta(LocationSerializer.Meta):
        fields = [*LocationSerializer.Meta.fields, "on_hand", "reserved"]
        read_only_fields = fields


class LocationWriteSerializer(StrictInputMixin, serializers.Serializer):
    """A new location (``code`` and ``name`` required), or the fields to change."""

    code = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=200)
    address = serializers.CharField(allow_blank=True, required=False)
    is_active = serializers.BooleanField(required=False)
    priority = serializers.IntegerField(min_value=0, max_value=2_147_483_647, required=False)


class StocktakeCountSerializer(StrictInputMixin, serializers.Serializer):
    product = serializers.IntegerField(min_value=1)
    on_hand = serializers.IntegerField(min_value=0, max_value=MAX_MOVEMENT_QUANTITY)


class StocktakeSerializer(StrictInputMixin, serializers.Serializer):
    """A count sheet of one location: what is on the shelves, product by product."""

    reason = serializers.CharField(max_length=500)
    counts = serializers.ListField(
        child=StocktakeCountSerializer(), allow_empty=False, max_length=MAX_STOCKTAKE_LINES
    )

    def validate_counts(self, counts: list[dict]) -> list[dict]:
        ids = [line["product"] for line in counts]
        twice = sorted(pid for pid, n in Counter(ids).items() if n > 1)
        if twice:
            raise serializers.ValidationError(
                f"Each product once: {', '.join(map(str, twice[:20]))} counted more than once."
            )
        known = set(Product.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [pid for pid in ids if pid not in known]
        if missing:
            raise serializers.ValidationError(
                f"No product has id {', '.join(map(str, missing[:20]))}."
            )
        return counts


class StocktakeResultSerializer(serializers.Serializer):
    location = serializers.CharField()
    counted = serializers.IntegerField()
    movements = serializers.IntegerField()


class MovementSerializer(serializers.ModelSerializer):
    location: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )

    class Meta:
        model = InventoryMovement
        fields = [
            "id",
            "product",
            "location",
            "kind",
            "on_hand_delta",
            "reserved_delta",
            "on_hand_after",
            "reserved_after",
            "reason",
            "reference",
            "actor_label",
            "created_at",
        ]
        read_only_fields = fields


class MovementCreateSerializer(StrictInputMixin, serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(
        queryset=Product.objects.all(),
        required=False,
        help_text="The product (one without variants) or variant whose stock moves.",
    )
    variant = serializers.PrimaryKeyRelatedField(
        queryset=Product.objects.filter(parent__isnull=False),
        required=False,
        help_text="The variant whose stock moves (the same as naming it as product).",
    )
    quantity = serializers.IntegerField(
        min_value=-MAX_MOVEMENT_QUANTITY, max_value=MAX_MOVEMENT_QUANTITY
    )
    kind = serializers.ChoiceField(choices=[str(k) for k in MANUAL_KINDS])
    reason = serializers.CharField(max_length=500, allow_blank=True, required=False, default="")
    location = serializers.CharField(
        max_length=32, required=False, help_text="A location code; default: the default location."
    )

    def validate_quantity(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value

    def validate(self, attrs):
        if ("product" in attrs) == ("variant" in attrs):
            raise serializers.ValidationError(
                {"product": ["Name the product or the variant whose stock moves (one of them)."]}
            )
        attrs["product"] = attrs.pop("variant", None) or attrs["product"]
        return attrs


MAX_TRANSFER_LINES = 1000


class TransferLineSerializer(serializers.Serializer):
    product = serializers.IntegerField()
    quantity = serializers.IntegerField()
    received = serializers.IntegerField()
    in_transit = serializers.IntegerField(help_text="Sent and not arrived: at no location.")


class TransferSerializer(serializers.Serializer):
    """A transfer as ``inventory.payloads.transfer_representation`` shows it (the
    ``transfer.*`` events carry the same)."""

    number = serializers.CharField()
    status = serializers.ChoiceField(choices=Transfer.Status.choices)
    from_location = serializers.CharField(help_text="The location's code.")
    to_location = serializers.CharField(help_text="The location's code.")
    note = serializers.CharField()
    lines = TransferLineSerializer(many=True)
    in_transit = serializers.IntegerField(
        help_text="Units on the way: left from_location, not yet at to_location. Products' "
        "stock totals count goods at locations only, so they leave this out."
    )
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    dispatched_at = serializers.DateTimeField(allow_null=True)
    received_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance):
        return transfer_representation(instance, instance.lines.all())


class TransferLineInputSerializer(StrictInputMixin, serializers.Serializer):
    product = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_MOVEMENT_QUANTITY)


class _LinesInput(StrictInputMixin, serializers.Serializer):
    lines: serializers.ListSerializer = serializers.ListSerializer(
        child=TransferLineInputSerializer(), allow_empty=False, max_length=MAX_TRANSFER_LINES
    )

    def validate_lines(self, value):
        products = [line["product"] for line in value]
        repeated = sorted({p for p in products if products.count(p) > 1})
        if repeated:
            raise serializers.ValidationError(
                f"Each product once per transfer: {', '.join(map(str, repeated))} repeated."
            )
        return {line["product"]: line["quantity"] for line in value}


class TransferCreateSerializer(_LinesInput):
    from_location = serializers.CharField(max_length=32, help_text="A location's code.")
    to_location = serializers.CharField(max_length=32, help_text="A location's code.")
    note = serializers.CharField(max_length=500, allow_blank=True, required=False, default="")


class TransferReceiveSerializer(_LinesInput):
    lines: serializers.ListSerializer = serializers.ListSerializer(
        child=TransferLineInputSerializer(),
        allow_empty=False,
        max_length=MAX_TRANSFER_LINES,
        required=False,
        help_text="What arrived; leave out to receive everything still on the way.",
    )
