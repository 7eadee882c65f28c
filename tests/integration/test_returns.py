"""Returns (RMA) over the API: requested → received (restocked at a chosen location or
written off as damaged) → refunded, or cancelled; what is refused, with nothing written."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from audit.actors import Actor
from audit.models import AuditLog
from inventory.integrity import inventory_drift
from inventory.locations import location_create, location_update
from inventory.models import InventoryMovement, Stock, StockLevel
from inventory.services import default_location
from orders.models import Order, Refund, Return, ReturnLine
from pms_backend.events.models import Event
from tests.conftest import order_body
from tests.integration.order_support import move_order, place

pytestmark = pytest.mark.django_db
STAFF = Actor.system("returns-tests")


def post(client, path, body=None):
    return client.post(path, body or {}, format="json")


def ask(client, order_id, lines, reason="too small"):
    return post(
        client,
        f"/api/v1/orders/{order_id}/returns/",
        {"lines": [{"product": p.pk, "quantity": q} for p, q in lines], "reason": reason},
    )


def receive(client, order_id, number, lines):
    return post(client, f"/api/v1/orders/{order_id}/returns/{number}/receive/", {"lines": lines})


@pytest.fixture
def shop(make_product, receive):
    """Two products at the default location (10.00 and 4.50) and a second location."""
    main = default_location()
    a = make_product("published", price=Decimal("10.00"))
    b = make_product("published", price=Decimal("4.50"))
    receive(a, 10)
    receive(b, 10)
    outlet = location_create(actor=STAFF, code="outlet", name="Outlet store", priority=500)
    return a, b, main, outlet


@pytest.fixture
def completed(storefront, shop):
    """A completed order of 3 x a and 2 x b (39.00), shipped from the default location."""
    a, b, _, _ = shop
    order_id = place(storefront, order_body((a, 3), (b, 2))).json()["id"]
    move_order(order_id, "process", "complete")
    return order_id


def state():
    return (
        Return.objects.count(),
        sorted(
            ReturnLine.objects.values_list(
                "pk", "quantity", "quantity_restocked", "quantity_damaged", "location_id"
            )
        ),
        sorted(Return.objects.values_list("pk", "status")),
        Refund.objects.count(),
        sorted(Order.objects.values_list("pk", "status", "refunded_amount")),
        sorted(Stock.objects.values_list("product_id", "on_hand", "reserved")),
        sorted(StockLevel.objects.values_list("product_id", "location_id", "on_hand", "reserved")),
        InventoryMovement.objects.count(),
        AuditLog.objects.count(),
        Event.objects.count(),
    )


def test_a_return_restocked_at_a_chosen_location_and_damaged_units_then_refunded(
    storefront, admin_api, completed, shop
):
    a, b, main, outlet = shop
    requested = ask(storefront, completed, [(a, 2), (b, 1)])
    assert requested.status_code == 201, requested.json()
    rma = requested.json()
    assert rma["number"].startswith("RMA-")
    assert (rma["status"], rma["reason"]) == ("requested", "too small")
    assert [(line["product"], line["quantity"], line["received"]) for line in rma["lines"]] == [
        (a.pk, 2, 0),
        (b.pk, 1, 0),
    ]
    number = rma["number"]

    received = receive(
        admin_api,
        completed,
        number,
        [
            {"product": a.pk, "restocked": 1, "damaged": 1, "location": "outlet"},
            {"product": b.pk, "restocked": 1},
        ],
    )

    assert received.status_code == 200, received.json()
    lines = {line["product"]: line for line in received.json()["lines"]}
    assert received.json()["status"] == "received"
    assert (lines[a.pk]["restocked"], lines[a.pk]["damaged"], lines[a.pk]["location"]) == (
        1,
        1,
        "outlet",
    )
    assert (lines[b.pk]["received"], lines[b.pk]["location"]) == (1, main.code)
    # The restocked units are on hand where staff put them; the damaged one is not.
    assert StockLevel.objects.get(product=a, location=outlet).on_hand == 1
    assert StockLevel.objects.get(product=a, location=main).on_hand == 7
    assert Stock.objects.get(product=a).on_hand == 8
    assert Stock.objects.get(product=b).on_hand == 9
    moved = InventoryMovement.objects.filter(kind="return").order_by("product_id")
    assert [(m.product_id, m.location_id, m.on_hand_delta, m.reference) for m in moved] == [
        (a.pk, outlet.pk, 1, f"order:{Order.objects.get(pk=completed).number}"),
        (b.pk, main.pk, 1, f"order:{Order.objects.get(pk=completed).number}"),
    ]
    assert inventory_drift() == []

    refunded = post(admin_api, f"/api/v1/orders/{completed}/returns/{number}/refund/")

    assert refunded.status_code == 200, refunded.json()
    assert refunded.json()["status"] == "refunded"
    paid = Refund.objects.get(rma__number=number)
    # Every unit that came back is paid back, damaged or not: 2 x 10.00 + 1 x 4.50.
    assert paid.amount == Decimal("24.50")
    assert refunded.json()["refund"] == paid.number
    order = admin_api.get(f"/api/v1/orders/{completed}/").json()
    assert (order["status"], order["refunded_amount"]) == ("completed", "24.50")
    assert {i["product"]: i["quantity_refunded"] for i in order["items"]} == {a.pk: 2, b.pk: 1}
    types = list(
        Event.objects.filter(type__startswith="re").order_by("id").values_list("type", flat=True)
    )
    assert types == ["return.requested", "return.received", "refund.created", "return.refunded"]
    actions = list(
        AuditLog.objects.filter(object_id=completed, action__startswith="re")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["return.requested", "return.received", "refund.created", "return.refunded"]
    listed = storefront.get(f"/api/v1/orders/{completed}/returns/").json()
    assert [r["status"] for r in listed["results"]] == ["refunded"]


def test_a_return_of_units_never_shipped_is_409_and_writes_nothing(storefront, admin_api, shop):
    a, _, _, _ = shop
    order_id = place(storefront, order_body((a, 2))).json()["id"]
    move_order(order_id, "process")  # nothing shipped yet
    before = state()

    response = ask(admin_api, order_id, [(a, 1)])

    assert response.status_code == 409
    assert response.json()["code"] == "return_exceeds_shipped"
    assert response.json()["lines"] == [
        {
            "product": a.pk,
            "sku": a.sku,
            "requested": 1,
            "returnable": 0,
            "shipped": 0,
            "returned": 0,
        }
    ]
    assert state() == before


def test_units_are_returned_once(admin_api, completed, shop):
    a, _, _, _ = shop
    assert ask(admin_api, completed, [(a, 2)]).status_code == 201
    before = state()

    again = ask(admin_api, completed, [(a, 2)])

    assert again.status_code == 409
    assert again.json()["lines"][0]["returnable"] == 1
    assert state() == before
    assert ask(admin_api, completed, [(a, 1)]).status_code == 201


def test_a_cancelled_return_gives_its_units_back_to_return(admin_api, completed, shop):
    a, _, _, _ = shop
    number = ask(admin_api, completed, [(a, 3)]).json()["number"]

    cancelled = post(
        admin_api, f"/api/v1/orders/{completed}/returns/{number}/cancel/", {"reason": "kept it"}
    )

    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["cancellation_reason"]) == (
        "cancelled",
        "kept it",
    )
    assert ask(admin_api, completed, [(a, 3)]).status_code == 201
    # A cancelled return is neither received nor cancelled again.
    for step in ("receive", "cancel", "refund"):
        body = {"lines": [{"product": a.pk, "restocked": 1}]} if step == "receive" else {}
        refused = post(admin_api, f"/api/v1/orders/{completed}/returns/{number}/{step}/", body)
        assert (refused.status_code, refused.json()["code"]) == (409, "invalid_transition")


def test_receiving_more_than_requested_is_409_and_writes_nothing(admin_api, completed, shop):
    a, b, _, _ = shop
    number = ask(admin_api, completed, [(a, 1)]).json()["number"]
    before = state()

    more = receive(admin_api, completed, number, [{"product": a.pk, "restocked": 1, "damaged": 1}])
    assert (more.status_code, more.json()["code"]) == (409, "receipt_exceeds_requested")
    foreign = receive(admin_api, completed, number, [{"product": b.pk, "restocked": 1}])
    assert (foreign.status_code, foreign.json()["code"]) == (400, "unknown_line")
    nothing = receive(admin_api, completed, number, [{"product": a.pk}])
    assert (nothing.status_code, nothing.json()["code"]) == (400, "invalid_return")
    unknown = receive(
        admin_api, completed, number, [{"product": a.pk, "restocked": 1, "location": "nowhere"}]
    )
    assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_location")
    assert state() == before


def test_receiving_at_an_inactive_location_is_409(admin_api, completed, shop):
    a, _, _, _ = shop
    location_create(actor=STAFF, code="closed", name="Closed", priority=900)
    location_update(actor=STAFF, code="closed", data={"is_active": False})
    number = ask(admin_api, completed, [(a, 1)]).json()["number"]
    before = state()

    response = receive(
        admin_api, completed, number, [{"product": a.pk, "restocked": 1, "location": "closed"}]
    )

    assert (response.status_code, response.json()["code"]) == (409, "location_inactive")
    assert state() == before


def test_refunding_a_return_for_less_and_not_for_more(admin_api, completed, shop):
    a, _, _, _ = shop
    number = ask(admin_api, completed, [(a, 2)]).json()["number"]
    receive(admin_api, completed, number, [{"product": a.pk, "damaged": 2}])
    path = f"/api/v1/orders/{completed}/returns/{number}/refund/"
    before = state()

    more = post(admin_api, path, {"amount": "20.01"})
    assert (more.status_code, more.json()["code"]) == (409, "refund_exceeds_returned")
    assert state() == before

    less = post(admin_api, path, {"amount": "15.00", "reason": "scuffed box"})
    assert less.status_code == 200, less.json()
    paid = Refund.objects.get(rma__number=number)
    assert (paid.amount, paid.reason) == (Decimal("15.00"), "scuffed box")
    # Written off: nothing came back on hand.
    assert not InventoryMovement.objects.filter(kind="return").exists()
    again = post(admin_api, path)
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")


def test_a_storefront_asks_for_returns_of_its_own_orders_only(
    storefront, client_for, completed, shop
):
    a, _, _, _ = shop
    other = client_for("storefront")
    before = state()

    assert ask(other, completed, [(a, 1)]).status_code == 404
    assert other.get(f"/api/v1/orders/{completed}/returns/").status_code == 404
    assert state() == before
    number = ask(storefront, completed, [(a, 1)]).json()["number"]
    # Receiving and refunding are staff work.
    assert (
        receive(storefront, completed, number, [{"product": a.pk, "restocked": 1}]).status_code
        == 403
    )
    assert (
        post(storefront, f"/api/v1/orders/{completed}/returns/{number}/cancel/").status_code == 403
    )
    detail = storefront.get(f"/api/v1/orders/{completed}/returns/{number}/")
    assert (detail.status_code, detail.json()["number"]) == (200, number)
    assert storefront.get(f"/api/v1/orders/{completed}/returns/RMA-NOPE/").status_code == 404


def test_returns_of_orders_not_shipped_or_closed_are_refused(admin_api, storefront, shop):
    a, _, _, _ = shop
    pending = place(storefront, order_body((a, 1))).json()["id"]
    cancelled = place(storefront, order_body((a, 1))).json()["id"]
    move_order(cancelled, "cancel")
    refunded = place(storefront, order_body((a, 1))).json()["id"]
    move_order(refunded, "process", "complete", "refund")
    before = state()

    for order_id, status in (
        (pending, "pending"),
        (cancelled, "cancelled"),
        (refunded, "refunded"),
    ):
        response = ask(admin_api, order_id, [(a, 1)])
        assert (response.status_code, response.json()["code"]) == (409, "order_not_returnable")
        assert response.json()["current_status"] == status
    assert ask(admin_api, uuid.uuid4(), [(a, 1)]).status_code == 404
    assert state() == before


def test_the_v1_refund_with_restock_restocks_only_what_no_return_took_back(
    admin_api, completed, shop
):
    a, b, _, outlet = shop
    number = ask(admin_api, completed, [(a, 2)]).json()["number"]
    receive(
        admin_api,
        completed,
        number,
        [{"product": a.pk, "restocked": 1, "damaged": 1, "location": "outlet"}],
    )

    response = post(admin_api, f"/api/v1/orders/{completed}/refund/", {"restock": True})

    assert response.json()["status"] == "refunded"
    # a: 3 sold, 1 back at the outlet and 1 written off by the return, 1 restocked now.
    assert Stock.objects.get(product=a).on_hand == 7 + 1 + 1
    assert StockLevel.objects.get(product=a, location=outlet).on_hand == 1
    assert Stock.objects.get(product=b).on_hand == 10
    assert inventory_drift() == []
    order = Order.objects.get(pk=completed)
    assert order.refunded_amount == order.total
