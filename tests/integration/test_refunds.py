"""Refunds over the API: partial and full, several per order, what is refused (and then
nothing written), the v1 refund transition paying the rest, and the events and audit."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from audit.models import AuditLog
from inventory.integrity import inventory_drift
from orders.models import Order, OrderItem, Refund, RefundLine
from pms_backend.events.models import Event
from tests.conftest import order_body
from tests.integration.order_support import move_order, place, stock_of

pytestmark = pytest.mark.django_db


def refund(client, order_id, body, key: str | None = None):
    return client.post(
        f"/api/v1/orders/{order_id}/refunds/",
        body,
        format="json",
        HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
    )


@pytest.fixture
def shop(make_product, receive):
    """Two published products (19.90 and 5.00) with stock."""
    a = make_product("published")
    b = make_product("published", price=Decimal("5.00"))
    receive(a, 20)
    receive(b, 20)
    return a, b


@pytest.fixture
def completed(storefront, shop):
    """A completed order: 3 x 19.90 + 2 x 5.00 = 69.70, every unit shipped."""
    a, b = shop
    placed = place(storefront, order_body((a, 3), (b, 2)))
    assert placed.status_code == 201, placed.json()
    order_id = placed.json()["id"]
    move_order(order_id, "process", "complete")
    return order_id


def refunds_state():
    return (
        Refund.objects.count(),
        RefundLine.objects.count(),
        sorted(OrderItem.objects.values_list("pk", "quantity_refunded")),
        sorted(Order.objects.values_list("pk", "status", "refunded_amount")),
        AuditLog.objects.count(),
        Event.objects.count(),
    )


def test_a_partial_refund_keeps_the_order_completed_with_what_was_paid_back(
    admin_api, completed, shop
):
    a, _ = shop
    events_before = Event.objects.count()

    response = refund(admin_api, completed, {"lines": [{"product": a.pk, "quantity": 1}]})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"].startswith("RF-")
    assert body["amount"] == "19.90"  # the unit's price, by default
    assert body["currency"] == "EUR"
    assert body["lines"] == [{"product": a.pk, "sku": a.sku, "quantity": 1}]
    assert body["order"]["status"] == "completed"
    assert body["order"]["refunded_amount"] == "19.90"
    order = admin_api.get(f"/api/v1/orders/{completed}/").json()
    assert order["status"] == "completed"
    assert order["refunded_amount"] == "19.90"
    assert {i["product"]: i["quantity_refunded"] for i in order["items"]}[a.pk] == 1
    # Only the refund's event: the order did not change status.
    new = list(Event.objects.filter(pk__gt=0).order_by("id").values_list("type", flat=True))
    assert new[events_before:] == ["refund.created"]
    entry = AuditLog.objects.get(action="refund.created")
    assert entry.object_id == completed
    assert entry.changes["refunded_amount"] == {"before": "0.00", "after": "19.90"}
    assert entry.changes["lines"]["after"] == {str(a.pk): 1}


def test_several_refunds_reaching_the_total_make_the_order_refunded(admin_api, completed, shop):
    a, b = shop
    first = refund(admin_api, completed, {"lines": [{"product": a.pk, "quantity": 2}]})
    second = refund(
        admin_api, completed, {"lines": [{"product": b.pk, "quantity": 2}], "amount": "9.00"}
    )
    assert (first.status_code, second.status_code) == (201, 201)
    assert admin_api.get(f"/api/v1/orders/{completed}/").json()["refunded_amount"] == "48.80"

    last = refund(
        admin_api, completed, {"lines": [{"product": a.pk, "quantity": 1}], "amount": "20.90"}
    )

    assert last.status_code == 201, last.json()
    assert last.json()["order"]["status"] == "refunded"
    order = Order.objects.get(pk=completed)
    assert (order.status, order.refunded_amount, order.restocked) == (
        "refunded",
        Decimal("69.70"),
        False,
    )
    assert order.refunded_at is not None
    assert sum(r.amount for r in Refund.objects.filter(order=order)) == order.total
    change = Event.objects.get(type="order.status_changed", data__to="refunded")
    assert (change.data["from"], change.data["refunded_amount"]) == ("completed", "69.70")
    assert AuditLog.objects.filter(action="order.refund", object_id=completed).count() == 1
    listed = admin_api.get(f"/api/v1/orders/{completed}/refunds/").json()
    assert listed["count"] == 3
    assert [r["amount"] for r in listed["results"]] == ["39.80", "9.00", "20.90"]


def test_an_amount_alone_is_a_goodwill_refund(admin_api, completed):
    response = refund(admin_api, completed, {"amount": "5.55", "reason": "late delivery"})

    assert response.status_code == 201, response.json()
    assert (response.json()["lines"], response.json()["reason"]) == ([], "late delivery")
    assert Order.objects.get(pk=completed).refunded_amount == Decimal("5.55")
    assert set(OrderItem.objects.values_list("quantity_refunded", flat=True)) == {0}


def test_refunding_more_than_was_paid_is_409_and_writes_nothing(admin_api, completed, shop):
    a, _ = shop
    assert refund(admin_api, completed, {"amount": "60.00"}).status_code == 201
    before = refunds_state()

    response = refund(admin_api, completed, {"amount": "9.71"})

    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "refund_exceeds_paid"
    assert (problem["refundable_amount"], problem["amount"]) == ("9.70", "9.71")
    assert "at most 9.70" in problem["detail"]
    # The units' price counts as well when no amount is given.
    over = refund(admin_api, completed, {"lines": [{"product": a.pk, "quantity": 1}]})
    assert over.json()["code"] == "refund_exceeds_paid"
    assert refunds_state() == before


def test_refunding_more_units_than_shipped_and_unrefunded_is_409(admin_api, completed, shop):
    a, b = shop
    assert (
        refund(admin_api, completed, {"lines": [{"product": a.pk, "quantity": 2}]}).status_code
        == 201
    )
    before = refunds_state()

    response = refund(
        admin_api,
        completed,
        {"lines": [{"product": a.pk, "quantity": 2}, {"product": b.pk, "quantity": 1}]},
    )

    assert response.status_code == 409
    assert response.json()["code"] == "refund_exceeds_quantity"
    assert response.json()["lines"] == [
        {
            "product": a.pk,
            "sku": a.sku,
            "requested": 2,
            "refundable": 1,
            "shipped": 3,
            "refunded": 2,
        }
    ]
    assert refunds_state() == before


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "invalid_refund", "lines"),
        ({"amount": "0.00"}, "invalid_refund", "amount"),
        ({"amount": "-1.00"}, "invalid_refund", "amount"),
        ({"amount": "1.005"}, "validation_error", "amount"),
        ({"amount": 3}, "validation_error", "amount"),
        ({"lines": [{"product": 999999, "quantity": 1}]}, "unknown_line", "lines"),
        ({"lines": [{"product": 1, "quantity": 0}]}, "validation_error", "lines"),
        ({"lines": [], "extra": 1}, "validation_error", "extra"),
    ],
)
def test_bad_refund_bodies_are_400_and_write_nothing(admin_api, completed, body, code, field):
    before = refunds_state()

    response = refund(admin_api, completed, body)

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    if code == "validation_error":
        assert any(name.startswith(field) for name in response.json()["errors"])
    assert refunds_state() == before


def test_pending_cancelled_and_refunded_orders_are_not_refunded(admin_api, storefront, shop):
    a, _ = shop
    pending = place(storefront, order_body((a, 1))).json()["id"]
    cancelled = place(storefront, order_body((a, 1))).json()["id"]
    move_order(cancelled, "cancel")
    refunded = place(storefront, order_body((a, 1))).json()["id"]
    move_order(refunded, "process", "complete", "refund")
    before = refunds_state()

    for order_id, status in (
        (pending, "pending"),
        (cancelled, "cancelled"),
        (refunded, "refunded"),
    ):
        response = refund(admin_api, order_id, {"amount": "1.00"})
        assert response.status_code == 409
        assert (response.json()["code"], response.json()["current_status"]) == (
            "order_not_refundable",
            status,
        )
    assert refunds_state() == before


def test_a_processing_order_is_refunded_in_part_only(admin_api, storefront, shop):
    a, _ = shop
    order_id = place(storefront, order_body((a, 2))).json()["id"]
    move_order(order_id, "process")

    # Nothing has shipped: its units cannot be paid back, an amount can.
    units = refund(admin_api, order_id, {"lines": [{"product": a.pk, "quantity": 1}]})
    assert units.json()["code"] == "refund_exceeds_quantity"
    assert refund(admin_api, order_id, {"amount": "10.00"}).status_code == 201
    everything = refund(admin_api, order_id, {"amount": "29.80"})
    assert everything.status_code == 409
    assert everything.json()["code"] == "order_not_refundable"
    assert "cancel" in everything.json()["detail"]
    assert Order.objects.get(pk=order_id).status == "processing"


def test_the_v1_refund_pays_the_rest_back_as_one_refund(admin_api, completed, shop):
    a, b = shop
    assert (
        refund(admin_api, completed, {"lines": [{"product": a.pk, "quantity": 1}]}).status_code
        == 201
    )

    response = admin_api.post(f"/api/v1/orders/{completed}/refund/", {}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["refunded_amount"]) == ("refunded", "69.70")
    assert {i["product"]: i["quantity_refunded"] for i in body["items"]} == {a.pk: 3, b.pk: 2}
    rest = Refund.objects.filter(order_id=completed).order_by("created_at", "id").last()
    assert rest.amount == Decimal("49.80")
    assert {(line.item.product_id, line.quantity) for line in rest.lines.all()} == {
        (a.pk, 2),
        (b.pk, 2),
    }
    entry = AuditLog.objects.get(action="order.refund")
    assert entry.changes["refund"]["after"] == rest.number
    assert Event.objects.filter(type="refund.created").count() == 2
    # Nothing is left to pay back.
    again = refund(admin_api, completed, {"amount": "0.01"})
    assert again.json()["code"] == "order_not_refundable"


def test_the_v1_refund_alone_still_refunds_and_restocks_everything(admin_api, completed, shop):
    a, b = shop
    response = admin_api.post(
        f"/api/v1/orders/{completed}/refund/", {"restock": True}, format="json"
    )

    assert response.json()["status"] == "refunded"
    assert (stock_of(a), stock_of(b)) == ((20, 0), (20, 0))
    (only,) = Refund.objects.filter(order_id=completed)
    assert only.amount == Decimal("69.70")
    assert inventory_drift() == []


def test_a_retried_refund_with_the_same_key_pays_once(admin_api, completed):
    first = refund(admin_api, completed, {"amount": "10.00"}, key="refund-once")
    again = refund(admin_api, completed, {"amount": "10.00"}, key="refund-once")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Refund.objects.count() == 1
    other = refund(admin_api, completed, {"amount": "11.00"}, key="refund-once")
    assert other.status_code == 422


def test_refunds_need_an_idempotency_key_and_orders_manage(admin_api, storefront, completed):
    keyless = admin_api.post(
        f"/api/v1/orders/{completed}/refunds/", {"amount": "1.00"}, format="json"
    )
    assert (keyless.status_code, keyless.json()["code"]) == (400, "idempotency_key_required")
    # The storefront placed the order: it reads its refunds but pays none.
    assert refund(storefront, completed, {"amount": "1.00"}).status_code == 403
    assert storefront.get(f"/api/v1/orders/{completed}/refunds/").status_code == 200
    assert Refund.objects.count() == 0


def test_the_storefront_reads_its_refunds_without_the_staff_behind_them(
    admin_api, storefront, completed
):
    refund(admin_api, completed, {"amount": "2.00", "reason": "late"})

    (seen,) = storefront.get(f"/api/v1/orders/{completed}/refunds/").json()["results"]

    assert (seen["amount"], seen["reason"]) == ("2.00", "late")
    assert "integration" not in str(seen)  # the admin key's name
    assert "api_key:" not in str(seen)


def test_another_storefront_does_not_see_the_refunds(client_for, completed):
    other = client_for("storefront")
    assert other.get(f"/api/v1/orders/{completed}/refunds/").status_code == 404
    assert other.get(f"/api/v1/orders/{uuid.uuid4()}/refunds/").status_code == 404


def test_refunding_an_unknown_order_is_404(admin_api):
    assert refund(admin_api, uuid.uuid4(), {"amount": "1.00"}).status_code == 404
    assert refund(admin_api, "not-an-order", {"amount": "1.00"}).status_code == 404


def test_storefront_keys_hear_their_refunds_without_customer_data(completed):
    from orders.topics import placed_by

    event = Event.objects.filter(type="order.created").get()
    assert placed_by([event])(event) is not None
    refund_event = Event(type="refund.created", topic="orders", data={"order": {"id": completed}})
    assert placed_by([refund_event])(refund_event) == placed_by([event])(event)


@pytest.mark.usefixtures("clear_of_midnight")  # ``completed`` places today's order
def test_todays_revenue_leaves_out_what_was_refunded(admin_api, completed):
    from django.utils import timezone

    from orders.monitoring import _today_live

    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    assert _today_live(today)[1] == {"EUR": Decimal("69.70")}

    refund(admin_api, completed, {"amount": "20.00"})

    assert _today_live(today)[1] == {"EUR": Decimal("49.70")}
