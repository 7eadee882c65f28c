from rest_framework import serializers

from orders.models import Order
from orders.payloads import OrderItemSerializer, OrderSerializer
from orders.settings_registry import ORDER_LINES_CEILING
from pms_backend.api.serializers import StrictInputMixin

# The order's representation is the domain's (the events carry it too); the views use it here.
__all__ = [
    "CancelSerializer",
    "CustomerSerializer",
    "OrderCreateSerializer",
    "OrderItemSerializer",
    "OrderLineSerializer",
    "OrderSerializer",
    "RefundSerializer",
    "ShippingAddressSerializer",
    "TransitionSerializer",
]


class CustomerSerializer(StrictInputMixin, serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=200)


class ShippingAddressSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(max_length=20)
    region = serializers.CharField(max_length=100, required=False, allow_blank=True)
    country = serializers.RegexField(
        r"^[A-Z]{2}$", max_length=2, error_messages={"invalid": "Use an ISO 3166 alpha-2 code."}
    )
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)


class OrderLineSerializer(StrictInputMixin, serializers.Serializer):
    product = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)


class OrderCreateSerializer(StrictInputMixin, serializers.Serializer):
    """A new order. Prices come from the catalog; a product named twice is merged."""

    # The ceiling of the orders.max_lines setting; the service checks the setting itself.
    items = OrderLineSerializer(many=True, allow_empty=False, max_length=ORDER_LINES_CEILING)
    customer = CustomerSerializer()
    shipping_address = ShippingAddressSerializer()


class TransitionSerializer(StrictInputMixin, serializers.Serializer):
    """Optional body of every order transition."""

    expected_status = serializers.ChoiceField(
        choices=Order.Status.choices,
        required=False,
        help_text="The status you saw. If the order has moved on since, the transition is "
        "refused (409 concurrent_modification) instead of applied to the new state.",
    )


class RefundSerializer(TransitionSerializer):
    restock = serializers.BooleanField(required=False, default=False)


class CancelSerializer(TransitionSerializer):
    reason = serializers.CharField(max_length=200, required=False, default="")
