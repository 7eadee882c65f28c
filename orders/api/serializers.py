from rest_framework import serializers

from orders.models import Order, Refund, Return
from orders.payloads import OrderItemSerializer, OrderSerializer, refund_payload, return_payload
from orders.settings_registry import ORDER_LINES_CEILING
from pms_backend.api.serializers import StrictInputMixin

# The order's representation is the domain's (the events carry it too); the views use it here.
__all__ = [
    "CancelSerializer",
    "CustomerSerializer",
    "FulfillmentCreateSerializer",
    "FulfillmentUpdateSerializer",
    "OrderCreateSerializer",
    "OrderItemSerializer",
    "OrderLineSerializer",
    "OrderRefundCreateSerializer",
    "OrderRefundSerializer",
    "OrderSerializer",
    "RefundSerializer",
    "ReturnCancelSerializer",
    "ReturnCreateSerializer",
    "ReturnReceiveSerializer",
    "ReturnRefundSerializer",
    "ReturnSerializer",
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
    # A ``variant`` or (v1) a ``product``, never both; the fields' help says which.
    variant = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="The variant to order (a product without variants is its own variant).",
    )
    product = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="v1's form: a product with exactly one variant (or none). A product with "
        "several is refused with 400 variant_required naming them.",
    )
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)

    def validate(self, attrs):
        if ("variant" in attrs) == ("product" in attrs):
            raise serializers.ValidationError(
                {"variant": ["Name the variant (or, for a product with one, the product)."]}
            )
        return attrs


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


class FulfillmentLineInSerializer(StrictInputMixin, serializers.Serializer):
    product = serializers.IntegerField(
        min_value=1, help_text="The line's product (the variant ordered), as the order shows it."
    )
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)


# --- refunds and returns ------------------------------------------------------------------


class OrderSummarySerializer(serializers.Serializer):
    """What a refund or return says of its order (no customer data)."""

    id = serializers.UUIDField()
    number = serializers.CharField()
    status = serializers.ChoiceField(choices=Order.Status.choices)
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    refunded_amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="Paid back so far, this refund included."
    )
    currency = serializers.CharField()


class RefundLineOutSerializer(serializers.Serializer):
    product = serializers.IntegerField(help_text="The order line's product (its variant).")
    sku = serializers.CharField()
    quantity = serializers.IntegerField(help_text="Units of the line this refund pays back.")


class OrderRefundSerializer(serializers.Serializer):
    """A refund: money paid back on an order (the ``refund.created`` event carries it)."""

    number = serializers.CharField(help_text='"RF-…".')
    order = OrderSummarySerializer()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    reason = serializers.CharField()
    # "return" is a keyword: the field is declared under another name and renamed.
    return_ = serializers.CharField(
        allow_null=True, help_text='The return ("RMA-…") whose goods it pays back, if any.'
    )
    lines = RefundLineOutSerializer(many=True)
    created_at = serializers.DateTimeField()

    def get_fields(self):
        fields = super().get_fields()
        fields["return"] = fields.pop("return_")
        return fields

    def to_representation(self, instance: Refund):
        return refund_payload(
            instance, instance.lines.all(), instance.order, getattr(instance.rma, "number", None)
        )


class ReturnLineOutSerializer(serializers.Serializer):
    product = serializers.IntegerField(help_text="The order line's product (its variant).")
    sku = serializers.CharField()
    quantity = serializers.IntegerField(help_text="Units asked to come back.")
    received = serializers.IntegerField(help_text="Units that came back: restocked + damaged.")
    restocked = serializers.IntegerField(help_text="Units put back on hand at location.")
    damaged = serializers.IntegerField(help_text="Units written off: no stock came back.")
    location = serializers.CharField(
        allow_null=True, help_text="The code of the location the units were restocked at."
    )


