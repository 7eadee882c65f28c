from django.db import models


class IdempotencyKey(models.Model):
    """A client's ``Idempotency-Key`` with the request it named and the answer it got.

    Unique per client, so two requests with one key serialise on the unique index:
    the second waits for the first to commit, then replays its answer.
    """

    owner = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=100)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.key}"
