"""Demo orders: a month of a shop's orders, in every status, placed and moved through the
order services.

A seeding step of ``seed_database`` (``pms_backend.seeding``), run after the demo stock.
Each order is placed with ``order_place`` and moved with ``order_transition``, so its
reservation, ledger movements, audit entries and events are the ones a real order makes.
Only the order's own dates are back-dated (the services' ``now``): it is placed some time
in the last ``HISTORY_DAYS`` days and moved hours or days later. The ledger movements,
audit entries and events carry the moment they were written, by ``job:seed_database``,
so the audit log stays a true record and its hash chain is never touched.

The demo customers are known by their e-mail addresses (``@demo<seed>.example``): the
orders already placed for them are counted, and only the missing ones are placed, so
running it again adds nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.template.defaultfilters import pluralize

from audit.actors import Actor
from catalog.models import Product
from catalog.selectors import sellable_ids
from inventory.models import LOW_STOCK_SETTING, Stock
from orders.demo_extras import (
    PART_OF_AN_ORDER,
    WaitingVariants,
    apply_extra,
    demo_extra,
    demo_waiting_variants,
    waiting_line,
)
from orders.models import Order
from orders.services import order_place, order_transition
from pms_backend.encryption.ciphers import blind_index
from pms_backend.seeding import HISTORY_DAYS, DemoRun, SeedingStep, register_seeding_step
from pms_backend.shopsettings.selectors import setting_get, setting_get_many

DEFAULT_ORDERS = 150
CUSTOMERS = 60
# Every status within the first orders, then a shop's mix: over half completed, the rest
# cancellations, refunds (with and without restock) and a few open orders. Pending ones
# are all recent (they hold their stock only minutes), so they are few.
STATUS_CYCLE = (
    "completed",
    "cancelled",
    "processing",
    "refunded_restocked",
    "pending",
    "refunded",
    "completed",
    "completed",
    "cancelled",
    "completed",
    "completed",
    "completed",
    "processing",
    "completed",
    "refunded_restocked",
    "completed",
    "completed",
    "cancelled",
    "completed",
    "completed",
    "refunded",
    "completed",
    "completed",
    "cancelled",
    "completed",
)
CANCEL_REASONS = (
    "Customer changed their mind",
    "Payment failed",
    "Address could not be verified",
    "Ordered twice by mistake",
)
EXPIRED = "reservation expired"  # what the cleanup job writes
# A demo order leaves this many units above a product's low-stock threshold, so the
# stock bands the demo stock drew (plenty, low, out) survive the orders.
MARGIN = 10

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "Tim",
    "Karen",
    "John",
    "Hedy",
    "Niklaus",
    "Sophie",
    "Guido",
    "Anita",
    "Linus",
]
LAST_NAMES = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Berners-Lee",
    "Jones",
    "Backus",
    "Lamarr",
    "Wirth",
    "Wilson",
    "Rossum",
    "Borg",
    "Torvalds",
]
CITIES = (
    ("London", "GB", "N1 9GU"),
    ("Manchester", "GB", "M1 1AE"),
    ("Dublin", "IE", "D02 X285"),
    ("Amsterdam", "NL", "1012 JS"),
    ("Lyon", "FR", "69002"),
    ("Berlin", "DE", "10115"),
    ("Vienna", "AT", "1010"),
    ("Copenhagen", "DK", "1050"),
)
STREETS = ("High Street", "Station Road", "Mill Lane", "Church Street", "Park Avenue")


@dataclass(frozen=True)
class DemoCustomer:
    email: str
    name: str
    address: dict[str, str]


def demo_customers(seed: int) -> list[DemoCustomer]:
    """Return the demo shop's customers for ``seed`` (same seed, same customers)."""
    rng = random.Random(f"{seed}:customers")
    names = rng.sample([(f, last) for f in FIRST_NAMES for last in LAST_NAMES], CUSTOMERS)
    customers = []
    for first, last in names:
        city, country, postal_code = rng.choice(CITIES)
        customers.append(
            DemoCustomer(
                email=f"{first}.{last}@demo{seed}.example".lower(),
                name=f"{first} {last}",
                address={
                    "line1": f"{rng.randint(1, 180)} {rng.choice(STREETS)}",
                    "city": city,
                    "postal_code": postal_code,
                    "country": country,
                },
            )
        )
    return customers


