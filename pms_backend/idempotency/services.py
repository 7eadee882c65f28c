"""Run a request once per ``Idempotency-Key``: a retry gets the first answer again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.db import connection, models, transaction
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


class _Refused(Exception):
    """Carries an action's refusal out of the transaction it rolls back."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(str(error))
        self.error = error


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

    ``action`` runs in the transaction that claims the key, so its writes commit together
    with the stored answer. A refusal (``DomainError``) rolls that transaction back (the
    action's writes and the claim); the refusal is then stored in a transaction of its
    own, unless a concurrent request with the same key has meanwhile answered (its answer
    is returned instead): a retry gets the same refusal. The same key with another
    request raises ``IdempotencyKeyReused`` (422).
    """
    now = timezone.now()
    claim = {
        "owner": owner,
        "key": key,
        "scope": scope,
        "request_hash": request_hash,
        "created_at": now,
        "expires_at": now + timedelta(hours=settings.PMS_IDEMPOTENCY_HOURS),
    }
    try:
        # No savepoint around the action: it would cost two statements per request to
        # keep the claim through a refusal, which is rarer than an answer.
        with transaction.atomic():
            while (pk := _claim(**claim)) is None:
                if (outcome := _replay(claim, now)) is not None:
                    return outcome
            try:
                status, body = action()
            except DomainError as exc:
                raise _Refused(exc) from exc
            _store_answer(pk, status=status, body=body)
        return Outcome(status, body, replayed=False)
    except _Refused as refused:
        status, body = refused.error.status, error_body(refused.error)
    with transaction.atomic():
        while (pk := _claim(**claim)) is None:
            if (outcome := _replay(claim, now)) is not None:
                return outcome  # a concurrent request with this key answered meanwhile
        _store_answer(pk, status=status, body=body)
    return Outcome(status, body, replayed=False)


def _replay(claim: dict[str, Any], now) -> Outcome | None:
    """Return the answer stored for a key claimed already, or ``None`` when it had expired
    (it is deleted: claim it again). Raise ``IdempotencyKeyReused`` for another request."""
    existing = IdempotencyKey.objects.filter(owner=claim["owner"], key=claim["key"]).first()
    if existing is None:
        return None  # pruned since the claim failed: claim it again
    if existing.expires_at <= now:
        existing.delete()
        return None
    if existing.request_hash != claim["request_hash"] or existing.scope != claim["scope"]:
        raise IdempotencyKeyReused(
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request; use a new key.",
        )
    # A row commits with its answer (claimed and answered in one transaction).
    assert existing.response_status is not None
    return Outcome(existing.response_status, _stored_body(existing), replayed=True)


def _claim(**values: Any) -> int | None:
    """Insert the key's row unless one exists; return its primary key if this call
    inserted it, else ``None``.

    ``ON CONFLICT DO NOTHING`` waits on the unique index, as a plain insert would, for a
    concurrent request with the same key to commit (then this one replays its answer) or
    roll back (then this one inserts); unlike a plain insert it needs no savepoint to
    survive the duplicate. Django's ``bulk_create(ignore_conflicts=True)`` cannot say
    whether the row was inserted.
    """
    meta = IdempotencyKey._meta
    quote = connection.ops.quote_name
    fields = [_field(name) for name in values]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608 -- names from the model
            f"({', '.join(quote(_column(f)) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) "
            f"ON CONFLICT ({quote(_column(_field('owner')))}, {quote(_column(_field('key')))})"
            f" DO NOTHING RETURNING {quote(_column(meta.pk))}",
            [f.get_db_prep_save(values[f.name], connection) for f in fields],
        )
        row = cursor.fetchone()
        return row[0] if row else None


def _field(name: str) -> models.Field:
    """A field of IdempotencyKey (all concrete: ``get_field`` could also answer a relation)."""
    return cast(models.Field, IdempotencyKey._meta.get_field(name))


def _column(field: models.Field) -> str:
    return cast(str, field.column)  # a concrete field's is never None


def _store_answer(pk: int, *, status: int, body: Any) -> None:
    """Store the answer, encrypted and bound to its row, on the row ``_claim`` inserted (a
    plain UPDATE: the ORM's cost more to compile than to run, on the path of every order)."""
    record = IdempotencyKey(pk=pk)
    record.response_body = body  # encrypts it, bound to this row
    meta = IdempotencyKey._meta
    quote = connection.ops.quote_name
    status_column = quote(_column(_field("response_status")))
    body_column = quote(_column(_field("response_body_ct")))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} "  # noqa: S608 -- names from the model
            f"SET {status_column} = %s, {body_column} = %s "
            f"WHERE {quote(_column(meta.pk))} = %s",
            [status, record.response_body_ct, pk],
        )


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
