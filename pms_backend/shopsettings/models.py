"""Stored values of the settings service. What a setting means lives in ``registry.py``;
the values a setting has for single objects live with those objects' app (a scope's
``value_model``).

A value is JSON text. Sensitive values (type ``secret`` or flagged sensitive) are kept
only as ciphertext, bound to their table, column and primary key.
"""

from django.core.validators import RegexValidator
from django.db import models

from pms_backend.encryption.attributes import EncryptedAttribute
from pms_backend.shopsettings.registry import TYPE_LABELS, SettingType

# A value is in one column or in none (empty: no value stored).
PLAIN = ~models.Q(value_json="")
CIPHER = ~models.Q(value_ct="")


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
    """One tunable: its global value (empty: the default applies)."""

    key = models.CharField(
        primary_key=True,
        max_length=100,
        validators=[RegexValidator(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")],
        help_text="Dotted name, e.g. orders.reservation_minutes.",
    )
    type = models.CharField(max_length=16, choices=[(t.value, TYPE_LABELS[t]) for t in SettingType])
    description = models.TextField(blank=True)
    sensitive = models.BooleanField(
        default=False, help_text="Kept encrypted; shown and audited only as ***."
    )
    value_json = models.TextField(blank=True, help_text="JSON. Empty: the default applies.")
    value_ct = models.TextField(blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # The JSON text of a sensitive value.
    value_secret = EncryptedAttribute("value_ct")

    class Meta:
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(condition=~(PLAIN & CIPHER), name="setting_one_value_column"),
        ]

    def __str__(self) -> str:
        return self.key
