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

from django.db import connections, models, router

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
    if (
        connection.vendor != "postgresql"
        or len(objects) > SMALL
        or len(set(pk_given)) > 1
        or meta.parents
        or any(hasattr(field, "get_placeholder") for field in fields)
    ):
        model._base_manager.bulk_create(objects)
        return objects
    values = [field.pre_save(obj, add=True) for obj in objects for field in fields]
    if any(hasattr(value, "resolve_expression") for value in values):
        model._base_manager.bulk_create(objects)  # a db_default or an expression
        return objects
    fields_per_row = [field for _obj in objects for field in fields]
    params = [
        field.get_db_prep_save(value, connection=connection)
        for field, value in zip(fields_per_row, values, strict=True)
    ]
    quote = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608 -- names from the model
            f"({', '.join(quote(field.column) for field in fields)}) "
            f"VALUES {', '.join([row] * len(objects))} RETURNING {quote(meta.pk.column)}",
            params,
        )
        # PostgreSQL returns the rows of one INSERT … VALUES in the order given.
        keys = [key for (key,) in cursor.fetchall()]
    for obj, key in zip(objects, keys, strict=True):
        if not pk_given[0]:
            obj.pk = key
        obj._state.adding = False
        obj._state.db = connection.alias
    return objects
