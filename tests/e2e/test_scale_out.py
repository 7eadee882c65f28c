"""Scale-out, shown with real processes: two web servers (``scripts/start.sh``, distinct
ports) and two Celery workers on distinct queues (``scripts/worker.sh -Q …``; one runs
beat), sharing one PostgreSQL database and one Redis.

Orders placed at the same moment through both servers for a product with little stock
never oversell; every event reaches the webhook receiver exactly once, whichever worker
dispatched it and whichever sent it; and a websocket client on either server hears every
event, including those caused through the other server.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db.models import Max, Sum

from inventory.models import Stock
from orders.models import Order, OrderItem
from pms_backend.events.models import Event
from tests.e2e.clients import (
    EventListener,
    all_pages,
    api,
    create_endpoint,
    manage,
    place_order,
    verified_envelopes,
    ws_url,
)
from tests.e2e.processes import (
    Redis,
    base_env,
    start_server,
    start_worker,
    started_together,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STOCK = 10
ATTEMPTS = 40  # at once, half through each server


@pytest.fixture
def cluster(tmp_path):
    """Two servers; worker "dispatch" takes the events and periodic queues (with beat),
    worker "sender" only the webhooks queue."""
    with Redis(tmp_path) as redis:
        env = base_env(redis.url)
        with started_together(
            lambda: start_server(tmp_path, env, "web-a"),
            lambda: start_server(tmp_path, env, "web-b"),
            lambda: start_worker(tmp_path, env, "dispatch", "-Q", "events,celery", beat=True),
            lambda: start_worker(tmp_path, env, "sender", "-Q", "webhooks", beat=False),
        ) as (web_a, web_b, *_workers):
            yield {"web_a": web_a, "web_b": web_b, "env": env}


def _deliveries(admin, endpoint_id: str) -> list[dict]:
    return all_pages(admin, f"/webhooks/deliveries/?endpoint={endpoint_id}&page_size=100")


def test_two_servers_and_two_workers_share_the_work_without_overselling(
    cluster, receiver, make_key
):
    web_a, web_b = cluster["web_a"], cluster["web_b"]
    admin_key, shop_key = make_key("admin", name="back-office"), make_key("storefront")
    admin_a, admin_b = api(web_a.base_url, admin_key), api(web_b.base_url, admin_key)
    shops = {"a": api(web_a.base_url, shop_key), "b": api(web_b.base_url, shop_key)}
    first_event = Event.objects.aggregate(m=Max("pk"))["m"] or 0
    endpoint_id, secret = create_endpoint(admin_a, receiver.url)

    listeners = {
        name: EventListener(ws_url(web.base_url), admin_key, ["products", "stock", "orders"])
        for name, web in (("a", web_a), ("b", web_b))
    }
    try:
        for listener in listeners.values():
            listener.start()

        # The catalog is written through one server, the stock through the other.
        product = admin_a.post("/products/", json={"sku": "HOT-1", "name": "Hot", "price": "9.00"})
        assert product.status_code == 201, product.text
        product_id = product.json()["id"]
        category = admin_a.post("/categories/", json={"name": "Deals"}).json()["id"]
        assert admin_b.patch(f"/products/{product_id}/", json={"category": category}).is_success
        assert admin_b.post(f"/products/{product_id}/publish/").status_code == 200
        receipt = admin_b.post(
            "/inventory/movements/",
            json={"product": product_id, "quantity": STOCK, "kind": "receipt", "reason": "drop"},
        )
        assert receipt.status_code == 201, receipt.text
        via = {
            "a": Event.objects.get(pk__gt=first_event, type="product.created").event_id,
            "b": Event.objects.get(pk__gt=first_event, type="stock.updated").event_id,
        }

        # Everyone presses "Buy" at once, half of them through each server.
        start = threading.Barrier(ATTEMPTS)

        def buy(n: int) -> tuple[str, int, dict]:
            server = "ab"[n % 2]
            start.wait(30)
            response = place_order(shops[server], (product_id, 1))
            return server, response.status_code, response.json()

        with ThreadPoolExecutor(ATTEMPTS) as pool:
            outcomes = list(pool.map(buy, range(ATTEMPTS)))

        statuses = Counter(status for _, status, _ in outcomes)
        assert statuses == {201: STOCK, 409: ATTEMPTS - STOCK}, outcomes
        for _, status, body in outcomes:
            if status == 409:
                assert body["code"] == "insufficient_stock", body
        placed = {body["id"]: server for server, status, body in outcomes if status == 201}
        assert len(placed) == STOCK

        # The database agrees: all stock reserved by exactly the orders that were accepted.
        stock = Stock.objects.get(product_id=product_id)
        assert (stock.on_hand, stock.reserved) == (STOCK, STOCK)
        assert {str(pk) for pk in Order.objects.values_list("pk", flat=True)} == set(placed)
        reserved = OrderItem.objects.filter(
            product_id=product_id, order__status=Order.Status.PENDING
        ).aggregate(total=Sum("quantity"))["total"]
        assert reserved == STOCK
        for shop in shops.values():
            seen = shop.get(f"/products/{product_id}/stock/").json()
            assert (seen["available"], seen["in_stock"]) == (0, False)
        inventory = manage(cluster["env"], "check_inventory")
        assert inventory.returncode == 0, inventory.stdout + inventory.stderr

        # Every event reaches the receiver exactly once: each delivery succeeded at its
        # first attempt and no webhook-id came twice.
        # (audit.sealed, which beat may publish meanwhile, goes only to endpoints naming it.)
        events = dict(
            Event.objects.filter(pk__gt=first_event)
            .exclude(type="audit.sealed")
            .values_list("event_id", "pk")
        )
        assert len(events) >= 2 * STOCK  # an order.created and a stock.updated per order

        def all_delivered() -> bool:
            deliveries = _deliveries(admin_b, endpoint_id)
            return len(deliveries) == len(events) and all(
                d["status"] == "succeeded" for d in deliveries
            )

        wait_until(all_delivered, 90, "not every webhook was delivered", interval=1)
        received = Counter(r.headers["webhook-id"] for r in receiver.received)
        assert set(received) == set(events)
        assert [wid for wid, n in received.items() if n > 1] == []
        assert {e["id"] for e in verified_envelopes(secret, receiver.received)} == set(events)
        assert all(d["attempt_count"] == 1 for d in _deliveries(admin_b, endpoint_id))

        # Both websocket clients hear every event, those caused through the other server
        # too (the product was created through a, its stock received through b).
        for name, listener in listeners.items():
            listener.wait_for(
                lambda seen: {e["id"] for e in seen} >= set(events), 60, f"events missing on {name}"
            )
            assert via["b" if name == "a" else "a"] in listener.ids()
            heard = {e["data"]["id"] for e in listener.events if e["type"] == "order.created"}
            assert heard == set(placed), name
    finally:
        for closeable in (*listeners.values(), admin_a, admin_b, *shops.values()):
            closeable.close()
