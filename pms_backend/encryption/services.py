"""Re-encrypting stored values under the newest key (key rotation)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import reduce
from operator import or_

from django.db import models, transaction
from django.db.models import Q

from pms_backend.encryption.attributes import REGISTRY, EncryptedAttribute
from pms_backend.encryption.ciphers import PREFIX
from pms_backend.encryption.keyring import current_key


def encrypted_models() -> dict[type[models.Model], list[EncryptedAttribute]]:
    """Return every concrete model with encrypted attributes, and those attributes."""
    found: dict[type[models.Model], list[EncryptedAttribute]] = {}
    for model, attribute in REGISTRY:
        if not model._meta.abstract:
            found.setdefault(model, []).append(attribute)
    return found


def _stale(model, attributes: list[EncryptedAttribute], *, reindex: bool) -> Q:
    if reindex:
        return Q()
    prefix = f"{PREFIX}.{current_key().kid}."
    return reduce(
        or_,
        (
            ~Q(**{f"{a.column_field}__startswith": prefix}) & ~Q(**{a.column_field: ""})
            for a in attributes
        ),
    )


def rotation_backlog(*, reindex: bool = False) -> dict[type[models.Model], int]:
    """Return how many rows per model still need re-encryption."""
    return {
        model: model._default_manager.filter(_stale(model, attrs, reindex=reindex)).count()
        for model, attrs in encrypted_models().items()
    }


def rotate_encryption(
    *,
    batch_size: int = 500,
    reindex: bool = False,
    progress: Callable[[type[models.Model], int], None] | None = None,
) -> Iterator[tuple[type[models.Model], int]]:
    """Re-encrypt, batch by batch, every value not yet under the newest key.

    Each batch is one short transaction holding row locks on just that batch, so the
    shop keeps running; stopping half-way loses nothing and a re-run resumes where the
    last one stopped (rows already under the newest key are not selected again).
    ``reindex`` rewrites every row, e.g. after changing ``PMS_BLIND_INDEX_KEY``.
    Yields ``(model, rows rewritten)`` per batch.
    """
    for model, attributes in encrypted_models().items():
        columns = [a.column_field for a in attributes] + [
            a.index_field for a in attributes if a.index_field
        ]
        last_pk = None
        while True:
            with transaction.atomic():
                qs = model._default_manager.filter(_stale(model, attributes, reindex=reindex))
                if last_pk is not None:
                    qs = qs.filter(pk__gt=last_pk)
                rows = list(qs.select_for_update().order_by("pk")[:batch_size])
                if not rows:
                    break
                for row in rows:
                    for attribute in attributes:
                        attribute.reencrypt(row)
                model._default_manager.bulk_update(rows, columns)
                last_pk = rows[-1].pk
            if progress:
                progress(model, len(rows))
            yield model, len(rows)
