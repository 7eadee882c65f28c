import secrets
import uuid
from datetime import datetime

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


class OrderItem(models.Model):
    """One line of an order, with the product's SKU, name and price as they were."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items")
    sku = models.CharField("SKU", max_length=64)
    name = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="order_item_qty_gt_0"),
            models.UniqueConstraint(fields=["order", "product"], name="order_item_unique_product"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"
