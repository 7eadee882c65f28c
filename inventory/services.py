"""Stock changes. Every change locks the stock rows in primary-key order, checks under
the lock, and writes stock + ledger movement + audit entry + events in one transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from django.db import connection, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record_many
from catalog.models import Product
from inventory.errors import InventoryErrorCode as Code
from inventory.models import (
    ALLOCATION_STRATEGY_SETTING,
    LOW_STOCK_SETTING,
    InventoryMovement,
    Location,
    Stock,
    StockLevel,
)
from inventory.payloads import stock_representation
from pms_backend import raw_rows
from pms_backend.bulk_insert import bulk_insert_rows
from pms_backend.bulk_update import bulk_update_rows
from pms_backend.errors import Conflict, InvalidInput, NotFound
from pms_backend.events.services import publish_many
from pms_backend.monitoring import metrics
from pms_backend.shopsettings.selectors import setting_get, setting_get_many

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
    location_id: int
    # The delta's own reference, when one change serves several (backorders allocated to
    # several orders at once); else the change's.
    reference: str = ""

    @property
    def frees(self) -> bool:
        """Whether it makes more available (stock arriving, a reservation released)."""
        return self.on_hand - self.reserved > 0


# (product id, location id) -> quantity: where a change happens, unit by unit.
PlacedLines = Mapping[tuple[int, int], int]


DEFAULT_LOCATION_CODE = "main"


def default_location() -> Location:
    """Return the location a change that names none happens at: the first active one by
    priority. A shop with no location at all (a new database) gets its first one, "main".
    Raise ``Conflict`` (``no_location``) when every location is inactive."""
    location = Location.objects.filter(is_active=True).order_by("priority", "id").first()
    if location is None and not Location.objects.exists():
        location, _ = Location.objects.get_or_create(
            code=DEFAULT_LOCATION_CODE, defaults={"name": "Main warehouse"}
        )
    if location is None:
        raise Conflict(
            Code.NO_LOCATION,
            "The shop has no active stock location; add or activate one first.",
        )
    return location


def location_resolve(location: Location | int | str | None) -> Location:
    """Return the active location named by a ``Location``, its id or its code (``None``:
    the default). Raise ``NotFound`` for an unknown one, ``Conflict`` for an inactive one.

    Inside a transaction the location stays key-share locked until it ends (``_hold``): it
    cannot be deactivated under a change that is about to put stock there."""
    if location is None:
        return _hold(default_location())
    if not isinstance(location, Location):
        lookup = {"pk": location} if isinstance(location, int) else {"code": location}
        found = Location.objects.filter(**lookup).first()
        if found is None:
            raise NotFound(Code.UNKNOWN_LOCATION, f"No stock location is {location!r}.")
        location = found
    location = _hold(location)
    if not location.is_active:
        raise Conflict(
            Code.LOCATION_INACTIVE,
            f"Location {location.code} is not active; activate it before moving stock there.",
        )
    return location


def location_named(value: Any, *, field: str = "location") -> Location:
    """``location_resolve`` for a location a request names in its body (a ``Location``,
    its id or code; ``None``: the default): one that names no location is invalid input
    (400 naming ``field``), not a missing resource."""
    if isinstance(value, bool) or not isinstance(value, (Location, int, str, type(None))):
        message = f"No stock location is {value!r}."
        raise InvalidInput(Code.UNKNOWN_LOCATION, message, errors={field: [message]})
    try:
        return location_resolve(value)
    except NotFound as exc:
        raise InvalidInput(exc.code, exc.detail, errors={field: [exc.detail]}) from exc


def _hold(location: Location) -> Location:
    """Take a key-share lock on ``location`` for the caller's transaction and read its
    ``is_active`` under it.

    Deactivating a location locks it ``FOR UPDATE`` and then checks it holds no stock: the
    lock waits for this transaction, whose stock it then sees, and a change that comes
    after it waits and reads it inactive. Without this, a receipt that read the location
    active just before it was deactivated could put stock there. Key-share locks do not
    stop each other: changes at one location still run side by side.
    """
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return location
    quote = connection.ops.quote_name
    table, key = Location._meta.db_table, str(Location._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote('is_active')} FROM {quote(table)} "  # noqa: S608 -- model names
            f"WHERE {quote(key)} = %s FOR KEY SHARE",
            [location.pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound(Code.UNKNOWN_LOCATION, f"No stock location is {location.code!r}.")
    location.is_active = row[0]
    return location


@dataclass
class StockRecords:
    """The audit entries and outbox events of a stock change, left for the caller to write
    with its own (``audit_record_many``, ``publish_many``) in the same transaction: an
    order's lines and the order itself then cost one insert of each, however many lines."""

    audit_entries: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)


def refuse_products_with_variants(product_ids: Iterable[int]) -> None:
    """Raise ``InvalidInput`` (``variant_required``) naming each product that sells
    through variants: stock is held by its variants, never by the product itself."""
    parents = sorted(
        set(
            Product.objects.filter(parent_id__in=list(product_ids)).values_list(
                "parent_id", flat=True
            )
        )
    )
    if parents:
        raise InvalidInput(
            Code.VARIANT_REQUIRED,
            f"Product {', '.join(map(str, parents))} sells through variants: name the "
            "variant whose stock moves.",
            errors={"product": ["Name a variant."]},
            extra={"products": parents},
        )


def refuse_variants_of_stocked(products: list[Product]) -> None:
    """Registered with the catalog: a product holding stock of its own, or whose orders
    wait for stock of its own (backorders), gets no variants (its variants could not sell
    that stock, and no stock could reach it once it had them). Move the stock off it
    first. One query."""
    held = {
        row.product_id: row
        for row in Stock.objects.filter(product__in=products).exclude(
            on_hand=0, reserved=0, backordered=0
        )
    }
    if held:
        named = [p for p in products if p.pk in held]
        raise Conflict(
            Code.PRODUCT_HOLDS_STOCK,
            "Stock is held by the product itself, which its variants could not sell: "
            + ", ".join(
                f"{p.sku} ({held[p.pk].on_hand} on hand, {held[p.pk].reserved} reserved"
                + (f", {held[p.pk].backordered} backordered" if held[p.pk].backordered else "")
                + ")"
                for p in named[:20]
            )
            + ". Adjust it to zero (or complete or cancel its orders) before making "
            "variants, then receive the stock for each variant.",
            extra={"products": [p.pk for p in named]},
        )


def _lock_stock(product_ids, *, create_missing: bool) -> dict[int, Stock]:
    """Lock the stock rows of ``product_ids`` in primary-key order and return them.

    Every writer takes its locks in this one order, so two multi-line orders naming the
    same products in opposite orders wait for each other instead of deadlocking. A
    product's total row guards its levels at every location: levels are locked after
    the totals, in (product, location) order, by whoever holds the totals.
    """
    ids = sorted(set(product_ids))
    if create_missing:
        Stock.objects.bulk_create([Stock(product_id=pid) for pid in ids], ignore_conflicts=True)
    rows = Stock.objects.select_for_update().filter(product_id__in=ids).order_by("product_id")
    return {row.product_id: row for row in rows}


def _lock_levels(
    pairs: Iterable[tuple[int, int]] | None = None,
    *,
    product_ids: Iterable[int] = (),
    active_only: bool = False,
    create_missing: bool = False,
) -> dict[tuple[int, int], StockLevel]:
    """Lock and return stock levels by (product id, location id), in that order.

    Either the given ``pairs`` (made when missing with ``create_missing``) or every level
    of ``product_ids`` (at active locations only with ``active_only``). The caller holds
    the products' total rows already (``_lock_stock``).
    """
    if pairs is not None:
        pairs = sorted(set(pairs))
        if not pairs:
            return {}
        if create_missing:
            StockLevel.objects.bulk_create(
                [StockLevel(product_id=p, location_id=loc) for p, loc in pairs],
                ignore_conflicts=True,
            )
        products = sorted({p for p, _ in pairs})
        locations = sorted({loc for _, loc in pairs})
        found = _select_levels_for_update(products, locations=locations)
        return {pair: found[pair] for pair in pairs if pair in found}
    return _select_levels_for_update(sorted(set(product_ids)), active_only=active_only)


def _select_levels_for_update(
    products: list[int], *, locations: list[int] | None = None, active_only: bool = False
) -> dict[tuple[int, int], StockLevel]:
    """Lock the levels of ``products`` (at ``locations``, or at active ones) in (product,
    location) order, each with its location; return them by (product id, location id).
    Written out: every order and movement runs it, and the ORM's compiling of the
    queryset cost four times the query (pms_backend/raw_rows.py)."""
    if not products:
        return {}
    level_table, lc = raw_rows.quoted(StockLevel)
    location_table, oc = raw_rows.quoted(Location)
    where = [f"l.{lc['product_id']} IN ({raw_rows.placeholders(len(products))})"]
    params: list[Any] = list(products)
    if locations is not None:
        where.append(f"l.{lc['location_id']} IN ({raw_rows.placeholders(len(locations))})")
        params += locations
    if active_only:
        where.append(f"o.{oc['is_active']}")
    # The levels only, not their locations (SQLite has no row locks: its writes serialise).
    lock = " FOR UPDATE OF l" if connection.features.has_select_for_update_of else ""
    sql = (
        f"SELECT {raw_rows.select_list(StockLevel, 'l')}, {raw_rows.select_list(Location, 'o')} "  # noqa: S608 -- model names and placeholders
        f"FROM {level_table} l JOIN {location_table} o ON o.{oc['id']} = l.{lc['location_id']} "
        f"WHERE {' AND '.join(where)} ORDER BY l.{lc['product_id']}, l.{lc['location_id']}{lock}"
    )
    width = raw_rows.width(StockLevel)
    found: dict[tuple[int, int], StockLevel] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            level = raw_rows.build(StockLevel, row[:width])
            level.location = raw_rows.build(Location, row[width:])
            found[(level.product_id, level.location_id)] = level
    return found


class OrderedProduct(NamedTuple):
    """What an order needs of each product it names."""

    pk: int
    sku: str
    name: str
    price: Decimal
    currency: str
    status: str
    # Whether and how far it sells beyond stock (catalog.backorders.waiting_rule_of).
    allow_backorder: bool
    backorder_limit: int | None
    preorder_until: datetime | None
    preorder_limit: int | None


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
    levels: dict[tuple[int, int], StockLevel],
    deltas: list[_Delta],
    kind: str,
    reason: str,
    reference: str,
    records: StockRecords | None = None,
) -> list[InventoryMovement]:
    """Apply checked deltas to locked rows; write movements, audit entries and events.

    Each delta changes one product's level at one location and its total. Raise
    ``Conflict`` (``stock_limit_exceeded``) before writing anything when a delta would
    take ``on_hand`` above ``MAX_ON_HAND``. With ``records``, the audit entries and
    events are appended to it instead: the caller writes them, in this transaction.
    """
    _check_ceiling(stocks, deltas)
    now = timezone.now()
    movements: list[InventoryMovement] = []
    changed: dict[int, Stock] = {}
    where: dict[int, list[str]] = {}
    levels_changed: list[StockLevel] = []
    entries: list[dict[str, Any]] = []
    product_ids = list(dict.fromkeys(d.product_id for d in deltas))
    thresholds = setting_get_many(LOW_STOCK_SETTING, product_ids=product_ids)
    was_low = {pid: stocks[pid].available <= thresholds[pid] for pid in product_ids}
    for delta in deltas:
        stock = stocks[delta.product_id]
        level = levels[(delta.product_id, delta.location_id)]
        ref = delta.reference or reference
        before = {"on_hand": level.on_hand, "reserved": level.reserved}
        for row in (stock, level):
            row.on_hand += delta.on_hand
            row.reserved += delta.reserved
            row.updated_at = now
        changed[stock.product_id] = stock
        levels_changed.append(level)
        code = level.location.code
        where.setdefault(stock.product_id, []).append(code)
        movements.append(
            InventoryMovement(
                product_id=stock.product_id,
                location_id=delta.location_id,
                kind=kind,
                on_hand_delta=delta.on_hand,
                reserved_delta=delta.reserved,
                # The product's totals after it, as v1 has always said (the location's
                # own level is its ledger summed: check_inventory sums it).
                on_hand_after=stock.on_hand,
                reserved_after=stock.reserved,
                reason=reason[:500],
                reference=ref[:64],
                actor_label=actor.label[:200],
            )
        )
        entries.append(
            {
                "action": f"stock.{kind}",
                "object_type": "inventory.stock",
                "object_id": stock.product_id,
                "changes": {
                    name: {"before": before[name], "after": getattr(level, name)}
                    for name in ("on_hand", "reserved")
                    if before[name] != getattr(level, name)
                }
                | {"location": {"before": None, "after": code}}
                | ({"reference": {"before": None, "after": ref}} if ref else {}),
            }
        )
    # One statement each, however many rows (Django's bulk_update costs more to build).
    bulk_update_rows(list(changed.values()), ["on_hand", "reserved", "updated_at"])
    bulk_update_rows(levels_changed, ["on_hand", "reserved", "updated_at"])
    bulk_insert_rows(movements)
    metrics.count_stock_movements(kind, len(movements))
    events, low = [], []
    for stock in changed.values():
        # The totals as before, and where this change happened (codes, never counts: a
        # storefront hears these too).
        data = stock_representation(stock) | {"locations": list(dict.fromkeys(where[stock.pk]))}
        events.append(("stock.updated", data, f"product:{stock.product_id}"))
        threshold = thresholds[stock.product_id]
        if stock.available <= threshold and not was_low[stock.product_id]:
            low.append(
                ("stock.low", data | {"low_stock_threshold": threshold}, f"product:{stock.pk}")
            )
    events += low
    if records is not None:
        records.audit_entries += entries
        records.events += events
    else:
        audit_record_many(actor=actor, entries=entries)
        publish_many(events)
    serve_waiting(
        actor=actor,
        stocks=stocks,
        product_ids=[d.product_id for d in deltas if d.frees],
        records=records,
    )
    return movements


