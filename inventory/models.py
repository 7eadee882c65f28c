from django.conf import settings
from django.db import models

from catalog.models import Product
from pms_backend.shopsettings.selectors import setting_get

LOW_STOCK_SETTING = "inventory.low_stock_threshold"


def default_low_stock_threshold() -> int:
    # Only migration 0001 still names this: the threshold lives in the settings service.
    return settings.PMS_LOW_STOCK_THRESHOLD


class Stock(models.Model):
    """How many of a product the shop holds (``on_hand``) and has promised (``reserved``).

    Changed only by ``inventory.services``, under a row lock, together with the
    movement that explains the change. The database refuses negative numbers and a
    reservation above what is on hand, whatever the code does.
    """

    product = models.OneToOneField(
        Product, primary_key=True, on_delete=models.PROTECT, related_name="stock"
    )
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(on_hand__gte=0), name="stock_on_hand_gte_0"),
            models.CheckConstraint(
                condition=models.Q(reserved__gte=0), name="stock_reserved_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(reserved__lte=models.F("on_hand")),
                name="stock_reserved_lte_on_hand",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.on_hand} on hand, {self.reserved} reserved"

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


class InventoryMovement(models.Model):
    """One line of the stock ledger. Its deltas summed per product give the stock row."""

    class Kind(models.TextChoices):
        RECEIPT = "receipt", "Receipt"
        ADJUSTMENT = "adjustment", "Adjustment"
        RESERVE = "reserve", "Reserve"
        RELEASE = "release", "Release"
        SALE = "sale", "Sale"
        RETURN = "return", "Return"
        CORRECTION = "correction", "Correction"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="movements")
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
        return f"{self.kind} {self.product_id} Δ{self.on_hand_delta}/{self.reserved_delta}"
