"""Does the stock table agree with its ledger and with the open orders?"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from inventory.models import Stock
from inventory.selectors import ledger_totals


@dataclass(frozen=True)
class Drift:
    product_id: int
    problem: str

    def __str__(self) -> str:
        return f"product {self.product_id}: {self.problem}"


def inventory_drift() -> list[Drift]:
    """Return every mismatch: stock vs Σ ledger deltas, and reserved vs open order lines."""
    from orders.models import Order, OrderItem

    ledger = ledger_totals()
    open_quantities = dict(
        OrderItem.objects.filter(order__status__in=Order.OPEN_STATUSES)
        .values("product_id")
        .annotate(quantity=Sum("quantity"))
        .values_list("product_id", "quantity")
    )
    stocks = {s.product_id: (s.on_hand, s.reserved) for s in Stock.objects.all().iterator()}
    drift = []
    for product_id in sorted(set(ledger) | set(stocks) | set(open_quantities)):
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
        expected_reserved = open_quantities.get(product_id, 0)
        if reserved != expected_reserved:
            drift.append(
                Drift(
                    product_id,
                    f"reserved={reserved} but open (pending/processing) orders hold "
                    f"{expected_reserved}",
                )
            )
    return drift