class ReturnSerializer(serializers.Serializer):
    """A return (RMA): requested → received → refunded, or cancelled while requested."""

    number = serializers.CharField(help_text='"RMA-…".')
    order = OrderSummarySerializer()
    status = serializers.ChoiceField(choices=Return.Status.choices)
    reason = serializers.CharField()
    lines = ReturnLineOutSerializer(many=True)
    refund = serializers.CharField(allow_null=True, help_text='The refund ("RF-…") paying it.')
    cancellation_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField(allow_null=True)
    refunded_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance: Return):
        refund = getattr(instance, "refund", None) if _has_refund(instance) else None
        return return_payload(
            instance, instance.lines.all(), instance.order, refund.number if refund else None
        )


def _has_refund(rma: Return) -> bool:
    try:
        rma.refund  # noqa: B018 -- read with the return (select_related)
    except Refund.DoesNotExist:
        return False
    return True


class UnitsSerializer(StrictInputMixin, serializers.Serializer):
    product = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="The order line's product (its variant)."
    )
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)


class FulfillmentUpdateSerializer(StrictInputMixin, serializers.Serializer):
    """A shipment's carrier and tracking; each field left out is kept."""

    carrier = serializers.CharField(max_length=100, required=False, allow_blank=True)
    tracking_number = serializers.CharField(max_length=100, required=False, allow_blank=True)
    tracking_url = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="An http:// or https:// address where the parcel is tracked.",
    )
    shipped_at = serializers.DateTimeField(
        required=False, help_text="When it left (default: now); never in the future."
    )


class FulfillmentCreateSerializer(FulfillmentUpdateSerializer):
    """A shipment of a Processing order."""

    lines = FulfillmentLineInSerializer(
        many=True,
        required=False,
        allow_empty=False,
        max_length=ORDER_LINES_CEILING,
        help_text="What ships; a product named twice is added up. Left out: everything "
        "not shipped yet.",
    )
    location = serializers.CharField(
        max_length=64,
        required=False,
        help_text="The code of the location the goods leave from. Left out: where the "
        "lines are reserved, when that is one location (else 400 location_required).",
    )


class OrderRefundCreateSerializer(StrictInputMixin, serializers.Serializer):
    """Units of the order's lines to pay back, and/or an amount."""

    lines = UnitsSerializer(
        many=True,
        required=False,
        default=list,
        max_length=ORDER_LINES_CEILING,
        help_text="Units refunded per line: at most shipped less refunded already. May be "
        "empty when an amount is given (a goodwill refund).",
    )
    amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        required=False,
        coerce_to_string=True,
        help_text="Default: the units' price. More than zero, at most the order's total less "
        "what was refunded already.",
    )
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class ReturnCreateSerializer(StrictInputMixin, serializers.Serializer):
    lines = UnitsSerializer(
        many=True,
        allow_empty=False,
        max_length=ORDER_LINES_CEILING,
        help_text="Units to send back per line: at most shipped less returned already.",
    )
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class ReceiptLineSerializer(StrictInputMixin, serializers.Serializer):
    product = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    restocked = serializers.IntegerField(
        min_value=0,
        max_value=1_000_000,
        required=False,
        default=0,
        help_text="Units put back on hand at location.",
    )
    damaged = serializers.IntegerField(
        min_value=0,
        max_value=1_000_000,
        required=False,
        default=0,
        help_text="Units written off as damaged: no stock comes back.",
    )
    location = serializers.CharField(
        max_length=32,
        required=False,
        help_text="The code of the active location restocked units go to (default: the "
        "shop's first active location).",
    )


class ReturnReceiveSerializer(StrictInputMixin, serializers.Serializer):
    lines = ReceiptLineSerializer(
        many=True,
        allow_empty=False,
        max_length=ORDER_LINES_CEILING,
        help_text="What arrived, per line; at most what the return asked for. A line not "
        "named came back with nothing.",
    )


class ReturnRefundSerializer(StrictInputMixin, serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        required=False,
        coerce_to_string=True,
        help_text="Default: the price of the units received; may be lower, never higher.",
    )
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class ReturnCancelSerializer(StrictInputMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
