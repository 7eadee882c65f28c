"""Stored values of the settings service. What a setting means lives in ``registry.py``.

A value is JSON text. Sensitive values (type ``secret`` or flagged sensitive) are kept
only as ciphertext, bound to their table, column and primary key.
"""

import uuid

from django.core.validators import RegexValidator
from django.db import models

from catalog.models import Product
from pms_backend.encryption.attributes import EncryptedAttribute
from pms_backend.shopsettings.registry import SettingType

_PLAIN = ~models.Q(value_json="")
_CIPHER = ~models.Q(value_ct="")


class StoredJsonMixin:
    """A value kept as JSON text: in ``value_json``, or encrypted in ``value_ct``."""

    def stored_json(self) -> str:
        """Return the JSON text of the value; empty when none is stored."""
        return self.value_secret if self.value_ct else self.value_json

    def store_json(self, text: str, *, sensitive: bool) -> None:
        """Keep ``text`` (empty: no value), encrypted when ``sensitive``."""
        self.value_json, self.value_ct = "", ""
        if sensitive and text:
            self.value_secret = text
        else:
            self.value_json = text


class Setting(StoredJsonMixin, models.Model):
    """One tunable: its global value (empty: the default applies) and the products that
    have a value of their own (``products``, through ``ProductSetting``)."""

    key = models.CharField(
        primary_key=True,
        max_length=100,
        validators=[RegexValidator(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")],
        help_text="Dotted name, e.g. orders.reservation_minutes.",
    )
    type = models.CharField(max_length=16, choices=[(t.value, t.value) for t in SettingType])
    description = models.TextField(blank=True)
    sensitive = models.BooleanField(
        default=False, help_text="Kept encrypted; shown and audited only as ***."
    )
    value_json = models.TextField(blank=True, help_text="JSON. Empty: the default applies.")
    value_ct = models.TextField(blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    products = models.ManyToManyField(
        Product,
        through="ProductSetting",
        related_name="settings",
        blank=True,
        help_text="Products with a value of their own, which beats the global one.",
    )

    # The JSON text of a sensitive value.
    value_secret = EncryptedAttribute("value_ct")

    class Meta:
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(condition=~(_PLAIN & _CIPHER), name="setting_one_value_column"),
        ]

    def __str__(self) -> str:
        return self.key


class ProductSetting(StoredJsonMixin, models.Model):
    """A setting's value for one product: it beats the global value and the default."""

    # A UUID known before saving: the ciphertext of a sensitive value is bound to it.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    setting = models.ForeignKey(Setting, on_delete=models.CASCADE, related_name="product_values")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="setting_values")
    value_json = models.TextField(blank=True)
    value_ct = models.TextField(blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    value_secret = EncryptedAttribute("value_ct")

    class Meta:
        ordering = ["setting", "product"]
        constraints = [
            models.UniqueConstraint(
                fields=["setting", "product"], name="product_setting_once_per_product"
            ),
            models.CheckConstraint(
                condition=(_PLAIN & ~_CIPHER) | (~_PLAIN & _CIPHER),
                name="product_setting_one_value",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.setting_id} for product {self.product_id}"
