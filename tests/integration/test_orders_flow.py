import uuid

import pytest

from inventory.integrity import inventory_drift
from inventory.models import InventoryMovement, Stock
from orders.models import Order
from pms_backend.events.models import Event
from tests.conftest import order_body

pytestmark = pytest.mark.django_db


def place(client, body, key=None):
    return client.post(
        "/api/v1/orders/",
        body,
        format="json",
        HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
    )


def test_order_lifecycle_moves_stock_and_keeps_the_ledger_exact(
    storefront, admin_api, make_product, receive
):
    product = make_product("published")
    receive(product, 10)

    placed = place(storefront, order_body((product, 3)))
    assert placed.status_code == 201, placed.json()
    order = placed.json()
    assert order["status"] == "pending"
    assert order["total"] == "59.70"
    assert order["items"][0]["unit_price"] == "19.90"
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved) == (10, 3)

    assert admin_api.post(f"/api/v1/orders/{order['id']}/process/").status_code == 200
    completed = admin_api.post(f"/api/v1/orders/{order['id']}/complete/")
    assert completed.json()["status"] == "completed"
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (7, 0)

    refunded = admin_api.post(
        f"/api/v1/orders/{order['id']}/refund/", {"restock": True}, format="json"
    )
    assert refunded.json()["status"] == "refunded"
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (10, 0)
    kinds = list(
        InventoryMovement.objects.filter(product=product)
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds == ["receipt", "reserve", "sale", "return"]
    assert inventory_drift() == []
    changes = Event.objects.filter(type="order.status_changed").order_by("id")
    assert [(e.data["from"], e.data["to"]) for e in changes] == [
        ("pending", "processing"),
        ("processing", "completed"),
        ("completed", "refunded"),
    ]


def test_oversell_is_refused_per_line_and_nothing_is_written(storefront, make_product, receive):
    a, b = make_product("published"), make_product("published")
    receive(a, 5)
    receive(b, 1)
    orders_before = Order.objects.count()

    response = place(storefront, order_body((a, 2), (b, 4)))

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "insufficient_stock"
    assert body["lines"] == [{"product": b.pk, "requested": 4, "available": 1}]
    assert Order.objects.count() == orders_before
    assert Stock.objects.get(product=a).reserved == 0


def test_same_idempotency_key_and_body_replays_the_first_answer(storefront, make_product, receive):
    product = make_product("published")
    receive(product, 5)
    body = order_body((product, 1))

    first = place(storefront, body, key="order-1")
    second = place(storefront, body, key="order-1")
    other = place(storefront, order_body((product, 2)), key="order-1")

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_a_move_made_on_a_stale_view_is_refused(storefront, admin_api, make_product, receive):
    product = make_product("published")
    receive(product, 5)
    order = place(storefront, order_body((product, 1))).json()
    assert admin_api.post(f"/api/v1/orders/{order['id']}/process/").status_code == 200

    # A second staff member still looking at the pending order presses Cancel.
    stale = admin_api.post(
        f"/api/v1/orders/{order['id']}/cancel/", {"expected_status": "pending"}, format="json"
    )

    assert stale.status_code == 409
    assert stale.json()["code"] == "concurrent_modification"
    assert stale.json()["current_status"] == "processing"
    assert Order.objects.get(pk=order["id"]).status == "processing"
