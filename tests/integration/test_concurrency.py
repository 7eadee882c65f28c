"""Oversell, deadlock and race tests: real threads, each with its own PostgreSQL connection."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework.test import APIClient

from audit.actors import Actor
from inventory.integrity import inventory_drift
from inventory.models import Stock
from orders.models import Order
from orders.services import order_place, order_transition
from pms_backend.errors import Conflict
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER, order_body
from tests.integration.threads import in_thread

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BUYER = Actor.system("concurrency-test")


def _buy(lines: list[tuple[int, int]], barrier: threading.Barrier | None = None) -> str:
    if barrier is not None:
        barrier.wait(timeout=30)
    try:
        order_place(
            actor=BUYER,
            items=[{"product": pid, "quantity": qty} for pid, qty in lines],
            customer=ORDER_CUSTOMER,
            shipping_address=ORDER_ADDRESS,
        )
    except Conflict as exc:
        return exc.code
    return "ok"


def test_200_buyers_for_50_units_exactly_50_orders_succeed(make_product, receive):
    product = make_product("published")
    receive(product, 50)

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = Counter(pool.map(in_thread(_buy), [[(product.pk, 1)]] * 200))

    assert outcomes == {"ok": 50, "insufficient_stock": 150}
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved, stock.available) == (50, 50, 0)
    assert Order.objects.filter(status="pending").count() == 50
    assert inventory_drift() == []


def test_opposite_line_orders_never_deadlock_nor_oversell(make_product, receive):
    a, b = make_product("published"), make_product("published")
    receive(a, 20)
    receive(b, 20)
    forward, backward = [(a.pk, 1), (b.pk, 1)], [(b.pk, 1), (a.pk, 1)]
    barrier = threading.Barrier(16)

    def buy(i):
        # The first 16 start together, to make the lock orders really collide.
        return _buy(forward if i % 2 else backward, barrier if i < 16 else None)

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = Counter(pool.map(in_thread(buy), range(60)))

    # Any deadlock would surface as an OperationalError and fail the test.
    assert outcomes == {"ok": 20, "insufficient_stock": 40}
    for product in (a, b):
        stock = Stock.objects.get(product=product)
        assert stock.available == 0 and stock.reserved == 20
    assert inventory_drift() == []


def _same_key_at_once(raw_key: str, key: str, body: dict, clients: int = 10) -> list:
    """POST one order body with one Idempotency-Key from ``clients`` threads released
    together; return each answer's (status, JSON body)."""
    barrier = threading.Barrier(clients)

    def post(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        barrier.wait(timeout=30)
        response = client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(in_thread(post), range(clients)))


def test_same_idempotency_key_sent_10_times_at_once_makes_one_order(
    make_key, make_product, receive
):
    product = make_product("published")
    receive(product, 100)
    raw_key = make_key("storefront")
    results = _same_key_at_once(raw_key, uuid.uuid4().hex, order_body((product, 2)))

    assert {status for status, _ in results} == {201}
    assert len({body["id"] for _, body in results}) == 1
    assert Order.objects.count() == 1
    assert Stock.objects.get(product=product).reserved == 2


def test_processing_and_cancelling_at_once_exactly_one_wins(make_product, receive):
    product = make_product("published")
    receive(product, 50)
    for _ in range(8):
        order = order_place(
            actor=BUYER,
            items=[{"product": product.pk, "quantity": 1}],
            customer=ORDER_CUSTOMER,
            shipping_address=ORDER_ADDRESS,
        )
        barrier = threading.Barrier(2)

        def move(name, order_id=order.pk, barrier=barrier):
            barrier.wait(timeout=30)
            try:
                # Both staff members saw the order pending when they pressed their button.
                order_transition(
                    actor=BUYER, order_id=order_id, transition=name, expected_status="pending"
                )
            except Conflict as exc:
                return exc.code
            return "ok"

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = sorted(pool.map(in_thread(move), ["process", "cancel"]))

        assert outcomes.count("ok") == 1, outcomes
        assert set(outcomes) - {"ok"} <= {"concurrent_modification", "invalid_transition"}
        order.refresh_from_db()
        assert order.status in ("processing", "cancelled")
    assert inventory_drift() == []


def test_same_idempotency_key_refused_10_times_at_once_gets_one_stored_refusal(
    make_key, make_product, receive
):
    product = make_product("published")
    receive(product, 1)
    raw_key = make_key("storefront")
    key = uuid.uuid4().hex
    results = _same_key_at_once(raw_key, key, order_body((product, 2)))

    assert {status for status, _ in results} == {409}
    assert all(body == results[0][1] for _, body in results)
    assert results[0][1]["lines"] == [{"product": product.pk, "requested": 2, "available": 1}]
    assert Order.objects.count() == 0
    assert Stock.objects.get(product=product).reserved == 0
    # Stock arrives, but the key keeps its answer.
    receive(product, 5)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    again = client.post(
        "/api/v1/orders/", order_body((product, 2)), format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert (again.status_code, again.json()) == (409, results[0][1])
    assert again["Idempotent-Replayed"] == "true"
