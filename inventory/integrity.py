"""Does the stock table agree with its ledger and with what holds its reservations?"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from inventory.models import Stock
from inventory.selectors import ledger_totals

ReservedQuantities = Callable[[], dict[int, int]]

# Whoever reserves stock (the orders app: its open orders) says how much it holds, by
# label: "open (pending/processing) orders" -> {product_id: quantity}.
_reservation_holders: dict[str, ReservedQuantities] = {}


def register_reservation_holder(label: str, reserved_quantities: ReservedQuantities) -> None:
    """Count ``reserved_quantities()`` (``{product_id: quantity}``) as held reservations.

    ``label`` names the holders in a drift's description; registering a label again
    replaces its function.
    """
    _reservation_holders[label] = reserved_quantities


@dataclass(frozen=True)
class Drift:
    product_id: int
    problem: str

    def __str__(self) -> str:
        return f"product {self.product_id}: {self.problem}"


def inventory_drift() -> list[Drift]:
    """Return every mismatch: stock vs Σ ledger deltas, and reserved vs what the registered
    reservation holders (open order lines) hold."""
    ledger = ledger_totals()
    held: Counter[int] = Counter()
    for reserved_quantities in _reservation_holders.values():
        held.update(reserved_quantities())
    holders = " and ".join(_reservation_holders) or "no reservation holder"
    stocks = {s.product_id: (s.on_hand, s.reserved) for s in Stock.objects.all().iterator()}
    drift = []
    for product_id in sorted(set(ledger) | set(stocks) | set(held)):
        on_hand, reserved = stocks.get(product_id, (0, 0))
        ledger_on_hand, ledger_reserved = ledger.get(product_id, (0, 0))
        if (on_hand, reserved) != (ledger_on_hand, ledger_reserved):
            drift.append(
                Drift(
                    product_id,
                    f"stock says on_hand={on_hand} reserved={reserved}, the ledger sums to "
                    f"on_hand={ledger_on_hand} reserved={ledger_reserved}",
                )
            )
        expected_reserved = held[product_id]
        if reserved != expected_reserved:
            drift.append(
                Drift(product_id, f"reserved={reserved} but {holders} hold {expected_reserved}")
            )
    return drift
