import uuid

from django.db import models


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


class Event(models.Model):
    """An outbox row: written in the business transaction, delivered after commit.

    ``type`` is one of CONTRACT.md's event types; ``data`` is the object as the API
    would return it. The primary key orders events in commit order per writer.
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

    def envelope(self) -> dict:
        """Return the event as webhooks and websockets carry it."""
        return {
            "id": self.event_id,
            "type": self.type,
            "timestamp": self.created_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }
