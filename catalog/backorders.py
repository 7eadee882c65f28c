"""Backorders and preorders: a variant's settings for selling beyond its stock.

A variant (a child product, or a product without variants) may take orders beyond what
is available: always, when it ``allow_backorder`` (up to ``backorder_limit`` units
waiting at once), and until ``preorder_until`` (up to ``preorder_limit``), such as a
product not out yet. When both hold, the larger limit applies (no limit beats any). The
units ordered beyond stock wait on the variant's stock row; inventory counts them under
the row lock that guards reservations, so racing buyers never pass the limit, and gives
them stock first come, first served, when it arrives (orders records where).

The settings are written by ``variants.variant_update`` and, for a product without
variants, ``services.product_update``, through ``backorders_apply`` here: one rule for
both, the API, the admin and imports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog.errors import CatalogErrorCode as Code
from catalog.fields import BACKORDER_FIELDS
from catalog.models import Product
from pms_backend.errors import InvalidInput

__all__ = [
    "BACKORDER_FIELDS",
    "MAX_WAITING_LIMIT",
    "WaitingRule",
    "backorders_apply",
    "backorders_clean",
    "register_waiting_enabled",
    "waiting_rule",
    "waiting_rule_of",
]

# Far above any real shop's queue, well inside the integer columns.
MAX_WAITING_LIMIT = 1_000_000


class WaitingRule(NamedTuple):
    """Whether a variant takes orders beyond stock now, and how many units may wait
    (``limit`` None: no limit)."""

    accepts: bool
    limit: int | None


NO_WAITING = WaitingRule(False, 0)


def waiting_rule(
    *,
    allow_backorder: bool,
    backorder_limit: int | None,
    preorder_until: datetime | None,
    preorder_limit: int | None,
    now: datetime,
) -> WaitingRule:
    """Return whether orders beyond stock are taken at ``now`` and the limit of units
    waiting: the backorder limit, the preorder limit while preorders are open, or the
    larger of the two when both hold (``None``, no limit, is the largest)."""
    limits = []
    if allow_backorder:
        limits.append(backorder_limit)
    if preorder_until is not None and now < preorder_until:
        limits.append(preorder_limit)
    if not limits:
        return NO_WAITING
    if None in limits:
        return WaitingRule(True, None)
    return WaitingRule(True, max(limit for limit in limits if limit is not None))


def waiting_rule_of(product: Any, now: datetime | None = None) -> WaitingRule:
    """``waiting_rule`` of anything carrying the four settings (a ``Product``, the
    ordered product an order placement reads)."""
    return waiting_rule(
        allow_backorder=product.allow_backorder,
        backorder_limit=product.backorder_limit,
        preorder_until=product.preorder_until,
        preorder_limit=product.preorder_limit,
        now=now or timezone.now(),
    )


# Who must know that a product came to take orders beyond stock (inventory: it makes the
# product's stock row, where the waiting units are counted under its lock).
_waiting_hooks: list[Callable[[list[int]], None]] = []


def register_waiting_enabled(hook: Callable[[list[int]], None]) -> None:
    """Call ``hook(product_ids)`` in the transaction that lets products take orders beyond
    stock (backorders allowed, or a preorder date set)."""
    _waiting_hooks.append(hook)


def _refuse(name: str, message: str) -> InvalidInput:
    return InvalidInput(Code.INVALID_BACKORDER, message, errors={name: [message]})


def _clean_limit(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(name, f"{name} is a whole number of units, or null for no limit.")
    if not 0 <= value <= MAX_WAITING_LIMIT:
        raise _refuse(name, f"{name} is from 0 to {MAX_WAITING_LIMIT:,} units.")
    return value


def _clean_moment(name: str, value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    moment = parse_datetime(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise _refuse(name, f"{name} is a date and time (ISO 8601), or null.")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def backorders_clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return the backorder settings in ``data`` as stored; raise ``InvalidInput``
    (``invalid_backorder``) for a bad one. Other keys are left out."""
    cleaned: dict[str, Any] = {}
    if "allow_backorder" in data:
        if not isinstance(data["allow_backorder"], bool):
            raise _refuse("allow_backorder", "allow_backorder is true or false.")
        cleaned["allow_backorder"] = data["allow_backorder"]
    for name in ("backorder_limit", "preorder_limit"):
        if name in data:
            cleaned[name] = _clean_limit(name, data[name])
    if "preorder_until" in data:
        cleaned["preorder_until"] = _clean_moment("preorder_until", data["preorder_until"])
    return cleaned


def backorders_apply(product: Product, data: Mapping[str, Any]) -> None:
    """Set the backorder settings named in ``data`` on ``product`` (locked by the caller,
    saved by it, in its transaction). Refuse (400 ``invalid_backorder``) a bad value and a
    product that sells through variants (each variant has its own settings)."""
    cleaned = backorders_clean(data)
    if not cleaned:
        return
    if product.parent_id is None and (
        product.options or Product.objects.filter(parent_id=product.pk).exists()
    ):
        raise _refuse(
            next(iter(cleaned)),
            f"Product {product.pk} sells through its variants: set backorders and "
            "preorders on each variant.",
        )
    accepted_before = product.allow_backorder or product.preorder_until is not None
    for name, value in cleaned.items():
        setattr(product, name, value)
    if not accepted_before and (product.allow_backorder or product.preorder_until is not None):
        for hook in _waiting_hooks:
            hook([product.pk])
