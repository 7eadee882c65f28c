"""Stock changes. Every change locks the stock rows in primary-key order, checks under
the lock, and writes stock + ledger movement + audit entry + events in one transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record_many
from catalog.models import Product
from inventory.errors import InventoryErrorCode as Code
from inventory.models import LOW_STOCK_SETTING, InventoryMovement, Stock
from inventory.payloads import stock_representation
from pms_backend.bulk_insert import bulk_insert_rows
from pms_backend.bulk_update import bulk_update_rows
from pms_backend.errors import Conflict, InvalidInput, NotFound
from pms_backend.events.services import publish_many
from pms_backend.monitoring import metrics
from pms_backend.shopsettings.selectors import setting_get_many

MAX_MOVEMENT_QUANTITY = 1_000_000
# The most a product may have on hand: far above any real shop, well below the integer
# columns' 2,147,483,647, so that no sequence of movements can overflow them.
MAX_ON_HAND = 1_000_000_000
MANUAL_KINDS = (
    InventoryMovement.Kind.RECEIPT,
    InventoryMovement.Kind.ADJUSTMENT,
    InventoryMovement.Kind.CORRECTION,
    InventoryMovement.Kind.RETURN,
)
Kind = InventoryMovement.Kind


@dataclass(frozen=True)
class _Delta:
    product_id: int
    on_hand: int
    reserved: int


@dataclass
class StockRecords:
    """The audit entries and outbox events of a stock change, left for the caller to write
    with its own (``audit_record_many``, ``publish_many``) in the same transaction: an
    order's lines and the order itself then cost one insert of each, however many lines."""

    audit_entries: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)


def _lock_stock(product_ids, *, create_missing: bool) -> dict[int, Stock]:
    """Lock the stock rows of ``product_ids`` in primary-key order and return them.

    Every writer takes its locks in this one order, so two multi-line orders naming the
    same products in opposite orders wait for each other instead of deadlocking.
    """
    ids = sorted(set(product_ids))
    if create_missing:
        Stock.objects.bulk_create([Stock(product_id=pid) for pid in ids], ignore_conflicts=True)
    rows = Stock.objects.select_for_update().filter(product_id__in=ids).order_by("product_id")
    return {row.product_id: row for row in rows}


class OrderedProduct(NamedTuple):
    """What an order needs of each product it names."""

    pk: int
    sku: str
    name: str
    price: Decimal
    currency: str
    status: str


ORDERED_PRODUCT_FIELDS = OrderedProduct._fields[1:]


def stock_lock_for_order(
    product_ids: Iterable[int],
) -> tuple[dict[int, Stock], dict[int, OrderedProduct]]:
    """Lock the stock rows of ``product_ids`` in primary-key order, as every writer does,
    and read their products (not locked): an order placement's locks and products in one
    query. Return both by product id; products without a stock row are left out. Pass the
    rows on to ``stock_reserve`` in the same transaction.
    """
    ids = sorted(set(product_ids))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_lock_for_order_sql(), [ids])
            rows = cursor.fetchall()
        # Each row: the product id, the stock row's fields, the product's.
        fields = [f.attname for f in Stock._meta.concrete_fields]
        end = 1 + len(fields)
        stocks = {row[0]: Stock.from_db(connection.alias, fields, row[1:end]) for row in rows}
        return stocks, {row[0]: OrderedProduct(row[0], *row[end:]) for row in rows}
    # Elsewhere (SQLite, for development) the ORM, which leaves the lock out there.
    locked = (
        Stock.objects.select_for_update(of=("self",))
        .select_related("product")
        .filter(product_id__in=ids)
        .order_by("product_id")
    )
    stocks = {row.product_id: row for row in locked}
    return stocks, {
        pid: OrderedProduct(pid, *(getattr(row.product, f) for f in ORDERED_PRODUCT_FIELDS))
        for pid, row in stocks.items()
    }


