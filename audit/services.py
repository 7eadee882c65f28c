"""Writing the audit log. Every business action records its entry through here."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from django.db import models, transaction

from audit.actors import Actor
from audit.models import AuditLog
from pms_backend.bulk_insert import bulk_insert_rows


def audit_record(
    *,
    actor: Actor,
    action: str,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    changes: dict[str, Any] | None = None,
) -> AuditLog:
    """Record one audit entry inside the caller's transaction.

    Raise ``RuntimeError`` when called outside a transaction: an entry that could
    commit without its change (or the change without it) would make the log lie.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the business transaction")
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or target.pk
    return AuditLog.objects.create(
        **_actor_columns(actor),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_repr=str(target)[:200] if target is not None else "",
        changes=changes or {},
    )


def audit_record_many(*, actor: Actor, entries: Iterable[dict[str, Any]]) -> int:
    """Record many entries by one actor inside the caller's transaction; return how many.

    Each entry is a dict of ``action``, ``object_type``, ``object_id``, ``changes``
    (and optionally ``object_repr``). For bulk work (imports) where one ``audit_record``
    per row would cost a query per row; the entries are the same as it would write.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record_many must run inside the business transaction")
    columns = _actor_columns(actor)
    rows = (
        AuditLog(
            **columns,
            action=entry["action"],
            object_type=entry.get("object_type", ""),
            object_id=str(entry.get("object_id", "")),
            object_repr=entry.get("object_repr", "")[:200],
            changes=entry.get("changes") or {},
        )
        for entry in entries
    )
    written = 0
    while batch := list(islice(rows, 1000)):
        bulk_insert_rows(batch)
        written += len(batch)
    return written


def _actor_columns(actor: Actor) -> dict[str, Any]:
    if actor.api_key is not None:
        actor_id = actor.api_key.prefix
    elif actor.user is not None:
        actor_id = str(actor.user.pk)
    else:
        actor_id = actor.job
    return {
        "actor_type": actor.kind,
        "actor_id": actor_id,
        "actor_label": actor.label[:200],
        "request_id": actor.request_id[:128],
        "ip": actor.ip,
    }
