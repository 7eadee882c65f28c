"""Turn model instances into JSON-safe snapshots and snapshots into field diffs."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from django.db import models


def json_safe(value: Any) -> Any:
    """Return ``value`` in a form JSON can hold without losing what a reader needs."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    return value


def snapshot(instance: models.Model, fields: list[str]) -> dict[str, Any]:
    """Return the JSON-safe values of ``fields`` (foreign keys by id) of ``instance``."""
    values = {}
    for name in fields:
        field = instance._meta.get_field(name)
        attname = field.attname if isinstance(field, models.ForeignKey) else name
        values[name] = json_safe(getattr(instance, attname))
    return values


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return ``{field: {"before": old, "after": new}}`` for every field that changed."""
    changed = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            changed[name] = {"before": old, "after": new}
    return changed