@functools.cache
def _lock_for_order_sql() -> str:
    # Written out: one statement text for any number of products, and Django spent more
    # CPU compiling the join it wrote for this (about 1,800 calls) than running it.
    quote = connection.ops.quote_name
    stock, product = Stock._meta, Product._meta
    stock_columns = ", ".join(f"s.{quote(str(f.column))}" for f in stock.concrete_fields)
    product_columns = ", ".join(
        f"p.{quote(str(product.get_field(name).column))}" for name in ORDERED_PRODUCT_FIELDS
    )
    key = quote(str(stock.pk.column))
    return (
        f"SELECT s.{key}, {stock_columns}, {product_columns} "  # noqa: S608 -- model names
        f"FROM {quote(stock.db_table)} s JOIN {quote(product.db_table)} p "
        f"ON p.{quote(product.pk.column)} = s.{key} "
        f"WHERE s.{key} = ANY(%s) ORDER BY s.{key} FOR UPDATE OF s"
    )


def _apply(
    *,
    actor: Actor,
    stocks: dict[int, Stock],
    deltas: list[_Delta],
    kind: str,
    reason: str,
    reference: str,
    records: StockRecords | None = None,
) -> list[InventoryMovement]:
    """Apply checked deltas to locked rows; write movements, audit entries and events.

    Raise ``Conflict`` (``stock_limit_exceeded``) before writing anything when a delta
    would take ``on_hand`` above ``MAX_ON_HAND``. With ``records``, the audit entries and
    events are appended to it instead: the caller writes them, in this transaction.
    """
    _check_ceiling(stocks, deltas)
    now = timezone.now()
    movements, changed, low = [], [], []
    entries: list[dict[str, Any]] = []
    thresholds = setting_get_many(LOW_STOCK_SETTING, product_ids=[d.product_id for d in deltas])
    for delta in deltas:
        stock = stocks[delta.product_id]
        threshold = thresholds[delta.product_id]
        was_low = stock.available <= threshold
        before = {"on_hand": stock.on_hand, "reserved": stock.reserved}
        stock.on_hand += delta.on_hand
        stock.reserved += delta.reserved
        stock.updated_at = now
        changed.append(stock)
        if stock.available <= threshold and not was_low:
            low.append((stock, threshold))
        movements.append(
            InventoryMovement(
                product_id=stock.product_id,
                kind=kind,
                on_hand_delta=delta.on_hand,
                reserved_delta=delta.reserved,
                on_hand_after=stock.on_hand,
                reserved_after=stock.reserved,
                reason=reason[:500],
                reference=reference[:64],
                actor_label=actor.label[:200],
            )
        )
        entries.append(
            {
                "action": f"stock.{kind}",
                "object_type": "inventory.stock",
                "object_id": stock.product_id,
                "changes": {
                    name: {"before": before[name], "after": getattr(stock, name)}
                    for name in ("on_hand", "reserved")
                    if before[name] != getattr(stock, name)
                }
                | ({"reference": {"before": None, "after": reference}} if reference else {}),
            }
        )
    # One statement each, however many rows (Django's bulk_update costs more to build).
    bulk_update_rows(changed, ["on_hand", "reserved", "updated_at"])
    bulk_insert_rows(movements)
    metrics.count_stock_movements(kind, len(movements))
    events = [
        ("stock.updated", stock_representation(stock), f"product:{stock.product_id}")
        for stock in changed
    ] + [
        (
            "stock.low",
            stock_representation(stock) | {"low_stock_threshold": threshold},
            f"product:{stock.product_id}",
        )
        for stock, threshold in low
    ]
    if records is not None:
        records.audit_entries += entries
        records.events += events
    else:
        audit_record_many(actor=actor, entries=entries)
        publish_many(events)
    return movements


