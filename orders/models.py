import secrets
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from catalog.models import Product
from pms_backend.apikeys.models import ApiKey
from pms_backend.encryption.attributes import EncryptedAttribute

_NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud on the phone


def new_order_number() -> str:
    return "PMS-" + "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(8))


class Order(ConcurrentTransitionMixin, models.Model):
    """A customer's order. Pending holds a stock reservation until ``reserved_until``.

    Pending → Processing → Completed → Refunded; Pending or Processing → Cancelled.
    ``orders.services.order_transition`` applies the moves with their stock effects;
    saving with a stale status raises ``ConcurrentTransition`` (exactly one racer wins).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    OPEN_STATUSES = (Status.PENDING, Status.PROCESSING)

    # Not guessable (a storefront cannot walk other shops' order ids), and known before
    # the insert, so encrypted columns can bind the row's key as associated data.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True, default=new_order_number)
    status = FSMField(default=Status.PENDING, choices=Status.choices, protected=True)
    # Customer data is encrypted at rest (AES-256-GCM, bound to this row); the e-mail is
    # findable through its blind index, never by decrypting every row.
    customer_email_ct = models.TextField(db_column="customer_email", blank=True, editable=False)
    customer_email_index = models.CharField(max_length=64, db_index=True, editable=False)
    customer_name_ct = models.TextField(db_column="customer_name", blank=True, editable=False)
    shipping_address_ct = models.TextField(db_column="shipping_address", blank=True, editable=False)
    customer_email = EncryptedAttribute("customer_email_ct", index_field="customer_email_index")
    customer_name = EncryptedAttribute("customer_name_ct")
    shipping_address = EncryptedAttribute("shipping_address_ct", kind="json")
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    reserved_until = models.DateTimeField(null=True, blank=True)
    cancellation_reason = models.CharField(max_length=200, blank=True)
    restocked = models.BooleanField(null=True, blank=True)
    # What has been paid back so far, in the order's currency: the sum of its refunds
    # (orders.refunds); equal to ``total`` once the order is Refunded.
    refunded_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    api_key = models.ForeignKey(
        ApiKey,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name="API key",
    )
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Set by ``order_place`` (its ``now``: the placement moment, back-dated only by the demo
    # data), never edited afterwards.
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    processing_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["reserved_until"],
                name="order_pending_expiry_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["api_key", "-created_at"], name="order_api_key_idx"),
            models.Index(fields=["status", "-created_at"], name="order_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(total__gte=0), name="order_total_gte_0"),
            models.CheckConstraint(
                condition=models.Q(refunded_amount__gte=0, refunded_amount__lte=models.F("total")),
                name="order_refunded_within_total",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @transition(
        field=status,
        source=Status.PENDING,
        target=Status.PROCESSING,
        custom={"admin": True, "label": "Process"},
    )
    def process(self, at: datetime | None = None) -> None:
        self.processing_at = at or timezone.now()
        self.reserved_until = None  # staff took it on: it no longer expires

    @transition(
        field=status,
        source=Status.PROCESSING,
        target=Status.COMPLETED,
        custom={"admin": True, "label": "Complete"},
    )
    def complete(self, at: datetime | None = None) -> None:
        self.completed_at = at or timezone.now()

    @transition(
        field=status,
        source=[Status.PENDING, Status.PROCESSING],
        target=Status.CANCELLED,
        custom={"admin": True, "label": "Cancel"},
    )
    def cancel(self, reason: str = "", at: datetime | None = None) -> None:
        self.cancelled_at = at or timezone.now()
        self.cancellation_reason = reason[:200]
        self.reserved_until = None

    @transition(
        field=status,
        source=Status.COMPLETED,
        target=Status.REFUNDED,
        custom={"admin": True, "label": "Refund"},
    )
    def refund(self, restock: bool = False, at: datetime | None = None) -> None:
        self.refunded_at = at or timezone.now()
        self.restocked = restock
        self.refunded_amount = self.total


class OrderItem(models.Model):
    """One line of an order, with the product's SKU, name and price as they were."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items")
    sku = models.CharField("SKU", max_length=64)
    name = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=14, decimal_places=2)
    # False for a variant whose stock is not tracked (made to order, digital): nothing was
    # reserved for the line, so it has no allocations and moves no stock.
    stock_tracked = models.BooleanField(default=True)
    # Units shipped (the sum of the line's fulfilments) and units paid back (the sum of its
    # refunds); kept by the services that write those, under the order's row lock.
    quantity_fulfilled = models.PositiveIntegerField(default=0)
    quantity_refunded = models.PositiveIntegerField(default=0)
    # Units of the line ordered beyond stock (a backorder or preorder) and not allocated
    # yet: they wait in the variant's queue, first come first served, and get stock as it
    # arrives (orders.backorders). Its allocations hold the rest: allocated + backordered
    # = quantity, always. Kept as it was when the order is cancelled (the queue place
    # goes; the record stays).
    backordered = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="order_item_qty_gt_0"),
            models.CheckConstraint(
                condition=models.Q(quantity_fulfilled__lte=models.F("quantity")),
                name="order_item_fulfilled_within_quantity",
            ),
            models.CheckConstraint(
                condition=models.Q(quantity_refunded__lte=models.F("quantity")),
                name="order_item_refunded_within_quantity",
            ),
            models.UniqueConstraint(fields=["order", "product"], name="order_item_unique_product"),
            models.CheckConstraint(
                condition=models.Q(backordered__lte=models.F("quantity")),
                name="order_item_backordered_lte_qty",
            ),
        ]
        indexes = [
            # The queue: the lines still waiting, of a variant (few among all lines).
            models.Index(
                fields=["product", "id"],
                condition=models.Q(backordered__gt=0),
                name="order_item_waiting_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class LineAllocation(models.Model):
    """Where an order line's units are still reserved: so many at this location.

    Written with the reservation, and grown when backordered units of the line get
    stock (orders.backorders). A fulfilment lowers it by the units it ships of the line
    (from this location's reservation, or released here when they leave another one) and
    deletes it at zero; completing the order ships what is left. So for a stock-tracked
    line, Σ allocations + ``backordered`` + ``quantity_fulfilled`` = ``quantity`` always,
    and cancelling moves stock at exactly these locations.
    """

    item = models.ForeignKey(OrderItem, on_delete=models.CASCADE, related_name="allocations")
    location = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="allocations"
    )
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["item_id", "location_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="line_allocation_qty_gt_0"
            ),
            models.UniqueConstraint(fields=["item", "location"], name="line_allocation_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} at {self.location_id}"


class Fulfillment(models.Model):
    """A shipment of an order: some units of some lines, leaving one location.

    Written by ``orders.fulfilments`` only, under the order's row lock; its number is the
    order's with a sequence, "PMS-ABCD2345-1", "-2", … in the order they were made.
    """

    class Status(models.TextChoices):
        # One status for now: a field from the start, so that cancelling a shipment can
        # come later without changing what clients read.
        FULFILLED = "fulfilled", "Fulfilled"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fulfillments")
    sequence = models.PositiveIntegerField()
    number = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.FULFILLED)
    location = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="fulfillments"
    )
    carrier = models.CharField(max_length=100, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    shipped_at = models.DateTimeField()
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order_id", "sequence"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(sequence__gt=0), name="fulfillment_sequence_gt_0"
            ),
            models.UniqueConstraint(fields=["order", "sequence"], name="fulfillment_unique_seq"),
        ]

    def __str__(self) -> str:
        return self.number


