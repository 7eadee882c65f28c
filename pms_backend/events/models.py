import uuid
from typing import Any

from django.db import models

from pms_backend.encryption.attributes import EncryptedAttribute

# Top-level keys of event data that carry a customer's personal data (an order's customer
# and shipping address). They never rest in clear: ``personal`` holds them encrypted.
PERSONAL_FIELDS = ("customer", "shipping_address")


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


class Event(models.Model):
    """An outbox row: written in the business transaction, delivered after commit.

    ``type`` is one of CONTRACT.md's event types; ``data`` is the object as the API
    would return it, less its ``PERSONAL_FIELDS``: those are in ``personal``, encrypted
    (bound to ``event_id``), and joined back only in the envelope sent out. The primary
    key orders events in commit order per writer.
    """

    event_id = models.CharField(max_length=40, unique=True, default=new_event_id, editable=False)
    type = models.CharField(max_length=64, db_index=True)
    topic = models.CharField(max_length=32, db_index=True)
    subject = models.CharField(max_length=100, blank=True)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # The X-Request-ID of the request that wrote it: sent as x-pms-request-id on webhooks.
    request_id = models.CharField(max_length=128, blank=True, default="")
    # A database default too: the previous release's processes insert events without it
    # during a rolling deploy (``relay.prune`` seals what they wrote in clear).
    personal_ct = models.TextField(
        db_column="personal_data", blank=True, default="", db_default="", editable=False
    )

    personal = EncryptedAttribute("personal_ct", kind="json_exact", row_key="event_id")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["id"],
                name="event_undispatched_idx",
                condition=models.Q(dispatched_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"

    @classmethod
    def build(cls, **fields: Any) -> "Event":
        """Return an unsaved event, its ``data``'s personal fields moved to ``personal``."""
        event = cls(**fields)
        event.seal_personal()
        return event

    def seal_personal(self) -> bool:
        """Move personal fields from ``data`` into ``personal``; return whether any were."""
        personal = {k: self.data[k] for k in PERSONAL_FIELDS if k in self.data}
        if not personal:
            return False
        self.data = {k: v for k, v in self.data.items() if k not in personal}
        self.personal = {**self.personal, **personal} if self.personal_ct else personal
        return True

    def full_data(self) -> dict:
        """Return the data as published, personal fields decrypted."""
        return {**self.data, **self.personal} if self.personal_ct else self.data

    def envelope(self) -> dict:
        """Return the event as webhooks and websockets carry it."""
        return {
            "id": self.event_id,
            "type": self.type,
            "timestamp": self.created_at.isoformat().replace("+00:00", "Z"),
            "data": self.full_data(),
        }
