"""Updating many rows, each with its own values, in a few statements.

Django's ``bulk_update`` builds one ``CASE WHEN pk = … THEN …`` per row and field, and
building that expression costs more than the update: 10,000 prices took 5.6 s with it
and 1.0 s with this (PostgreSQL 15, two fields). On PostgreSQL this writes
``UPDATE … FROM (VALUES …)``; elsewhere (SQLite, for development) it falls back to
``bulk_update``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from django.db import connections, models, router


def bulk_update_rows(
    objects: Sequence[models.Model], fields: Sequence[str], *, batch_size: int = 1000
) -> int:
    """Save ``fields`` of every object (all of one model, each with a primary key).

    Like ``QuerySet.bulk_update``: no signals, no ``save()``, ``auto_now`` not applied.
    Return how many rows were updated.
    """
    if not objects:
        return 0
    model = type(objects[0])
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return model._base_manager.bulk_update(objects, fields, batch_size=batch_size)
    meta = model._meta
    # Concrete fields (bulk_update accepts no other), whose column is never None.
    columns = [meta.pk, *(cast(models.Field, meta.get_field(name)) for name in fields)]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    quoted = [quote(cast(str, field.column)) for field in columns]
    names = ", ".join(quoted)
    casts = "(" + ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in columns) + ")"
    assignments = ", ".join(f"{column} = v.{column}" for column in quoted[1:])
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objects), batch_size):
            batch = objects[start : start + batch_size]
            params = [
                field.get_db_prep_save(getattr(obj, field.attname), connection=connection)
                for obj in batch
                for field in columns
            ]
            cursor.execute(
                f"UPDATE {table} SET {assignments} "  # noqa: S608 -- names from the model
                f"FROM (VALUES {', '.join([casts] * len(batch))}) AS v({names}) "
                f"WHERE {table}.{quoted[0]} = v.{quoted[0]}",
                params,
            )
            updated += cursor.rowcount
    return updated
