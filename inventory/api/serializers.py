from rest_framework import serializers

from catalog.models import Product
from inventory.models import InventoryMovement
from inventory.services import MANUAL_KINDS, MAX_MOVEMENT_QUANTITY
from pms_backend.api.serializers import StrictInputMixin


class StockSerializer(serializers.Serializer):
    product = serializers.IntegerField()
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()
    in_stock = serializers.BooleanField()


class MovementSerializer(serializers.ModelSerializer):
    class Meta:
        model = InventoryMovement
        fields = [
            "id",
            "product",
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
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all())
    quantity = serializers.IntegerField(
        min_value=-MAX_MOVEMENT_QUANTITY, max_value=MAX_MOVEMENT_QUANTITY
    )
    kind = serializers.ChoiceField(choices=[str(k) for k in MANUAL_KINDS])
    reason = serializers.CharField(max_length=500, allow_blank=True, required=False, default="")

    def validate_quantity(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value
