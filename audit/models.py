from django.db import models

from audit.action_names import action_in_words
from pms_backend.admin_display import actor_in_words


class AuditLog(models.Model):
    """One recorded action: who, what, on which object, what changed, when, from where.

    Rows are written once, by ``audit.services.audit_record``, in the same transaction
    as the change they describe, and never updated or deleted.
    """

    class ActorType(models.TextChoices):
        USER = "user", "Staff user"
        API_KEY = "api_key", "API key"
        SYSTEM = "system", "System job"
        ANONYMOUS = "anonymous", "Anonymous client"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    # Plain values, not foreign keys: history must outlive the users and keys it names.
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "-created_at"]),
            models.Index(fields=["actor_type", "actor_id", "-created_at"]),
            models.Index(fields=["action", "-created_at"]),
        ]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log entries"

    def __str__(self) -> str:
        # The entry's page title and breadcrumb: in words, as the list shows it.
        who = actor_in_words(self.actor_label)
        return f"{action_in_words(self.action)} by {who}, {self.created_at:%Y-%m-%d %H:%M:%S}"


class AuditSeal(models.Model):
    """A link of the hash chain over the audit log, written after the entry by the sealer.

    ``entry_hash`` covers the entry's content; ``chain_hash`` = HMAC-SHA256, keyed with
    ``PMS_AUDIT_CHAIN_KEY`` (outside the database), of the previous link's ``chain_hash``
    and this ``entry_hash``. Altering, removing or reordering a sealed entry breaks the
    chain at that point (``verify_audit_chain`` says where); removing the newest ones
    shows against an anchor kept outside (``--anchor COUNT:HEAD``).
    """

    sequence = models.PositiveBigIntegerField(primary_key=True)
    entry_id = models.BigIntegerField(unique=True)  # not a foreign key: deletions must show
    entry_hash = models.CharField(max_length=64)
    chain_hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"seal {self.sequence} of entry {self.entry_id}"