class ArrivalHook(Protocol):
    def __call__(
        self,
        *,
        actor: Actor,
        stocks: dict[int, Stock],
        product_ids: list[int],
        records: StockRecords,
    ) -> None: ...


# Who gives stock that becomes available to the units waiting for it (the orders app:
# its backordered lines, first come, first served). Inventory knows no orders.
_arrival_hooks: list[ArrivalHook] = []


def register_arrival_hook(hook: ArrivalHook) -> None:
    """Call ``hook(actor=, stocks=, product_ids=, records=)`` in every stock change that
    makes more of products with backordered units available (receipts, adjustments up,
    returns, transfers in, reservations released, counts up), under the products' locked
    total rows (``stocks``, by product id); it reserves what it gives with
    ``stock_allocate_waiting`` and leaves its audit entries and events in ``records``."""
    if hook not in _arrival_hooks:
        _arrival_hooks.append(hook)


def serve_waiting(
    *,
    actor: Actor,
    stocks: dict[int, Stock],
    product_ids: Iterable[int],
    records: StockRecords | None = None,
) -> None:
    """Let the arrival hooks give what became available of ``product_ids`` to the units
    waiting for it, in the caller's transaction and under its locks. With ``records``,
    the audit entries and events are left there; else written here."""
    waiting = sorted({pid for pid in product_ids if stocks[pid].backordered > 0})
    if not waiting or not _arrival_hooks:
        return
    own = records if records is not None else StockRecords()
    for hook in _arrival_hooks:
        hook(actor=actor, stocks=stocks, product_ids=waiting, records=own)
    if records is None:
        audit_record_many(actor=actor, entries=own.audit_entries)
        publish_many(own.events)


def stock_allocate_waiting(
    *,
    actor: Actor,
    stocks: dict[int, Stock],
    queue: list[tuple[str, int, int]],
    records: StockRecords,
) -> list[list[tuple[int, int]]]:
    """Reserve what is available for the waiting units of ``queue`` — (reference,
    product id, units waiting), first come first — each in turn, as far as the stock
    goes: the first gets all it waits for before the next gets any. The rows in
    ``stocks`` are locked by the caller. Return where each entry got its units:
    ``[(location_id, quantity), ...]`` (empty for one that got none); ``backordered``
    falls by what was given. Ledger: a ``reserve`` movement per location, with the
    entry's reference."""
    product_ids = sorted({pid for _, pid, _ in queue})
    levels = _lock_levels(product_ids=product_ids, active_only=True)
    by_product: dict[int, list[StockLevel]] = {}
    for (product_id, _), level in levels.items():
        by_product.setdefault(product_id, []).append(level)
    free = {key: max(level.available, 0) for key, level in levels.items()}
    strategy = setting_get(ALLOCATION_STRATEGY_SETTING)
    given: list[list[tuple[int, int]]] = []
    deltas: list[_Delta] = []
    for reference, product_id, wanted in queue:
        options = by_product.get(product_id, [])
        left = sum(free[(product_id, level.location_id)] for level in options)
        taken = _allocate(options, min(wanted, left), strategy, free=free)
        for location_id, units in taken:
            free[(product_id, location_id)] -= units
            deltas.append(_Delta(product_id, 0, units, location_id, reference))
        given.append(taken)
    if not deltas:
        return given
    changed: dict[int, Stock] = {}
    for delta in deltas:
        stocks[delta.product_id].backordered -= delta.reserved
        changed[delta.product_id] = stocks[delta.product_id]
    bulk_update_rows(list(changed.values()), ["backordered"])
    _apply(
        actor=actor,
        stocks=stocks,
        levels=levels,
        deltas=deltas,
        kind=Kind.RESERVE,
        reason="backorder allocated",
        reference="",
        records=records,
    )
    return given


