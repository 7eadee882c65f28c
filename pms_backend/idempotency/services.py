"""Run a request once per ``Idempotency-Key``: a retry gets the first answer again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from pms_backend.errors import DomainError
from pms_backend.idempotency.models import IdempotencyKey

MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(DomainError):
    status = 422


@dataclass(frozen=True)
class Outcome:
    status: int
    body: Any
    replayed: bool


def request_fingerprint(scope: str, body: Any) -> str:
    """Return a hash of what a request asks for (its scope and its parsed body)."""
    canonical = json.dumps([scope, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_idempotently(
    *,
    owner: str,
    key: str,
    scope: str,
    request_hash: str,
    action: Callable[[], tuple[int, Any]],
    error_body: Callable[[DomainError], Any],
) -> Outcome:
    """Run ``action`` once for ``(owner, key)`` and store its answer; replay it after.

    ``action`` runs in a savepoint inside the transaction that claims the key, so its
    writes commit together with the stored answer. A refusal (``DomainError``) rolls
    the action back but is stored too: a retry gets the same refusal. The same key
    with another request raises ``IdempotencyKeyReused`` (422).
    """
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(
                    owner=owner,
                    key=key,
                    scope=scope,
                    request_hash=request_hash,
                    expires_at=now + timedelta(hours=settings.PMS_IDEMPOTENCY_HOURS),
                )
        except IntegrityError:
            record = None
        if record is None:
            existing = IdempotencyKey.objects.get(owner=owner, key=key)
            if existing.expires_at <= now:
                existing.delete()
                return run_idempotently(
                    owner=owner,
                    key=key,
                    scope=scope,
                    request_hash=request_hash,
                    action=action,
                    error_body=error_body,
                )
            if existing.request_hash != request_hash or existing.scope != scope:
                raise IdempotencyKeyReused(
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with a different request; use a new key.",
                )
            return Outcome(existing.response_status, _stored_body(existing), replayed=True)
        try:
            with transaction.atomic():
                status, body = action()
        except DomainError as exc:
            status, body = exc.status, error_body(exc)
        record.response_status = status
        record.response_body = body
        record.save(update_fields=["response_status", "response_body_ct"])
    return Outcome(status, body, replayed=False)


def _stored_body(record: IdempotencyKey) -> Any:
    if not record.response_body_ct and record.legacy_response_body is not None:
        return record.legacy_response_body  # written by the previous release
    return record.response_body


def idempotency_encrypt_legacy(*, batch_size: int = 500) -> int:
    """Encrypt answers the previous release stored in clear; return how many."""
    done = 0
    while True:
        with transaction.atomic():
            batch = list(
                IdempotencyKey.objects.select_for_update(skip_locked=True)
                .filter(legacy_response_body__isnull=False)
                .order_by("pk")[:batch_size]
            )
            for record in batch:
                record.response_body = record.legacy_response_body
                record.legacy_response_body = None
            IdempotencyKey.objects.bulk_update(batch, ["response_body_ct", "legacy_response_body"])
        done += len(batch)
        if len(batch) < batch_size:
            return done


def idempotency_prune(*, batch_size: int = 5000) -> int:
    """Delete expired keys in batches (and encrypt any answer still in clear); return
    how many were deleted."""
    idempotency_encrypt_legacy()
    removed = 0
    while True:
        ids = list(
            IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).values_list(
                "pk", flat=True
            )[:batch_size]
        )
        if not ids:
            return removed
        removed += IdempotencyKey.objects.filter(pk__in=ids).delete()[0]