@dataclass(frozen=True)
class DemoOrder:
    """Order ``index`` of the demo: who, when, and the moves it went through."""

    index: int
    customer: DemoCustomer
    placed_at: datetime
    moves: tuple[tuple[str, datetime], ...]  # (transition, when), in order
    restock: bool
    reason: str
    rng: random.Random  # draws its lines once the stock is known
    extra: str = ""  # what it goes through besides its moves (orders.demo_extras)


def demo_order(
    seed: int,
    index: int,
    *,
    customers: list[DemoCustomer],
    now: datetime,
    reservation: timedelta,
) -> DemoOrder:
    """Return order ``index`` of the demo for ``seed``, dated back from ``now``: placed in
    the last ``HISTORY_DAYS`` days (a pending one within its reservation), each move
    minutes to days after the one before, none after ``now``."""
    rng = random.Random(f"{seed}:order:{index}")
    status = STATUS_CYCLE[index % len(STATUS_CYCLE)]
    customer = rng.choice(customers)
    history = timedelta(days=HISTORY_DAYS)
    reason = ""

    def later(start: datetime, least: timedelta, most: timedelta) -> datetime:
        """A moment from ``least`` to ``most`` after ``start``, and before now."""
        room = now - start
        return start + min(least + (most - least) * rng.random(), room * (0.3 + 0.6 * rng.random()))

    moves: list[tuple[str, datetime]] = []
    if status == "pending":
        # Still holding its stock: placed within the first half of its reservation.
        placed = now - reservation * (0.05 + 0.4 * rng.random())
    elif status == "processing":
        placed = now - timedelta(hours=2) - timedelta(days=3) * rng.random()
        moves.append(("process", later(placed, timedelta(minutes=10), timedelta(hours=6))))
    elif status == "cancelled":
        placed = now - timedelta(hours=1) - (history - timedelta(hours=1)) * rng.random()
        reason = rng.choice((*CANCEL_REASONS, EXPIRED))
        if reason == EXPIRED:
            expired = placed + reservation + timedelta(minutes=rng.randint(1, 9))
            moves.append(("cancel", min(expired, now)))
        elif rng.random() < 0.3:
            process = later(placed, timedelta(minutes=10), timedelta(hours=6))
            moves += [
                ("process", process),
                ("cancel", later(process, timedelta(hours=1), timedelta(hours=20))),
            ]
        else:
            moves.append(("cancel", min(placed + reservation * (0.1 + 0.9 * rng.random()), now)))
    else:  # completed, refunded
        least_age = timedelta(days=4 if status.startswith("refunded") else 1)
        placed = now - least_age - (history - least_age) * rng.random()
        process = later(placed, timedelta(minutes=20), timedelta(hours=8))
        complete = later(process, timedelta(hours=12), timedelta(days=3))
        moves += [("process", process), ("complete", complete)]
        if status.startswith("refunded"):
            moves.append(("refund", later(complete, timedelta(days=1), timedelta(days=7))))
    return DemoOrder(
        index=index,
        customer=customer,
        placed_at=placed,
        moves=tuple(moves),
        restock=status == "refunded_restocked",
        reason=reason,
        rng=rng,
        extra=demo_extra(index, len(STATUS_CYCLE)),
    )