def stock_lock(product_ids: Iterable[int]) -> dict[int, Stock]:
    """Lock the stock rows of ``product_ids`` in primary-key order (every writer's order)
    for the caller's transaction; return them by product id. What a caller reads after
    this (orders: its lines' allocations and waiting units) no stock change can alter
    until it commits."""
    return _lock_stock(product_ids, create_missing=False)


def stock_release_waiting(*, lines: Mapping[int, int]) -> None:
    """Take units that no longer wait (their order cancelled) off ``backordered``:
    ``{product_id: units}``. Their place in the queue is gone; nothing was reserved for
    them, so the ledger does not change. Raise ``Conflict`` when fewer wait than that
    (the count would drift: failing loudly beats it)."""
    with transaction.atomic():
        stocks = _lock_stock(lines, create_missing=False)
        short = [
            pid
            for pid, units in lines.items()
            if pid not in stocks or stocks[pid].backordered < units
        ]
        if short:
            raise Conflict(
                Code.BACKORDER_DRIFT,
                "Fewer units are backordered than the order holds for product "
                + ", ".join(map(str, sorted(short)))
                + "; run check_inventory.",
            )
        for pid, units in lines.items():
            stocks[pid].backordered -= units
        bulk_update_rows([stocks[pid] for pid in sorted(lines)], ["backordered"])
        publish_many(
            [
                (
                    "stock.updated",
                    stock_representation(stocks[pid]) | {"locations": []},
                    f"product:{pid}",
                )
                for pid in sorted(lines)
            ]
        )


def stock_make_rows(product_ids: list[int]) -> None:
    """Registered with the catalog: a product that comes to take orders beyond stock gets
    its stock row now, so that an order placement always finds one to lock and count its
    waiting units under (making one there could lock rows out of order)."""
    Stock.objects.bulk_create([Stock(product_id=pid) for pid in product_ids], ignore_conflicts=True)


