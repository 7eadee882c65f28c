"""Orders as clients see them: the API returns this and the ``order.*`` events carry it
(CONTRACT.md). The orders domain builds it; the API serializers reuse it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from orders.models import Order, OrderItem


class OrderItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderItem
        fields = ["product", "sku", "name", "unit_price", "quantity", "line_total"]
        read_only_fields = fields


class CustomerOutSerializer(serializers.Serializer):
    email = serializers.EmailField(source="customer_email")
    name = serializers.CharField(source="customer_name")


class OrderSerializer(serializers.ModelSerializer):
    items = OrderItemSerializer(many=True, read_only=True)
    customer = CustomerOutSerializer(source="*", read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "status",
            "items",
            "total",
            "currency",
            "reserved_until",
            "customer",
            "shipping_address",
            "cancellation_reason",
            "restocked",
            "created_at",
            "processing_at",
            "completed_at",
            "cancelled_at",
            "refunded_at",
            "updated_at",
        ]
        read_only_fields = fields


# One for the process: building a ModelSerializer's fields costs more than using them,
# and to_representation keeps no state between calls.
_order = OrderSerializer()


def order_payload(order: Order) -> dict[str, Any]:
    """Return an order as the API and the ``order.*`` events show it."""
    return dict(_order.to_representation(order))
