import uuid

from django.db import models

from pms_backend.encryption.attributes import EncryptedAttribute
from pms_backend.events.models import Event
from pms_backend.events.registry import is_opt_in


class WebhookEndpoint(models.Model):
    """A receiver of signed (optionally encrypted) event deliveries."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField("URL", max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, blank=True, help_text="Empty: every event.")
    is_active = models.BooleanField(default=True)
    encrypt = models.BooleanField(default=False, help_text="Send bodies as JWE (A256GCM).")
    secret_ct = models.TextField(db_column="secret", editable=False)
    previous_secret_ct = models.TextField(db_column="previous_secret", blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)

    # Secrets are encrypted at rest and shown only once, on creation or rotation.
    secret = EncryptedAttribute("secret_ct")
    previous_secret = EncryptedAttribute("previous_secret_ct")

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.description or self.url

    def wants(self, event_type: str) -> bool:
        if not self.event_types:
            return not is_opt_in(event_type)
        return event_type in self.event_types


class WebhookDelivery(models.Model):
    """One event on its way to one endpoint: at most one per pair, retried until done."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        RETRYING = "retrying", "Retrying"
        FAILED = "failed", "Failed (gave up)"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a task was last queued for it: the due sweep does not queue it twice.
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The event's subject ("product:7"), copied so that "is an earlier event about the same
    # object still open for this endpoint?" is one small index range, however long the
    # backlog.
    subject = models.CharField(max_length=100, blank=True, default="", editable=False)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_once_per_endpoint")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due_idx",
                condition=models.Q(status__in=["pending", "retrying"]),
            ),
            models.Index(fields=["endpoint", "-id"], name="delivery_endpoint_idx"),
            models.Index(
                fields=["endpoint", "subject", "event"],
                name="delivery_open_subject_idx",
                condition=models.Q(status__in=["pending", "retrying"]),
            ),
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One HTTP request of a delivery: kept forever, whatever happened."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"attempt {self.pk} of delivery {self.delivery_id}: {self.status_code or self.error}"
