"""Backorders under real threads, each with its own PostgreSQL connection: racing buyers
never pass a backorder limit, and receipts racing cancels keep the queue first come,
first served with every count exact."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from audit.actors import Actor
from catalog.services import product_update
from inventory.integrity import inventory_drift
from inventory.models import Stock
from inventory.services import stock_record_movement
from orders.models import Order, OrderItem
from orders.services import order_place, order_transition
from pms_backend.errors import Conflict
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER
from tests.integration.threads import in_thread

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BUYER = Actor.system("backorder-concurrency")


def _buy(product_id: int, quantity: int = 1) -> str:
    try:
        order_place(
            actor=BUYER,
            items=[{"product": product_id, "quantity": quantity}],
            customer=ORDER_CUSTOMER,
            shipping_address=ORDER_ADDRESS,
        )
    except Conflict as exc:
        return exc.code
    return "ok"


def _backorderable(make_product, system_actor, *, on_hand: int, limit: int | None):
    product = make_product("published")
    if on_hand:
        stock_record_movement(
            actor=system_actor, product_id=product.pk, kind="receipt", quantity=on_hand, reason="in"
        )
    product_update(
        actor=system_actor,
        product_id=product.pk,
        data={"allow_backorder": True, "backorder_limit": limit},
    )
    return product


def test_200_buyers_for_50_units_and_a_backorder_limit_of_20_exactly_70_orders(
    make_product, system_actor
):
    product = _backorderable(make_product, system_actor, on_hand=50, limit=20)

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = Counter(pool.map(in_thread(_buy), [product.pk] * 200))

    assert outcomes == {"ok": 70, "backorder_limit_reached": 130}
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved, stock.backordered) == (50, 50, 20)
    lines = OrderItem.objects.filter(product=product)
    assert lines.count() == 70
    assert sorted(lines.values_list("backordered", flat=True)) == [0] * 50 + [1] * 20
    assert inventory_drift() == []


def test_receipts_racing_cancels_keep_the_queue_first_come_first_served(make_product, system_actor):
    product = _backorderable(make_product, system_actor, on_hand=0, limit=None)
    orders = [
        order_place(
            actor=BUYER,
            items=[{"product": product.pk, "quantity": 2}],
            customer=ORDER_CUSTOMER,
            shipping_address=ORDER_ADDRESS,
        )
        for _ in range(24)
    ]
    cancelled = orders[::3]  # 8 of them, spread through the queue
    barrier = threading.Barrier(16)

    def work(i: int) -> str:
        barrier.wait(timeout=30)
        if i < 8:
            order_transition(actor=BUYER, order_id=cancelled[i].pk, transition="cancel")
            return "cancelled"
        stock_record_movement(
            actor=BUYER, product_id=product.pk, kind="receipt", quantity=3, reason="delivery"
        )
        return "received"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = Counter(pool.map(in_thread(work), range(16)))

    assert outcomes == {"cancelled": 8, "received": 8}
    open_lines = list(
        OrderItem.objects.filter(product=product, order__status__in=Order.OPEN_STATUSES)
        .order_by("order__created_at", "pk")
        .values_list("backordered", flat=True)
    )
    # 16 open orders of 2 wait for 32 units; 24 arrived (some reserved by a cancelled order
    # first, then released to the queue): the first 12 served in full, the rest waiting,
    # whoever won which race.
    assert open_lines == [0] * 12 + [2] * 4
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved, stock.backordered) == (24, 24, 8)
    assert inventory_drift() == []
