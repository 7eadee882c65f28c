import secrets

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from catalog.models import Product
from pms_backend.shopsettings.selectors import setting_get

LOW_STOCK_SETTING = "inventory.low_stock_threshold"


def default_low_stock_threshold() -> int:
    # Only migration 0001 still names this: the threshold lives in the settings service.
    return settings.PMS_LOW_STOCK_THRESHOLD


ALLOCATION_STRATEGY_SETTING = "inventory.allocation_strategy"
ALLOCATION_STRATEGIES = ("priority", "most_stock")


class Location(models.Model):
    """A place that holds stock: a warehouse, a store, a back room.

    Orders reserve from active locations in the shop's allocation strategy (by
    ``priority``, lowest first, or the one holding most). A location that holds stock
    can be neither deleted nor deactivated: its stock is transferred out first, so the
    shop's totals are always what its active locations can sell.
    """

    code = models.CharField(
        max_length=32,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
                "Letters, digits, - and _ only, starting with a letter or digit.",
            )
        ],
        help_text="Short and stable: movements, transfers and the API name the location by it.",
    )
    name = models.CharField(max_length=200)
    address = models.TextField(blank=True)
    is_active = models.BooleanField("active", default=True)
    priority = models.PositiveIntegerField(
        default=100, help_text="Orders take stock from lower numbers first."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Stock(models.Model):
    """How many of a product the shop holds (``on_hand``) and has promised (``reserved``),
    over all its locations.

    Changed only by ``inventory.services``, under a row lock, together with the
    product's ``StockLevel`` rows and the movement that explains the change: the total is
    always the sum of the levels (``check_inventory`` checks it). Its row lock guards the
    product's levels too, so every writer locks totals in product order and no two
    writers deadlock, whatever locations they touch. The database refuses negative
    numbers and a reservation above what is on hand, whatever the code does.
    """

    product = models.OneToOneField(
        Product, primary_key=True, on_delete=models.PROTECT, related_name="stock"
    )
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    # Units open orders took beyond stock (backorders and preorders, catalog.backorders),
    # waiting for stock: counted here, under the row lock that guards reservations, so
    # racing buyers never pass the variant's limit; given stock first come, first served,
    # by whatever adds it (``services.register_arrival_hook``).
    backordered = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(on_hand__gte=0), name="stock_on_hand_gte_0"),
            models.CheckConstraint(
                condition=models.Q(backordered__gte=0), name="stock_backordered_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(reserved__gte=0), name="stock_reserved_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(reserved__lte=models.F("on_hand")),
                name="stock_reserved_lte_on_hand",
            ),
        ]

    def __str__(self) -> str:
        waiting = f", {self.backordered} backordered" if self.backordered else ""
        return f"{self.product_id}: {self.on_hand} on hand, {self.reserved} reserved{waiting}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def low_stock_threshold(self) -> int:
        """The settings service's threshold for this product (its own, else the shop's)."""
        return setting_get(LOW_STOCK_SETTING, product_id=self.product_id)

    @property
    def is_low(self) -> bool:
        return self.available <= self.low_stock_threshold


class StockLevel(models.Model):
    """How many of a product one location holds and has promised to open orders."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="stock_levels")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stock_levels")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product_id", "location_id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "location"], name="stock_level_unique"),
            models.CheckConstraint(
                condition=models.Q(on_hand__gte=0), name="stock_level_on_hand_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(reserved__gte=0), name="stock_level_reserved_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(reserved__lte=models.F("on_hand")),
                name="stock_level_reserved_lte_on_hand",
            ),
        ]
        indexes = [models.Index(fields=["location", "product"], name="stock_level_location_idx")]

    def __str__(self) -> str:
        return f"{self.product_id} at {self.location_id}: {self.on_hand} on hand"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class InventoryMovement(models.Model):
    """One line of the stock ledger. Its deltas summed per product and location give the
    stock levels (and summed per product, the totals)."""

    class Kind(models.TextChoices):
        RECEIPT = "receipt", "Receipt"
        ADJUSTMENT = "adjustment", "Adjustment"
        RESERVE = "reserve", "Reserve"
        RELEASE = "release", "Release"
        SALE = "sale", "Sale"
        RETURN = "return", "Return"
        CORRECTION = "correction", "Correction"
        TRANSFER_OUT = "transfer_out", "Transfer out"
        TRANSFER_IN = "transfer_in", "Transfer in"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="movements")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="movements")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    on_hand_delta = models.IntegerField()
    reserved_delta = models.IntegerField()
    on_hand_after = models.IntegerField()
    reserved_after = models.IntegerField()
    reason = models.CharField(max_length=500, blank=True)
    reference = models.CharField(max_length=64, blank=True, db_index=True)
    actor_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["product", "-id"], name="movement_product_idx")]

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.product_id}@{self.location_id} "
            f"Δ{self.on_hand_delta}/{self.reserved_delta}"
        )


_NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I, as order numbers


def new_transfer_number() -> str:
    return "TR-" + "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(8))


class Transfer(ConcurrentTransitionMixin, models.Model):
    """Goods moving from one location to another.

    Draft → In transit → Received; Draft or In transit → Cancelled. The goods leave
    ``from_location`` at dispatch and arrive at ``to_location`` at receipt (partly, line
    by line, until every line is in): while in transit they are at no location, so the
    product's total ``on_hand`` (what its locations hold) is lower by what is on the
    road. ``inventory.transfers`` is the only writer.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_TRANSIT = "in_transit", "In transit"
        RECEIVED = "received", "Received"
        CANCELLED = "cancelled", "Cancelled"

    number = models.CharField(
        max_length=20, unique=True, default=new_transfer_number, editable=False
    )
    from_location = models.ForeignKey(
        Location, on_delete=models.PROTECT, related_name="transfers_out", verbose_name="from"
    )
    to_location = models.ForeignKey(
        Location, on_delete=models.PROTECT, related_name="transfers_in", verbose_name="to"
    )
    status = FSMField(default=Status.DRAFT, choices=Status.choices, protected=True)
    note = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=200, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, editable=False)
    received_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(from_location=models.F("to_location")),
                name="transfer_locations_differ",
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="transfer_status_idx")]

    def __str__(self) -> str:
        return self.number

    @transition(
        field=status,
        source=Status.DRAFT,
        target=Status.IN_TRANSIT,
        custom={"admin": True, "label": "Dispatch"},
    )
    def dispatch(self, at=None) -> None:
        self.dispatched_at = at or timezone.now()

    @transition(
        field=status,
        source=Status.IN_TRANSIT,
        target=Status.RECEIVED,
        custom={"admin": True, "label": "Receive all"},
    )
    def receive(self, at=None) -> None:
        self.received_at = at or timezone.now()

    @transition(
        field=status,
        source=[Status.DRAFT, Status.IN_TRANSIT],
        target=Status.CANCELLED,
        custom={"admin": True, "label": "Cancel"},
    )
    def cancel(self, at=None) -> None:
        self.cancelled_at = at or timezone.now()


class TransferLine(models.Model):
    """How many of a product a transfer moves, and how many of them have arrived."""

    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="transfer_lines")
    quantity = models.PositiveIntegerField()
    received_quantity = models.PositiveIntegerField("received", default=0, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["transfer", "product"], name="transfer_line_unique"),
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="transfer_line_quantity_gt_0"
            ),
            models.CheckConstraint(
                condition=models.Q(received_quantity__lte=models.F("quantity")),
                name="transfer_line_received_lte_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} of product {self.product_id}"

    @property
    def outstanding(self) -> int:
        """What was sent (or is to be sent) and has not arrived."""
        return self.quantity - self.received_quantity
