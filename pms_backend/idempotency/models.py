from django.db import models

from pms_backend.encryption.attributes import EncryptedAttribute


class IdempotencyKey(models.Model):
    """A client's ``Idempotency-Key`` with the request it named and the answer it got.

    Unique per client, so two requests with one key serialise on the unique index:
    the second waits for the first to commit, then replays its answer. The answer (an
    order with its customer's name and address) is stored encrypted, bound to this row,
    and read back byte for byte as it was written.
    """

    owner = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=100)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body_ct = models.TextField(
        db_column="response_body_encrypted", blank=True, default="", db_default="", editable=False
    )
    # The answer in clear, as the release before stored it: read only for rows that
    # release wrote during a rolling deploy, encrypted by ``idempotency_prune``. To be
    # dropped in the next release (expand, then contract).
    legacy_response_body = models.JSONField(null=True, db_column="response_body", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    response_body = EncryptedAttribute("response_body_ct", kind="json_exact")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.key}"