class FulfillmentLine(models.Model):
    """So many units of one order line in a fulfilment."""

    fulfillment = models.ForeignKey(Fulfillment, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(OrderItem, on_delete=models.PROTECT, related_name="fulfillment_lines")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["fulfillment_id", "item_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="fulfillment_line_qty_gt_0"
            ),
            models.UniqueConstraint(fields=["fulfillment", "item"], name="fulfillment_line_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.item_id}"


def new_refund_number() -> str:
    return "RF-" + "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(8))


def new_return_number() -> str:
    return "RMA-" + "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(8))


class Return(ConcurrentTransitionMixin, models.Model):
    """A return (RMA): goods of an order that the customer sends back.

    Requested → Received → Refunded; Requested → Cancelled. Receiving counts, line by
    line, the units that arrived: restocked at a chosen location (a ``return`` movement
    in the ledger) or written off as damaged (no stock comes back). Refunding pays the
    received units back (a ``Refund``). ``orders.returns`` is the only writer, under the
    order's row lock.
    """

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        RECEIVED = "received", "Received"
        REFUNDED = "refunded", "Refunded"
        CANCELLED = "cancelled", "Cancelled"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="returns")
    number = models.CharField(max_length=20, unique=True, default=new_return_number, editable=False)
    status = FSMField(default=Status.REQUESTED, choices=Status.choices, protected=True)
    reason = models.CharField(max_length=500, blank=True)
    cancellation_reason = models.CharField(max_length=200, blank=True)
    requested_by = models.CharField(max_length=200, editable=False)
    received_by = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    received_at = models.DateTimeField(null=True, blank=True, editable=False)
    refunded_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["order", "created_at"], name="return_order_idx")]

    def __str__(self) -> str:
        return self.number

    @transition(field=status, source=Status.REQUESTED, target=Status.RECEIVED)
    def receive(self, by: str = "", at: datetime | None = None) -> None:
        self.received_at = at or timezone.now()
        self.received_by = by[:200]

    # Not "refund": that is the reverse accessor of the Refund paying it (``rma.refund``).
    @transition(field=status, source=Status.RECEIVED, target=Status.REFUNDED)
    def settle(self, at: datetime | None = None) -> None:
        self.refunded_at = at or timezone.now()

    @transition(field=status, source=Status.REQUESTED, target=Status.CANCELLED)
    def cancel(self, reason: str = "", at: datetime | None = None) -> None:
        self.cancelled_at = at or timezone.now()
        self.cancellation_reason = reason[:200]