def _check_ceiling(stocks: dict[int, Stock], deltas: list[_Delta]) -> None:
    over = [
        {
            "product": delta.product_id,
            "requested": delta.on_hand,
            "on_hand": stocks[delta.product_id].on_hand,
            "maximum": MAX_ON_HAND,
        }
        for delta in deltas
        if delta.on_hand > 0 and stocks[delta.product_id].on_hand + delta.on_hand > MAX_ON_HAND
    ]
    if over:
        raise Conflict(
            Code.STOCK_LIMIT,
            "A product may have at most "
            f"{MAX_ON_HAND:,} on hand: "
            + ", ".join(
                f"product {o['product']} has {o['on_hand']:,}, {o['requested']:,} more is too many"
                for o in over
            )
            + ". Nothing was recorded.",
            extra={"lines": over},
        )


def _check_lines(lines: Mapping[int, int]) -> None:
    if not lines:
        raise InvalidInput(Code.INVALID_MOVEMENT, "No lines to move.")
    for product_id, quantity in lines.items():
        if not isinstance(quantity, int) or not 0 < quantity <= MAX_MOVEMENT_QUANTITY:
            raise InvalidInput(
                Code.INVALID_MOVEMENT,
                f"Quantity for product {product_id} must be from 1 to {MAX_MOVEMENT_QUANTITY}.",
            )


def stock_reserve(
    *,
    actor: Actor,
    lines: Mapping[int, int],
    reference: str,
    locked: dict[int, Stock] | None = None,
    records: StockRecords | None = None,
) -> None:
    """Reserve every line or none: raise ``Conflict`` listing each short line.

    Must run inside the caller's transaction (the order placement), so the reservation
    commits with the order or not at all; a refusal leaves that transaction to the
    caller to roll back (no savepoint of its own). ``locked`` are the rows the caller
    has locked already (``stock_lock_for_order``). With ``records``, the audit entries
    and events are left in it for the caller to write with its own.
    """
    _check_lines(lines)
    with transaction.atomic(savepoint=False):
        stocks = locked if locked is not None else _lock_stock(lines, create_missing=False)
        short = []
        for product_id in sorted(lines):
            stock = stocks.get(product_id)
            available = stock.available if stock else 0
            if lines[product_id] > available:
                short.append(
                    {"product": product_id, "requested": lines[product_id], "available": available}
                )
        if short:
            raise Conflict(
                Code.INSUFFICIENT_STOCK,
                "Not enough stock for "
                + ", ".join(
                    f"product {s['product']} "
                    f"({s['requested']} requested, {s['available']} available)"
                    for s in short
                )
                + ".",
                extra={"lines": short},
            )
        _apply(
            actor=actor,
            stocks=stocks,
            deltas=[_Delta(pid, 0, qty) for pid, qty in sorted(lines.items())],
            kind=Kind.RESERVE,
            reason="order placed",
            reference=reference,
            records=records,
        )


def _move_reserved(
    *, actor: Actor, lines: Mapping[int, int], reference: str, kind: str, reason: str
) -> None:
    _check_lines(lines)
    with transaction.atomic():
        stocks = _lock_stock(lines, create_missing=False)
        deltas = []
        for product_id, quantity in sorted(lines.items()):
            stock = stocks.get(product_id)
            if stock is None or stock.reserved < quantity:
                # The ledger promised this reservation; failing loudly beats drifting.
                raise Conflict(
                    Code.INSUFFICIENT_STOCK,
                    f"Product {product_id} has fewer than {quantity} reserved.",
                )
            sold = quantity if kind == Kind.SALE else 0
            deltas.append(_Delta(product_id, -sold, -quantity))
        _apply(
            actor=actor, stocks=stocks, deltas=deltas, kind=kind, reason=reason, reference=reference
        )


def stock_release(
    *, actor: Actor, lines: Mapping[int, int], reference: str, reason: str = ""
) -> None:
    """Give reserved quantities back to ``available`` (an order cancelled or expired)."""
    _move_reserved(actor=actor, lines=lines, reference=reference, kind=Kind.RELEASE, reason=reason)


def stock_sell(*, actor: Actor, lines: Mapping[int, int], reference: str) -> None:
    """Turn reservations into sales: ``on_hand`` and ``reserved`` both fall."""
    _move_reserved(
        actor=actor, lines=lines, reference=reference, kind=Kind.SALE, reason="order completed"
    )