class _Shelf:
    """The demo variants (and products without variants) an order may take from, and how
    many each can still spare."""

    def __init__(self, product_ids: list[int]) -> None:
        rows = (
            Stock.objects.filter(
                product_id__in=sellable_ids(product_ids), product__status=Product.Status.PUBLISHED
            )
            .order_by("product__sku")
            .values_list("product_id", "on_hand", "reserved")
        )
        available = {pk: on_hand - reserved for pk, on_hand, reserved in rows}
        thresholds = setting_get_many(LOW_STOCK_SETTING, product_ids=list(available))
        self.spare = {pk: units - thresholds[pk] - MARGIN for pk, units in available.items()}

    def lines(self, rng: random.Random, besides: dict[int, int] | None = None) -> dict[int, int]:
        """Draw one order's lines (1 to 3 products, 1 to 3 of each) from what can be spared
        (other products than those ``besides``, added to them)."""
        wanted = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
        lines: dict[int, int] = dict(besides or {})
        for _ in range(wanted):
            quantity = rng.choices((1, 2, 3), weights=(7, 2, 1))[0]
            choices = [
                pk for pk, spare in self.spare.items() if spare >= quantity and pk not in lines
            ]
            if not choices:
                break
            pk = rng.choice(choices)
            lines[pk] = quantity
            self.spare[pk] -= quantity
        return lines


def seed_orders(run: DemoRun) -> str:
    """Place the demo orders missing for ``run.seed``, up to ``run.size`` of them."""
    customers = demo_customers(run.seed)
    placed_before = Order.objects.filter(
        customer_email_index__in=[blind_index(c.email) for c in customers]
    ).count()
    reservation = timedelta(minutes=setting_get("orders.reservation_minutes"))
    wanted = [
        demo_order(run.seed, index, customers=customers, now=run.now, reservation=reservation)
        for index in range(placed_before, run.size)
    ]
    shelf = _Shelf(run.product_ids)
    if wanted and not shelf.spare:
        return "Demo orders: none placed (no demo product is in stock)."
    placed = 0
    with transaction.atomic():
        waiting = demo_waiting_variants(
            seed=run.seed, actor=run.actor, product_ids=run.product_ids, now=run.now
        )
        for demo in sorted(wanted, key=lambda d: (d.placed_at, d.index)):
            lines = shelf.lines(demo.rng)
            if demo.extra in PART_OF_AN_ORDER and sum(lines.values()) == 1:
                lines = shelf.lines(demo.rng, besides=lines)  # a part needs another unit
            if not lines:
                break  # nothing left to spare: fewer orders rather than short stock
            _place(run.actor, demo, lines, waiting, run.now)
            placed += 1
    skipped = len(wanted) - placed
    summary = (
        f"Demo orders: {placed} new order{pluralize(placed)} over the last {HISTORY_DAYS} "
        f"days ({placed_before} already there)."
    )
    if skipped:
        summary += f" {skipped} left out: too little stock to spare."
    return summary


def _place(
    actor: Actor, demo: DemoOrder, lines: dict[int, int], waiting: WaitingVariants, now: datetime
) -> None:
    lines = lines | waiting_line(demo.extra, demo.rng, waiting)
    order = order_place(
        actor=actor,
        items=[{"variant": pk, "quantity": quantity} for pk, quantity in lines.items()],
        customer={"email": demo.customer.email, "name": demo.customer.name},
        shipping_address=demo.customer.address,
        now=demo.placed_at,
    )
    for transition, when in demo.moves:
        order = order_transition(
            actor=actor,
            order_id=order.pk,
            transition=transition,
            reason=demo.reason,
            restock=demo.restock,
            now=when,
        )
    apply_extra(actor=actor, order=order, extra=demo.extra, lines=lines, rng=demo.rng, now=now)


register_seeding_step(
    SeedingStep(
        name="orders",
        position=20,
        run=seed_orders,
        size_option="orders",
        default_size=DEFAULT_ORDERS,
        size_help=f"How many demo orders in all (default {DEFAULT_ORDERS}), placed over "
        f"the last {HISTORY_DAYS} days in every status.",
    )
)
