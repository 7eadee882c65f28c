"""Orders, their refunds and returns as clients see them: the API returns these and the
``order.*``, ``refund.*`` and ``return.*`` events carry them (CONTRACT.md). The orders
domain builds them; the API serializers reuse them."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from orders.models import (
    Fulfillment,
    FulfillmentLine,
    Order,
    OrderItem,
    Refund,
    RefundLine,
    Return,
    ReturnLine,
)


class OrderItemSerializer(serializers.ModelSerializer):
    fulfillment_status = serializers.SerializerMethodField(
        help_text="unfulfilled (nothing shipped), partial or fulfilled (every unit shipped)."
    )

    class Meta:
        model = OrderItem
        fields = [
            "product",
            "sku",
            "name",
            "unit_price",
            "quantity",
            "line_total",
            "backordered",
            "quantity_fulfilled",
            "fulfillment_status",
            "quantity_refunded",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "backordered": {
                "help_text": "Units ordered beyond stock (a backorder or preorder) still "
                "waiting for it; 0 once all are allocated. An order is completed only then."
            }
        }

    def get_fulfillment_status(self, item: OrderItem) -> str:
        return line_fulfillment_status(item)


def line_fulfillment_status(item: OrderItem) -> str:
    """Return "unfulfilled", "partial" or "fulfilled": how much of the line has shipped."""
    if item.quantity_fulfilled == 0:
        return "unfulfilled"
    return "fulfilled" if item.quantity_fulfilled >= item.quantity else "partial"


class FulfillmentLineSerializer(serializers.ModelSerializer):
    product = serializers.IntegerField(source="item.product_id", read_only=True)
    sku = serializers.CharField(source="item.sku", read_only=True)

    class Meta:
        model = FulfillmentLine
        fields = ["product", "sku", "quantity"]
        read_only_fields = fields


class FulfillmentSerializer(serializers.ModelSerializer):
    """A shipment as an order shows it (the ``fulfillment.*`` events add the order)."""

    location = serializers.CharField(
        source="location.code", read_only=True, help_text="The code of the location it left."
    )
    lines = FulfillmentLineSerializer(many=True, read_only=True)

    class Meta:
        model = Fulfillment
        fields = [
            "number",
            "status",
            "location",
            "carrier",
            "tracking_number",
            "tracking_url",
            "shipped_at",
            "lines",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CustomerOutSerializer(serializers.Serializer):
    email = serializers.EmailField(source="customer_email")
    name = serializers.CharField(source="customer_name")


class OrderSerializer(serializers.ModelSerializer):
    items = OrderItemSerializer(many=True, read_only=True)
    customer = CustomerOutSerializer(source="*", read_only=True)
    fulfillments = FulfillmentSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "status",
            "items",
            "total",
            "currency",
            "refunded_amount",
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
            "fulfillments",
        ]
        read_only_fields = fields


# One for the process: building a ModelSerializer's fields costs more than using them,
# and to_representation keeps no state between calls.
_order = OrderSerializer()


def order_payload(order: Order) -> dict[str, Any]:
    """Return an order as the API and the ``order.*`` events show it."""
    return dict(_order.to_representation(order))


class FulfillmentOutSerializer(FulfillmentSerializer):
    """A shipment as its endpoints and the ``fulfillment.*`` events show it: as in its
    order's ``fulfillments``, with the order's id, number and status."""

    order = serializers.UUIDField(source="order_id", read_only=True)
    order_number = serializers.CharField(source="order.number", read_only=True)
    order_status = serializers.CharField(source="order.status", read_only=True)

    class Meta(FulfillmentSerializer.Meta):
        fields = [*FulfillmentSerializer.Meta.fields, "order", "order_number", "order_status"]
        read_only_fields = fields


_fulfillment = FulfillmentOutSerializer()


def fulfillment_payload(fulfillment: Fulfillment, order: Order) -> dict[str, Any]:
    """Return a fulfilment of ``order`` as the API and the ``fulfillment.*`` events show it."""
    fulfillment.order = order
    return dict(_fulfillment.to_representation(fulfillment))


CENT = Decimal("0.01")
_moment = serializers.DateTimeField()


def moment_text(value) -> str | None:
    """Return a moment as the order's own fields show it (the API's format)."""
    return _moment.to_representation(value) if value is not None else None


def money_text(amount: Decimal) -> str:
    """Return ``amount`` as the API writes money: a string with two decimals."""
    return str(Decimal(amount).quantize(CENT))


def order_summary(order: Order) -> dict[str, Any]:
    """Return what a refund or a return says of its order: no customer data (storefront
    keys hear these events about their own orders)."""
    return {
        "id": str(order.pk),
        "number": order.number,
        "status": order.status,
        "total": money_text(order.total),
        "refunded_amount": money_text(order.refunded_amount),
        "currency": order.currency,
    }


def refund_payload(
    refund: Refund, lines: Iterable[RefundLine], order: Order, rma_number: str | None = None
) -> dict[str, Any]:
    """Return a refund as the API and the ``refund.created`` event show it. ``lines`` carry
    their ``item`` (read with it). Who paid it is left out: storefront keys read their own
    orders' refunds; the audit log names the actor."""
    return {
        "number": refund.number,
        "order": order_summary(order),
        "amount": money_text(refund.amount),
        "currency": order.currency,
        "reason": refund.reason,
        "return": rma_number,
        "lines": [
            {"product": line.item.product_id, "sku": line.item.sku, "quantity": line.quantity}
            for line in sorted(lines, key=lambda line: line.item.product_id)
        ],
        "created_at": moment_text(refund.created_at),
    }


def return_payload(
    rma: Return, lines: Iterable[ReturnLine], order: Order, refund_number: str | None = None
) -> dict[str, Any]:
    """Return a return (RMA) as the API and the ``return.*`` events show it. ``lines``
    carry their ``item`` and ``location`` (read with them). Who asked for or received it
    is left out, as for refunds (the audit log names them)."""
    return {
        "number": rma.number,
        "order": order_summary(order),
        "status": rma.status,
        "reason": rma.reason,
        "lines": [
            {
                "product": line.item.product_id,
                "sku": line.item.sku,
                "quantity": line.quantity,
                "received": line.quantity_received,
                "restocked": line.quantity_restocked,
                "damaged": line.quantity_damaged,
                "location": line.location.code if line.location is not None else None,
            }
            for line in sorted(lines, key=lambda line: line.item.product_id)
        ],
        "refund": refund_number,
        "cancellation_reason": rma.cancellation_reason,
        "created_at": moment_text(rma.created_at),
        "received_at": moment_text(rma.received_at),
        "refunded_at": moment_text(rma.refunded_at),
        "cancelled_at": moment_text(rma.cancelled_at),
    }