def stock_return(*, actor: Actor, lines: Mapping[int, int], reference: str, reason: str) -> None:
    """Put returned goods back on hand (a refund with restock)."""
    _check_lines(lines)
    with transaction.atomic():
        stocks = _lock_stock(lines, create_missing=True)
        _apply(
            actor=actor,
            stocks=stocks,
            deltas=[_Delta(pid, qty, 0) for pid, qty in sorted(lines.items())],
            kind=Kind.RETURN,
            reason=reason,
            reference=reference,
        )


def _refusal_to_take(stock: Stock, quantity: int) -> str:
    """Say why taking ``-quantity`` off is refused, and what staff can do instead."""
    most = max(stock.available, 0)
    held = ""
    if stock.reserved:
        verb = "is" if stock.reserved == 1 else "are"
        held = f" and {stock.reserved} {verb} reserved by open orders"
    if most:
        what = f"at most {most} can be taken off"
        advice = f"Enter {most} or fewer"
    else:
        what = "nothing can be taken off now"
        advice = "Record the receipt first if goods arrived"
    if stock.reserved:
        advice += ", or complete or cancel those orders first"
    return f"Cannot take {abs(quantity)} off: {stock.on_hand} on hand{held}, so {what}. {advice}."


def stock_record_movement(
    *, actor: Actor, product_id: int, kind: str, quantity: int, reason: str
) -> InventoryMovement:
    """Record a manual movement: a receipt, adjustment, correction or return.

    Receipts and returns add (``quantity`` > 0); adjustments and corrections are signed.
    Refuse (409 ``insufficient_stock``) a change that would take ``on_hand`` below zero
    or below what is reserved, and (409 ``stock_limit_exceeded``) one that would take it
    above ``MAX_ON_HAND``.
    """
    if kind not in MANUAL_KINDS:
        raise InvalidInput(
            Code.INVALID_MOVEMENT,
            f"Kind must be one of {', '.join(MANUAL_KINDS)}; reservations, releases and "
            "sales come from orders.",
            errors={"kind": ["Not a manual movement kind."]},
        )
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidInput(
            Code.INVALID_MOVEMENT,
            "Quantity must be a whole number.",
            errors={"quantity": ["Not an integer."]},
        )
    if quantity == 0 or abs(quantity) > MAX_MOVEMENT_QUANTITY:
        raise InvalidInput(
            Code.INVALID_MOVEMENT,
            f"Quantity must be non-zero and at most {MAX_MOVEMENT_QUANTITY} in size.",
            errors={"quantity": ["Out of range."]},
        )
    if kind in (Kind.RECEIPT, Kind.RETURN) and quantity < 0:
        raise InvalidInput(
            Code.INVALID_MOVEMENT,
            f"A {kind} adds stock; use an adjustment to remove it.",
            errors={"quantity": ["Must be positive."]},
        )
    if not reason.strip() and kind in (Kind.ADJUSTMENT, Kind.CORRECTION):
        raise InvalidInput(
            Code.INVALID_MOVEMENT,
            "Adjustments and corrections need a reason.",
            errors={"reason": ["Required for this kind."]},
        )
    with transaction.atomic():
        if not Product.objects.filter(pk=product_id).exists():
            raise NotFound(Code.UNKNOWN_PRODUCT, f"No product has id {product_id}.")
        stocks = _lock_stock([product_id], create_missing=True)
        stock = stocks[product_id]
        if stock.on_hand + quantity < stock.reserved:
            raise Conflict(
                Code.INSUFFICIENT_STOCK,
                _refusal_to_take(stock, quantity),
                extra={
                    "lines": [
                        {
                            "product": product_id,
                            "requested": -quantity,
                            "available": stock.available,
                        }
                    ]
                },
            )
        (movement,) = _apply(
            actor=actor,
            stocks=stocks,
            deltas=[_Delta(product_id, quantity, 0)],
            kind=kind,
            reason=reason,
            reference="",
        )
    return movement
