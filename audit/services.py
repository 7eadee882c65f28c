"""Writing the audit log. Every business action records its entry through here."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from audit.actors import Actor
from audit.models import AuditLog


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
    if actor.api_key is not None:
        actor_id = actor.api_key.prefix
    elif actor.user is not None:
        actor_id = str(actor.user.pk)
    else:
        actor_id = actor.job
    return AuditLog.objects.create(
        actor_type=actor.kind,
        actor_id=actor_id,
        actor_label=actor.label[:200],
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_repr=str(target)[:200] if target is not None else "",
        changes=changes or {},
        request_id=actor.request_id[:128],
        ip=actor.ip,
    )
