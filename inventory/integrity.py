"""Does the stock table agree with its ledger and with what holds its reservations?"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q, Sum

from inventory.models import (
    InventoryMovement,
    Location,
    Stock,
    StockLevel,
    Transfer,
    TransferLine,
)
from inventory.selectors import ledger_totals

ReservedQuantities = Callable[[], dict[tuple[int, int], int]]

# Whoever reserves stock (the orders app: its open orders) says how much it holds where,
# by label: "open (pending/processing) orders" -> {(product_id, location_id): quantity}.
_reservation_holders: dict[str, ReservedQuantities] = {}


def register_reservation_holder(label: str, reserved_quantities: ReservedQuantities) -> None:
    """Count ``reserved_quantities()`` (``{(product_id, location_id): quantity}``) as held
    reservations.

    ``label`` names the holders in a drift's description; registering a label again
    replaces its function.
    """
    _reservation_holders[label] = reserved_quantities


# Checks of their own that reservation holders add: each returns (product_id, problem)
# pairs, e.g. order lines whose allocations do not add up to their quantity.
_holder_checks: dict[str, Callable[[], list[tuple[int, str]]]] = {}


def register_holder_check(label: str, check: Callable[[], list[tuple[int, str]]]) -> None:
    """Run ``check()`` with the inventory check; each (product_id, problem) it returns is a
    drift. Registering a label again replaces its function."""
    _holder_checks[label] = check


# Whoever leaves units waiting for stock (the orders app: backordered lines of open
# orders) says how many wait per product: "open orders' backordered lines" -> {product_id: units}.
_waiting_holders: dict[str, Callable[[], dict[int, int]]] = {}


def register_waiting_holder(label: str, waiting_units: Callable[[], dict[int, int]]) -> None:
    """Count ``waiting_units()`` (``{product_id: units}``) as the units waiting for stock
    that the stock rows' ``backordered`` must add up to. Registering a label again
    replaces its function."""
    _waiting_holders[label] = waiting_units


@dataclass(frozen=True)
class Drift:
    product_id: int
    problem: str

    def __str__(self) -> str:
        return f"product {self.product_id}: {self.problem}"


def inventory_drift() -> list[Drift]:
    """Return every mismatch, per product and per (product, location): a product's total
    vs the sum of its levels; each level vs Σ its ledger deltas; each level's reserved vs
    what the registered reservation holders (open order lines) hold there; stock at
    an inactive location (orders cannot reserve it, so it must be moved out); each
    transfer's ledger movements against what it has in transit; and each product's
    backordered units against what the waiting holders (open orders' backordered lines)
    say wait, none of them while stock is available."""
    ledger = ledger_totals()
    held: Counter[tuple[int, int]] = Counter()
    for reserved_quantities in _reservation_holders.values():
        held.update(reserved_quantities())
    holders = " and ".join(_reservation_holders) or "no reservation holder"
    codes = dict(Location.objects.values_list("pk", "code"))
    inactive = set(Location.objects.filter(is_active=False).values_list("pk", flat=True))
    stocks = {s.product_id: (s.on_hand, s.reserved) for s in Stock.objects.all().iterator()}
    drift = _waiting_drift()
    levels = {
        (lv.product_id, lv.location_id): (lv.on_hand, lv.reserved)
        for lv in StockLevel.objects.all().iterator()
    }
    summed: dict[int, tuple[int, int]] = {}
    for (product_id, _), (on_hand, reserved) in levels.items():
        total = summed.get(product_id, (0, 0))
        summed[product_id] = (total[0] + on_hand, total[1] + reserved)
    for product_id in sorted(set(stocks) | set(summed)):
        total = stocks.get(product_id, (0, 0))
        if total != summed.get(product_id, (0, 0)):
            on_hand, reserved = summed.get(product_id, (0, 0))
            drift.append(
                Drift(
                    product_id,
                    f"stock says on_hand={total[0]} reserved={total[1]}, its locations add up "
                    f"to on_hand={on_hand} reserved={reserved}",
                )
            )
    for key in sorted(set(ledger) | set(levels) | set(held)):
        product_id, location_id = key
        at = codes.get(location_id, str(location_id))
        on_hand, reserved = levels.get(key, (0, 0))
        ledger_on_hand, ledger_reserved = ledger.get(key, (0, 0))
        if (on_hand, reserved) != (ledger_on_hand, ledger_reserved):
            drift.append(
                Drift(
                    product_id,
                    f"at {at} stock says on_hand={on_hand} reserved={reserved}, the ledger "
                    f"sums to on_hand={ledger_on_hand} reserved={ledger_reserved}",
                )
            )
        if reserved != held[key]:
            drift.append(
                Drift(product_id, f"at {at} reserved={reserved} but {holders} hold {held[key]}")
            )
        if location_id in inactive and on_hand:
            drift.append(Drift(product_id, f"{on_hand} on hand at inactive location {at}"))
    for check in _holder_checks.values():
        drift += [Drift(product_id, problem) for product_id, problem in check()]
    drift += _transfer_drift()
    return drift


def _waiting_drift() -> list[Drift]:
    """Each stock row's ``backordered`` against the units its holders say wait, and units
    waiting while stock is available (arrivals serve the queue at once: none should)."""
    waiting: Counter[int] = Counter()
    for waiting_units in _waiting_holders.values():
        waiting.update(waiting_units())
    holders = " and ".join(_waiting_holders) or "no waiting holder"
    counted = {
        pid: (backordered, on_hand - reserved)
        for pid, backordered, on_hand, reserved in Stock.objects.filter(
            Q(backordered__gt=0) | Q(product_id__in=list(waiting))
        ).values_list("product_id", "backordered", "on_hand", "reserved")
    }
    drift = []
    for product_id in sorted(set(counted) | set(waiting)):
        backordered, available = counted.get(product_id, (0, 0))
        if backordered != waiting[product_id]:
            drift.append(
                Drift(
                    product_id,
                    f"stock says backordered={backordered} but {holders} wait for "
                    f"{waiting[product_id]}",
                )
            )
        if backordered and available > 0:
            drift.append(
                Drift(product_id, f"{backordered} backordered while {available} are available")
            )
    return drift


def _transfer_drift() -> list[Drift]:
    """Each transfer's ledger movements against its lines: what left and has not come back
    or arrived is exactly what is in transit (nothing, unless the transfer is)."""
    moved = Counter(
        {
            (row["reference"], row["product_id"]): row["total"]
            for row in InventoryMovement.objects.filter(reference__startswith="transfer:")
            .values("reference", "product_id")
            .annotate(total=Sum("on_hand_delta"))
        }
    )
    on_the_way = Counter(
        {
            (f"transfer:{number}", product_id): -(quantity - received)
            for number, product_id, quantity, received in TransferLine.objects.filter(
                transfer__status=Transfer.Status.IN_TRANSIT
            ).values_list("transfer__number", "product_id", "quantity", "received_quantity")
        }
    )
    drift = []
    for reference, product_id in sorted(set(moved) | set(on_the_way)):
        key = (reference, product_id)
        if moved[key] != on_the_way[key]:
            drift.append(
                Drift(
                    product_id,
                    f"{reference.replace(':', ' ', 1)} has {-on_the_way[key]} in transit, its "
                    f"ledger movements leave {-moved[key]} on the way",
                )
            )
    return drift