def _check_ceiling(stocks: dict[int, Stock], deltas: list[_Delta]) -> None:
    added: dict[int, int] = {}
    for delta in deltas:
        if delta.on_hand > 0:
            added[delta.product_id] = added.get(delta.product_id, 0) + delta.on_hand
    over = [
        {
            "product": product_id,
            "requested": quantity,
            "on_hand": stocks[product_id].on_hand,
            "maximum": MAX_ON_HAND,
        }
        for product_id, quantity in added.items()
        if stocks[product_id].on_hand + quantity > MAX_ON_HAND
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
    _check_quantities(list(lines.items()))


def _check_quantities(lines: list[tuple[int, int]]) -> None:
    """Refuse no lines, and a (product id, quantity) line outside 1 to the maximum."""
    if not lines:
        raise InvalidInput(Code.INVALID_MOVEMENT, "No lines to move.")
    for product_id, quantity in lines:
        if not isinstance(quantity, int) or not 0 < quantity <= MAX_MOVEMENT_QUANTITY:
            raise InvalidInput(
                Code.INVALID_MOVEMENT,
                f"Quantity for product {product_id} must be from 1 to {MAX_MOVEMENT_QUANTITY}.",
            )


def _allocate(
    options: list[StockLevel],
    quantity: int,
    strategy: str,
    free: Mapping[tuple[int, int], int] | None = None,
) -> list[tuple[int, int]]:
    """Take ``quantity`` from the levels in the strategy's order; return (location, units).
    ``free``: what is left to take at each (product, location), when less than its
    level's ``available`` (a queue served one entry after another)."""

    def left(lv: StockLevel) -> int:
        return lv.available if free is None else free[(lv.product_id, lv.location_id)]

    if strategy == "most_stock":
        options = sorted(options, key=lambda lv: (-left(lv), lv.location.priority, lv.location_id))
    else:
        options = sorted(options, key=lambda lv: (lv.location.priority, lv.location_id))
    taken = []
    for level in options:
        if quantity <= 0:
            break
        units = min(quantity, left(level))
        if units > 0:
            taken.append((level.location_id, units))
            quantity -= units
    return taken


class Waiting(Protocol):
    """What a line may leave waiting beyond stock (``catalog.backorders.WaitingRule``)."""

    @property
    def accepts(self) -> bool: ...

    @property
    def limit(self) -> int | None: ...


# No line may leave units waiting (the default of ``stock_reserve``).
NOBODY_WAITS: Mapping[int, Waiting] = MappingProxyType({})


def stock_reserve(
    *,
    actor: Actor,
    lines: Mapping[int, int],
    reference: str,
    locked: dict[int, Stock] | None = None,
    records: StockRecords | None = None,
    waiting: Mapping[int, Waiting] = NOBODY_WAITS,
) -> dict[int, list[tuple[int, int]]]:
    """Reserve every line or none: raise ``Conflict`` listing each short line.

    Each line is reserved at the active locations in the shop's allocation strategy
    (``inventory.allocation_strategy``: by location priority, or the location holding
    most first), split over several when one does not hold enough. Return where:
    ``{product_id: [(location_id, quantity), ...]}``.

    A line of a product in ``waiting`` (backorders or preorders taken) may ask for more
    than is available: what is available is reserved and the rest waits, counted on the
    product's ``backordered``, as long as the waiting units stay within its limit (what
    the caller's line got is its quantity less the units returned for it). Past the
    limit the line is short: 409 ``backorder_limit_reached`` (each line with what is
    available and how many more may wait), or ``insufficient_stock`` when another line
    is short of stock that cannot wait.

    Must run inside the caller's transaction (the order placement), so the reservation
    commits with the order or not at all; a refusal leaves that transaction to the
    caller to roll back (no savepoint of its own). ``locked`` are the rows the caller
    has locked already (``stock_lock_for_order``). With ``records``, the audit entries
    and events are left in it for the caller to write with its own.
    """
    _check_lines(lines)
    with transaction.atomic(savepoint=False):
        stocks = locked if locked is not None else _lock_stock(lines, create_missing=False)
        levels = _lock_levels(product_ids=[pid for pid in lines if pid in stocks], active_only=True)
        by_product: dict[int, list[StockLevel]] = {}
        for (product_id, _), level in levels.items():
            by_product.setdefault(product_id, []).append(level)
        strategy = setting_get(ALLOCATION_STRATEGY_SETTING)
        short: list[dict[str, Any]] = []
        allocations: dict[int, list[tuple[int, int]]] = {}
        backordered: dict[int, int] = {}
        for product_id in sorted(lines):
            options = by_product.get(product_id, [])
            available = sum(max(level.available, 0) for level in options)
            wanted = lines[product_id]
            if wanted > available:
                refusal = _beyond_stock(
                    product_id,
                    wanted,
                    available,
                    stocks.get(product_id),
                    waiting.get(product_id),
                )
                if refusal:
                    short.append(refusal)
                    continue
                backordered[product_id] = wanted - available
                wanted = available
            if wanted:
                allocations[product_id] = _allocate(options, wanted, strategy)
        if short:
            raise _short_lines(short)
        if backordered:  # first: the reservation's events then show the waiting units
            _count_backordered(stocks, backordered, allocations, records)
        deltas = [
            _Delta(pid, 0, qty, location_id)
            for pid, taken in allocations.items()
            for location_id, qty in taken
        ]
        if deltas:
            _apply(
                actor=actor,
                stocks=stocks,
                levels=levels,
                deltas=deltas,
                kind=Kind.RESERVE,
                reason="order placed",
                reference=reference,
                records=records,
            )
    return allocations


# "No limit" on waiting units still stops here, a billion short of what the stock row's
# counter holds (2,147,483,647): past it, a backorder is refused with the usual 409, not
# failed on the column's overflow.
WAITING_CEILING = 1_000_000_000


def _beyond_stock(
    product_id: int, wanted: int, available: int, stock: Stock | None, rule: Waiting | None
) -> dict[str, Any] | None:
    """Return why a line asking for more than is ``available`` is refused, or None when
    the rest may wait: the product takes backorders and its waiting units stay within
    their limit (counted on ``stock``, locked)."""
    line = {"product": product_id, "requested": wanted, "available": available}
    if rule is None or not rule.accepts or stock is None:
        return line
    limit = WAITING_CEILING if rule.limit is None else rule.limit
    room = max(limit - stock.backordered, 0)
    if wanted - available > room:
        return line | {"backorder_available": room, "backorder_limit": limit}
    return None


def _short_lines(short: list[dict[str, Any]]) -> Conflict:
    """The refusal of an order placement's short lines."""
    said = []
    for s in short:
        line = f"product {s['product']} ({s['requested']} requested, {s['available']} available"
        if "backorder_available" in s:
            line += (
                f", {s['backorder_available']} more may wait of a limit of {s['backorder_limit']}"
            )
        said.append(line + ")")
    only_limits = all("backorder_available" in s for s in short)
    return Conflict(
        Code.BACKORDER_LIMIT if only_limits else Code.INSUFFICIENT_STOCK,
        ("Past the backorder limit for " if only_limits else "Not enough stock for ")
        + ", ".join(said)
        + ". Nothing was ordered.",
        extra={"lines": short},
    )


def _count_backordered(
    stocks: dict[int, Stock],
    backordered: dict[int, int],
    allocations: Mapping[int, list[tuple[int, int]]],
    records: StockRecords | None,
) -> None:
    """Add an order's waiting units to its products' ``backordered`` (one statement);
    announce the products that reserved nothing (the others' reservation did)."""
    for pid, units in backordered.items():
        stocks[pid].backordered += units
    bulk_update_rows([stocks[pid] for pid in sorted(backordered)], ["backordered"])
    events = [
        ("stock.updated", stock_representation(stocks[pid]) | {"locations": []}, f"product:{pid}")
        for pid in sorted(backordered)
        if pid not in allocations
    ]
    if records is not None:
        records.events += events
    else:
        publish_many(events)


def _check_placed(lines: PlacedLines) -> None:
    _check_quantities([(product_id, qty) for (product_id, _), qty in lines.items()])


def _move_reserved(
    *, actor: Actor, lines: PlacedLines, reference: str, kind: str, reason: str
) -> None:
    _check_placed(lines)
    with transaction.atomic():
        stocks = _lock_stock({pid for pid, _ in lines}, create_missing=False)
        levels = _lock_levels(lines)
        deltas = []
        for (product_id, location_id), quantity in sorted(lines.items()):
            level = levels.get((product_id, location_id))
            if product_id not in stocks or level is None or level.reserved < quantity:
                # The ledger promised this reservation; failing loudly beats drifting.
                raise Conflict(
                    Code.INSUFFICIENT_STOCK,
                    f"Product {product_id} has fewer than {quantity} reserved at location "
                    f"{location_id}.",
                )
            sold = quantity if kind == Kind.SALE else 0
            deltas.append(_Delta(product_id, -sold, -quantity, location_id))
        _apply(
            actor=actor,
            stocks=stocks,
            levels=levels,
            deltas=deltas,
            kind=kind,
            reason=reason,
            reference=reference,
        )


def stock_release(*, actor: Actor, lines: PlacedLines, reference: str, reason: str = "") -> None:
    """Give reserved quantities back to ``available`` (an order cancelled or expired), at
    the locations they were reserved at: ``{(product_id, location_id): quantity}``."""
    _move_reserved(actor=actor, lines=lines, reference=reference, kind=Kind.RELEASE, reason=reason)


def stock_sell(*, actor: Actor, lines: PlacedLines, reference: str) -> None:
    """Turn reservations into sales at their locations: ``on_hand`` and ``reserved`` fall."""
    _move_reserved(
        actor=actor, lines=lines, reference=reference, kind=Kind.SALE, reason="order completed"
    )


def stock_ship(
    *,
    actor: Actor,
    location: Location,
    lines: Mapping[int, int],
    reserved: PlacedLines,
    reference: str,
    reason: str,
    records: StockRecords | None = None,
) -> None:
    """Ship ``lines`` (``{product_id: quantity}``) from ``location``: a sale there.

    ``reserved`` (``{(product_id, location_id): quantity}``) is the reservation the
    shipment uses up. Units reserved at ``location`` are sold from the reservation;
    units reserved elsewhere are released there (the goods leave from ``location``
    instead), and as many must then be available at ``location``. Raise ``Conflict``
    (``insufficient_stock``, each short product in ``extra["lines"]`` with what is
    available there) before writing anything. Runs in the caller's transaction, which
    holds ``location`` (``location_resolve``); with ``records`` the audit entries and
    events are left for the caller to write.
    """
    _check_lines(lines)
    with transaction.atomic(savepoint=False):
        stocks = _lock_stock(lines, create_missing=False)
        here = location.pk
        levels = _lock_levels({*reserved, *((pid, here) for pid in lines)})
        for (product_id, location_id), quantity in reserved.items():
            level = levels.get((product_id, location_id))
            if level is None or level.reserved < quantity:
                raise Conflict(  # the ledger promised this reservation: fail loudly
                    Code.INSUFFICIENT_STOCK,
                    f"Product {product_id} has fewer than {quantity} reserved at location "
                    f"{location_id}.",
                )
        short: list[dict[str, Any]] = []
        sold: list[_Delta] = []
        for product_id, quantity in sorted(lines.items()):
            level = levels.get((product_id, here))
            from_reservation = reserved.get((product_id, here), 0)
            available = max(level.available, 0) if level is not None else 0
            if product_id not in stocks or quantity - from_reservation > available:
                short.append(
                    {
                        "product": product_id,
                        "requested": quantity,
                        "reserved_here": from_reservation,
                        "available": available,
                    }
                )
                continue
            sold.append(_Delta(product_id, -quantity, -from_reservation, here))
        if short:
            raise Conflict(
                Code.INSUFFICIENT_STOCK,
                f"{location.code} has not enough to ship "
                + ", ".join(
                    f"product {s['product']} ({s['requested']} to ship, "
                    f"{s['reserved_here']} reserved there for the order, "
                    f"{s['available']} more available)"
                    for s in short
                )
                + ". Nothing was shipped.",
                extra={"lines": short, "location": location.code},
            )
        released = [
            _Delta(product_id, 0, -quantity, location_id)
            for (product_id, location_id), quantity in sorted(reserved.items())
            if location_id != here
        ]
        if released:
            _apply(
                actor=actor,
                stocks=stocks,
                levels=levels,
                deltas=released,
                kind=Kind.RELEASE,
                reason=f"{reason}: shipped from {location.code} instead",
                reference=reference,
                records=records,
            )
        _apply(
            actor=actor,
            stocks=stocks,
            levels=levels,
            deltas=sold,
            kind=Kind.SALE,
            reason=reason,
            reference=reference,
            records=records,
        )


def stock_return(*, actor: Actor, lines: PlacedLines, reference: str, reason: str) -> None:
    """Put returned goods back on hand where they were sold from (a refund with restock);
    goods sold from a location that is no longer active go to the default location."""
    _check_placed(lines)
    with transaction.atomic():
        # Each place held (key-share locked) as a receipt holds it, and read under the lock.
        into = {
            place.pk: place.pk if _hold(place).is_active else location_resolve(None).pk
            for place in Location.objects.filter(pk__in={loc for _, loc in lines})
        }
        placed: dict[tuple[int, int], int] = {}
        for (product_id, location_id), quantity in lines.items():
            key = (product_id, into[location_id])
            placed[key] = placed.get(key, 0) + quantity
        stocks = _lock_stock({pid for pid, _ in placed}, create_missing=True)
        levels = _lock_levels(placed, create_missing=True)
        _apply(
            actor=actor,
            stocks=stocks,
            levels=levels,
            deltas=[_Delta(pid, qty, 0, loc) for (pid, loc), qty in sorted(placed.items())],
            kind=Kind.RETURN,
            reason=reason,
            reference=reference,
        )


def _refusal_to_take(stock: Stock | StockLevel, quantity: int) -> str:
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
    at = f" at {stock.location.name}" if isinstance(stock, StockLevel) else ""
    return (
        f"Cannot take {abs(quantity)} off: {stock.on_hand} on hand{at}{held}, so {what}. {advice}."
    )


def stock_record_movement(
    *,
    actor: Actor,
    product_id: int,
    kind: str,
    quantity: int,
    reason: str,
    location: Location | int | str | None = None,
) -> InventoryMovement:
    """Record a manual movement: a receipt, adjustment, correction or return, at
    ``location`` (a ``Location``, its id or code; default: ``default_location()``).

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
        refuse_products_with_variants([product_id])
        place = location_resolve(location)
        stocks = _lock_stock([product_id], create_missing=True)
        levels = _lock_levels([(product_id, place.pk)], create_missing=True)
        level = levels[(product_id, place.pk)]
        if level.on_hand + quantity < level.reserved:
            raise Conflict(
                Code.INSUFFICIENT_STOCK,
                _refusal_to_take(level, quantity),
                extra={
                    "lines": [
                        {
                            "product": product_id,
                            "location": place.code,
                            "requested": -quantity,
                            "available": level.available,
                        }
                    ]
                },
            )
        (movement,) = _apply(
            actor=actor,
            stocks=stocks,
            levels=levels,
            deltas=[_Delta(product_id, quantity, 0, place.pk)],
            kind=kind,
            reason=reason,
            reference="",
        )
    return movement