class ReturnLine(models.Model):
    """How many units of an order line a return asks to send back, and, once received,
    how many came back on hand (at ``location``) and how many were written off."""

    rma = models.ForeignKey(Return, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(OrderItem, on_delete=models.PROTECT, related_name="return_lines")
    quantity = models.PositiveIntegerField()
    quantity_restocked = models.PositiveIntegerField(default=0)
    quantity_damaged = models.PositiveIntegerField(default=0)
    location = models.ForeignKey(
        "inventory.Location",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="return_lines",
    )

    class Meta:
        ordering = ["item_id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="return_line_qty_gt_0"),
            models.CheckConstraint(
                condition=models.Q(
                    quantity__gte=models.F("quantity_restocked") + models.F("quantity_damaged")
                ),
                name="return_line_received_within_quantity",
            ),
            models.CheckConstraint(
                condition=models.Q(quantity_restocked=0) | models.Q(location__isnull=False),
                name="return_line_restock_has_location",
            ),
            models.UniqueConstraint(fields=["rma", "item"], name="return_line_unique_item"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.item_id}"

    @property
    def quantity_received(self) -> int:
        return self.quantity_restocked + self.quantity_damaged


class Refund(models.Model):
    """Money paid back on an order: an amount in the order's currency and the units it
    pays for (none for a goodwill refund). The order's ``refunded_amount`` is the sum of
    its refunds; ``orders.refunds`` is the only writer, under the order's row lock."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    number = models.CharField(max_length=20, unique=True, default=new_refund_number, editable=False)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    reason = models.CharField(max_length=500, blank=True)
    # The return whose received units this refund pays back, if any.
    rma = models.OneToOneField(
        Return,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refund",
        verbose_name="return",
    )
    created_by = models.CharField(max_length=200, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    # Set by ``orders.refunds.refund_create``: the refund as its event carries it, which
    # the API answers with (not read back from the database).
    payload: dict[str, Any]

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["order", "created_at"], name="refund_order_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return self.number


class RefundLine(models.Model):
    """Units of one order line a refund pays back."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(OrderItem, on_delete=models.PROTECT, related_name="refund_lines")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["item_id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="refund_line_qty_gt_0"),
            models.UniqueConstraint(fields=["refund", "item"], name="refund_line_unique_item"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.item_id}"
