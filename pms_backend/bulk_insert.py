"""Inserting a few rows of one model in one plain statement.

Django's ``bulk_create`` (and ``save()`` for one row) costs far more Python than the insert
itself on the paths that write a handful of rows per request: an order placement's five
inserts took about 6,000 function calls with them, half the request. On PostgreSQL this
writes ``INSERT … VALUES … RETURNING pk`` from the fields' own ``pre_save`` and
``get_db_prep_save``; elsewhere (SQLite, for development), or for fields that need a
placeholder of their own, it falls back to ``bulk_create``, as it does for more than
``SMALL`` rows (its ``UNNEST`` form plans faster for many).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from django.db import connections, models, router

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.options import Options

SMALL = 50


def bulk_insert_rows(objects: Sequence[models.Model]) -> Sequence[models.Model]:
    """Insert every object (all of one model) and set primary keys the database assigns.

    Like ``QuerySet.bulk_create``: no ``save()``, no signals; field defaults, ``auto_now``
    and ``auto_now_add`` applied. Either every object carries its primary key (a UUID
    default) or none does (an auto-increment key). Return ``objects``.
    """
    if not objects:
        return objects
    model = type(objects[0])
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    pk_given = [obj.pk is not None for obj in objects]
    fields = [
        field
        for field in meta.local_concrete_fields
        if not getattr(field, "generated", False) and (field is not meta.pk or pk_given[0])
    ]
    if not _plain_insert_fits(connection, objects, pk_given, fields):
        model._base_manager.bulk_create(objects)
        return objects
    values = [field.pre_save(obj, add=True) for obj in objects for field in fields]
    if any(hasattr(value, "resolve_expression") for value in values):
        model._base_manager.bulk_create(objects)  # a db_default or an expression
        return objects
    keys = _insert(connection, meta, fields, len(objects), values)
    for obj, key in zip(objects, keys, strict=True):
        if not pk_given[0]:
            obj.pk = key
        obj._state.adding = False
        obj._state.db = connection.alias
    return objects


def _plain_insert_fits(
    connection: BaseDatabaseWrapper,
    objects: Sequence[models.Model],
    pk_given: list[bool],
    fields: list[models.Field],
) -> bool:
    """Whether one ``INSERT … VALUES`` does it, else ``bulk_create`` (see the module's doc)."""
    return not (
        connection.vendor != "postgresql"
        or len(objects) > SMALL
        or len(set(pk_given)) > 1
        or objects[0]._meta.parents
        or any(hasattr(field, "get_placeholder") for field in fields)
    )


def _insert(
    connection: BaseDatabaseWrapper,
    meta: Options[Any],
    fields: list[models.Field],
    rows: int,
    values: list[Any],
) -> list[Any]:
    """Insert ``rows`` rows of ``values`` (row after row) into ``fields``; return their keys."""
    params = [
        field.get_db_prep_save(value, connection=connection)
        for field, value in zip(fields * rows, values, strict=True)
    ]
    quote = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # Concrete fields and the primary key always have a column.
    columns = ", ".join(quote(cast(str, field.column)) for field in fields)
    pk_column = quote(cast(str, meta.pk.column))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608 -- names from the model
            f"VALUES {', '.join([row] * rows)} RETURNING {pk_column}",
            params,
        )
        # PostgreSQL returns the rows of one INSERT … VALUES in the order given.
        return [key for (key,) in cursor.fetchall()]
