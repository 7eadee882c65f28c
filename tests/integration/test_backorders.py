"""Backorders and preorders: orders beyond stock within a variant's limits, their units
waiting in a first-come-first-served queue, served by every path that brings stock, and
the queue place given up by a cancel or an expiry. On PostgreSQL; the checks of
check_inventory clean after each."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditLog
from catalog.variants import variant_update
from inventory.integrity import inventory_drift
from inventory.models import InventoryMovement, Location, Stock, StockLevel
from inventory.services import WAITING_CEILING, stock_record_movement
from inventory.stocktake import stock_set_levels
from inventory.transfers import transfer_create, transfer_dispatch, transfer_receive
from orders.models import LineAllocation, Order, OrderItem
from orders.services import order_expire_reservations, order_place, order_transition
from pms_backend.errors import Conflict
from pms_backend.events.models import Event
from pms_backend.events.registry import EVENT_TOPICS
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER, order_body
from tests.integration.order_support import order_row_counts, place

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

STAFF = Actor.system("backorder-test")


@pytest.fixture
def main(db):
    return Location.objects.get_or_create(code="main", defaults={"name": "Main warehouse"})[0]


@pytest.fixture
def backorderable(make_product, admin_api, main):
    """Return a function making a published product (its own variant) with ``on_hand``
    units that takes backorders up to ``limit`` (set through the API, as staff would)."""

    def make(on_hand: int = 0, limit: int | None = 0, **settings):
        product = make_product("published")
        if on_hand:
            stock_record_movement(
                actor=STAFF, product_id=product.pk, kind="receipt", quantity=on_hand, reason="in"
            )
        body = {"allow_backorder": True, "backorder_limit": limit} | settings
        response = admin_api.patch(f"/api/v1/products/{product.pk}/", body, format="json")
        assert response.status_code == 200, response.json()
        return product

    return make


def _order(product, quantity: int, **kwargs) -> Order:
    # Its own savepoint: a refusal rolls back only this placement (as the API's does).
    with transaction.atomic():
        return _place(product, quantity, **kwargs)


def _place(product, quantity: int, **kwargs) -> Order:
    return order_place(
        actor=STAFF,
        items=[{"product": product.pk, "quantity": quantity}],
        customer=ORDER_CUSTOMER,
        shipping_address=ORDER_ADDRESS,
        **kwargs,
    )


def _stock(product) -> tuple[int, int, int]:
    row = Stock.objects.get(product=product)
    return row.on_hand, row.reserved, row.backordered


def _waiting(order: Order) -> int:
    return OrderItem.objects.get(order=order).backordered


def _receive(product, quantity: int, location=None) -> None:
    stock_record_movement(
        actor=STAFF,
        product_id=product.pk,
        kind="receipt",
        quantity=quantity,
        reason="delivery",
        location=location,
    )


# --- the settings ------------------------------------------------------------------------


def test_variant_settings_through_the_api_are_shown_audited_and_make_its_stock_row(
    admin_api, make_product, system_actor
):
    shirt = make_product("published")
    admin_api.put(
        f"/api/v1/products/{shirt.pk}/options/",
        [{"name": "Size", "values": ["S", "M"]}],
        format="json",
    )
    made = admin_api.post(f"/api/v1/products/{shirt.pk}/variants/generate/", {}, format="json")
    small = made.json()[0]
    assert small["allow_backorder"] is False and small["preorder_until"] is None
    assert not Stock.objects.filter(product_id=small["id"]).exists()

    until = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    changed = admin_api.patch(
        f"/api/v1/variants/{small['id']}/",
        {
            "allow_backorder": True,
            "backorder_limit": 20,
            "preorder_until": until.isoformat(),
            "preorder_limit": 5,
        },
        format="json",
    )

    assert changed.status_code == 200, changed.json()
    shown = changed.json()
    assert (shown["allow_backorder"], shown["backorder_limit"], shown["preorder_limit"]) == (
        True,
        20,
        5,
    )
    assert shown["preorder_until"] == until.isoformat().replace("+00:00", "Z")
    # Where its waiting units will be counted, under the lock orders take.
    assert _stock_row(small["id"]) == (0, 0, 0)
    entry = AuditLog.objects.filter(action="variant.updated", object_id=str(small["id"])).last()
    assert entry.changes["backorder_limit"] == {"before": None, "after": 20}
    # The product's own backorders are refused: each variant has its own.
    refused = admin_api.patch(
        f"/api/v1/products/{shirt.pk}/", {"allow_backorder": True}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_backorder"


def _stock_row(product_id: int) -> tuple[int, int, int]:
    row = Stock.objects.get(product_id=product_id)
    return row.on_hand, row.reserved, row.backordered


def test_bad_settings_are_refused_with_nothing_changed(admin_api, make_product):
    product = make_product("published")
    for body in (
        {"backorder_limit": -1},
        {"preorder_limit": "many"},
        {"allow_backorder": "yes please"},
        {"preorder_until": "next tuesday"},
    ):
        response = admin_api.patch(f"/api/v1/products/{product.pk}/", body, format="json")
        assert response.status_code == 400, body
    product.refresh_from_db()
    assert (
        product.allow_backorder,
        product.backorder_limit,
        product.preorder_until,
        product.preorder_limit,
    ) == (False, None, None, None)


# --- placement within and past the limits ------------------------------------------------


def test_an_order_beyond_stock_within_the_limit_reserves_what_there_is_and_waits_for_the_rest(
    storefront, backorderable
):
    product = backorderable(on_hand=5, limit=3)

    placed = place(storefront, order_body((product, 8)))

    assert placed.status_code == 201, placed.json()
    (line,) = placed.json()["items"]
    assert (line["quantity"], line["backordered"]) == (8, 3)
    assert _stock(product) == (5, 5, 3)
    assert storefront.get(f"/api/v1/products/{product.pk}/stock/").json()["backordered"] == 3
    assert inventory_drift() == []


def test_past_the_limit_a_clear_409_and_nothing_written(storefront, backorderable):
    product = backorderable(on_hand=5, limit=3)
    assert place(storefront, order_body((product, 7))).status_code == 201  # 2 wait
    before = order_row_counts()

    refused = place(storefront, order_body((product, 2)))

    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "backorder_limit_reached"
    assert problem["lines"] == [
        {
            "product": product.pk,
            "requested": 2,
            "available": 0,
            "backorder_available": 1,
            "backorder_limit": 3,
        }
    ]
    assert "1 more may wait" in problem["detail"]
    assert order_row_counts() == before
    assert _stock(product) == (5, 5, 2)
    # What still fits is taken.
    assert place(storefront, order_body((product, 1))).status_code == 201
    assert _stock(product) == (5, 5, 3)


def test_without_backorders_a_short_line_is_insufficient_stock_as_ever(
    storefront, make_product, receive
):
    product = make_product("published")
    receive(product, 2)

    refused = place(storefront, order_body((product, 3)))

    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_stock"
    assert _stock(product) == (2, 0, 0)


def test_unlimited_backorders_take_any_quantity(backorderable):
    product = backorderable(on_hand=0, limit=None)

    order = _order(product, 500)

    assert _waiting(order) == 500
    assert _stock(product) == (0, 0, 500)


def test_no_limit_still_stops_short_of_the_counters_overflow_with_a_409(storefront, backorderable):
    # A hostile storefront ordering again and again: "no limit" meets the ceiling as a
    # clear refusal, never the column's overflow (a 500).
    product = backorderable(on_hand=0, limit=None)
    Stock.objects.filter(product=product).update(backordered=WAITING_CEILING - 1)
    before = order_row_counts()

    refused = place(storefront, order_body((product, 2)))

    assert refused.status_code == 409
    assert refused.json()["code"] == "backorder_limit_reached"
    assert refused.json()["lines"][0]["backorder_available"] == 1
    assert order_row_counts() == before
    assert place(storefront, order_body((product, 1))).status_code == 201
    assert _stock(product) == (0, 0, WAITING_CEILING)


def test_preorders_are_taken_until_their_date_and_not_after(make_product, admin_api):
    product = make_product("published")
    until = timezone.now() + timedelta(days=7)
    admin_api.patch(
        f"/api/v1/products/{product.pk}/",
        {"preorder_until": until.isoformat(), "preorder_limit": 10},
        format="json",
    )

    first = _order(product, 4)  # nothing in stock at all: a preorder
    assert _waiting(first) == 4
    with pytest.raises(Conflict) as past_limit:
        _order(product, 7)
    assert past_limit.value.code == "backorder_limit_reached"

    with pytest.raises(Conflict) as after:
        _order(product, 1, now=until + timedelta(seconds=1))
    assert after.value.code == "insufficient_stock"
    assert _stock(product) == (0, 0, 4)


def test_with_backorders_and_preorders_the_larger_limit_applies(backorderable):
    product = backorderable(
        on_hand=0,
        limit=2,
        preorder_until=(timezone.now() + timedelta(days=1)).isoformat(),
        preorder_limit=6,
    )

    assert _waiting(_order(product, 6)) == 6
    with pytest.raises(Conflict):
        _order(product, 1)


# --- stock arriving: first come, first served --------------------------------------------


def test_a_receipt_serves_the_queue_first_come_first_served_with_ledger_and_events(
    backorderable, main
):
    product = backorderable(on_hand=0, limit=None)
    first, second, third = _order(product, 3), _order(product, 2), _order(product, 4)

    _receive(product, 4)

    # The first gets all it waits for before the next gets any: partly served, the second
    # waits for 1 more; the third for all 4.
    assert [_waiting(o) for o in (first, second, third)] == [0, 1, 4]
    assert _stock(product) == (4, 4, 5)
    allocated = {
        item.order_id: [(a.location_id, a.quantity) for a in item.allocations.all()]
        for item in OrderItem.objects.filter(product=product)
    }
    assert allocated == {first.pk: [(main.pk, 3)], second.pk: [(main.pk, 1)], third.pk: []}
    moves = list(
        InventoryMovement.objects.filter(product=product, kind="reserve")
        .order_by("id")
        .values_list("reference", "reserved_delta", "reason")
    )
    assert moves == [
        (f"order:{first.number}", 3, "backorder allocated"),
        (f"order:{second.number}", 1, "backorder allocated"),
    ]
    events = Event.objects.filter(type="order.backorder_allocated").order_by("id")
    assert [(e.data["number"], e.data["allocated"]) for e in events] == [
        (first.number, [{"product": product.pk, "quantity": 3}]),
        (second.number, [{"product": product.pk, "quantity": 1}]),
    ]
    assert events[1].data["items"][0]["backordered"] == 1
    # Heard where order events are: the orders topic (webhooks with orders:read, sockets).
    assert EVENT_TOPICS["order.backorder_allocated"] == "orders"
    assert {e.subject for e in events} == {f"order:{first.pk}", f"order:{second.pk}"}
    assert AuditLog.objects.filter(action="order.backorder_allocated").count() == 2
    assert inventory_drift() == []

    _receive(product, 10)  # the rest: everyone served, 5 left over for new orders
    assert [_waiting(o) for o in (first, second, third)] == [0, 0, 0]
    assert _stock(product) == (14, 9, 0)
    # The second's line grew at the same location: one allocation row of 2.
    assert list(
        LineAllocation.objects.filter(item__order=second).values_list("quantity", flat=True)
    ) == [2]
    assert inventory_drift() == []


def test_a_transfer_received_serves_the_queue(backorderable, main):
    store = Location.objects.create(code="store", name="Store", priority=200)
    product = backorderable(on_hand=0, limit=None)
    _receive(product, 5, location=store)
    transfer = transfer_create(
        actor=STAFF, from_location=store, to_location=main, lines={product.pk: 5}
    )
    transfer_dispatch(actor=STAFF, transfer=transfer)  # on the road: nothing available
    waiting = _order(product, 4)
    assert _waiting(waiting) == 4

    transfer_receive(actor=STAFF, transfer=transfer)

    assert _waiting(waiting) == 0
    level = StockLevel.objects.get(product=product, location=main)
    assert (level.on_hand, level.reserved) == (5, 4)
    assert Event.objects.filter(type="order.backorder_allocated").count() == 1
    assert inventory_drift() == []


def test_a_stocktake_counting_up_serves_the_queue(backorderable, main):
    product = backorderable(on_hand=0, limit=None)
    waiting = _order(product, 3)

    stock_set_levels(actor=STAFF, targets={product.pk: 2}, kind="correction", reason="count")

    assert _waiting(waiting) == 1
    assert _stock(product) == (2, 2, 1)
    assert inventory_drift() == []


def test_an_adjustment_up_and_a_refund_with_restock_serve_the_queue(backorderable):
    product = backorderable(on_hand=1, limit=None)
    sold = _order(product, 1)
    order_transition(actor=STAFF, order_id=sold.pk, transition="process")
    order_transition(actor=STAFF, order_id=sold.pk, transition="complete")
    waiting = _order(product, 3)

    stock_record_movement(
        actor=STAFF, product_id=product.pk, kind="adjustment", quantity=1, reason="found one"
    )
    assert _waiting(waiting) == 2
    order_transition(actor=STAFF, order_id=sold.pk, transition="refund", restock=True)

    assert _waiting(waiting) == 1
    assert _stock(product) == (2, 2, 1)
    assert inventory_drift() == []


# --- cancelling, expiring, completing ----------------------------------------------------


def test_cancelling_gives_up_the_queue_place_and_the_next_order_gets_the_stock(backorderable):
    product = backorderable(on_hand=2, limit=None)
    first = _order(product, 5)  # 2 reserved, 3 wait
    second = _order(product, 2)  # 2 wait
    assert _stock(product) == (2, 2, 5)

    order_transition(actor=STAFF, order_id=first.pk, transition="cancel")

    # Its 3 places are gone, and its 2 reserved units went to the next in the queue.
    assert _waiting(second) == 0
    assert _stock(product) == (2, 2, 0)
    assert _waiting(first) == 3  # the record of what it waited for stays
    released = InventoryMovement.objects.filter(
        product=product, kind="release", reference=f"order:{first.number}"
    )
    assert released.count() == 1
    assert Event.objects.filter(type="order.backorder_allocated").get().data["id"] == str(second.pk)
    assert inventory_drift() == []

    _receive(product, 3)  # nobody waits: new stock stays available
    assert _stock(product) == (5, 2, 0)


def test_an_expired_backorder_gives_up_its_place(backorderable):
    product = backorderable(on_hand=0, limit=None)
    order = _order(product, 2)
    assert order.reserved_until is not None  # a backorder pays (is processed) in time too

    expired = order_expire_reservations(actor=STAFF, now=timezone.now() + timedelta(days=1))

    assert expired == 1
    assert _stock(product) == (0, 0, 0)
    _receive(product, 2)
    assert _stock(product) == (2, 0, 0)
    assert inventory_drift() == []


def test_an_order_waiting_for_stock_cannot_be_completed_until_allocated(backorderable, admin_api):
    product = backorderable(on_hand=1, limit=None)
    order = _order(product, 3)
    assert admin_api.post(f"/api/v1/orders/{order.pk}/process/").status_code == 200

    refused = admin_api.post(f"/api/v1/orders/{order.pk}/complete/")

    assert refused.status_code == 409
    assert refused.json()["code"] == "backorder_outstanding"
    assert refused.json()["lines"] == [
        {"product": product.pk, "sku": product.sku, "backordered": 2}
    ]
    assert Order.objects.get(pk=order.pk).status == "processing"
    assert _stock(product) == (1, 1, 2)

    _receive(product, 2)
    completed = admin_api.post(f"/api/v1/orders/{order.pk}/complete/")
    assert completed.status_code == 200, completed.json()
    assert completed.json()["items"][0]["backordered"] == 0
    assert _stock(product) == (0, 0, 0)
    assert inventory_drift() == []


def test_check_inventory_sees_a_backordered_count_that_drifted(backorderable):
    product = backorderable(on_hand=0, limit=None)
    _order(product, 2)
    assert inventory_drift() == []

    Stock.objects.filter(product=product).update(backordered=5)

    assert [d.problem for d in inventory_drift()] == [
        "stock says backordered=5 but open orders' backordered lines wait for 2"
    ]


def test_a_variant_taking_backorders_through_its_service(make_product, system_actor, admin_api):
    lamp = make_product("published")
    admin_api.put(
        f"/api/v1/products/{lamp.pk}/options/",
        [{"name": "Colour", "values": ["Red"]}],
        format="json",
    )
    made = admin_api.post(f"/api/v1/products/{lamp.pk}/variants/generate/", {}, format="json")
    (red,) = made.json()
    variant_update(
        actor=system_actor,
        variant_id=red["id"],
        data={"allow_backorder": True, "backorder_limit": 1},
    )

    order = order_place(
        actor=STAFF,
        items=[{"variant": red["id"], "quantity": 1}],
        customer=ORDER_CUSTOMER,
        shipping_address=ORDER_ADDRESS,
    )

    assert _waiting(order) == 1
    assert _stock_row(red["id"]) == (0, 0, 1)


# --- the staff screens -------------------------------------------------------------------


def test_the_product_admin_sets_backorders_through_the_service(admin_client, make_product):
    from tests.integration.test_admin_catalog import PRODUCTS, product_form

    product = make_product("published")

    response = admin_client.post(
        f"{PRODUCTS}{product.pk}/change/",
        product_form(product, allow_backorder="on", backorder_limit="5"),
    )

    assert response.status_code == 302, response.content[:2000]
    product.refresh_from_db()
    assert (product.allow_backorder, product.backorder_limit) == (True, 5)
    assert _stock_row(product.pk) == (0, 0, 0)
    entry = AuditLog.objects.filter(action="product.updated", object_id=str(product.pk)).get()
    assert entry.changes == {
        "allow_backorder": {"before": False, "after": True},
        "backorder_limit": {"before": None, "after": 5},
    }


def test_a_product_with_variants_shows_the_settings_on_each_variant_row(
    admin_client, admin_api, make_product
):
    from tests.integration.test_admin_catalog import PRODUCTS

    shirt = make_product("published")
    admin_api.put(
        f"/api/v1/products/{shirt.pk}/options/", [{"name": "Size", "values": ["S"]}], format="json"
    )
    admin_api.post(f"/api/v1/products/{shirt.pk}/variants/generate/", {}, format="json")

    html = admin_client.get(f"{PRODUCTS}{shirt.pk}/change/").content.decode()

    assert 'name="variants-0-backorder_limit"' in html
    assert 'name="variants-0-preorder_until_0"' in html
    assert 'name="backorder_limit"' not in html  # the product's own: none


def test_the_order_page_shows_the_lines_waiting_for_stock(admin_client, backorderable):
    product = backorderable(on_hand=1, limit=None)
    order = _order(product, 4)

    waiting = admin_client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "3 waits for stock" in waiting

    _receive(product, 3)
    served = admin_client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "waits for stock" not in served
    assert "Backorder allocated" in served
    assert f"3 of product {product.pk}" in served


def test_a_placement_leaving_units_waiting_costs_one_statement_more(storefront, backorderable):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.integration.test_query_counts_orders import ORDER_STATEMENTS

    product = backorderable(on_hand=10, limit=None)
    other = backorderable(on_hand=10, limit=None)
    place(storefront, order_body((other, 1)))  # warm up: key lookup, settings

    with CaptureQueriesContext(connection) as ordinary:
        assert place(storefront, order_body((product, 2))).status_code == 201
    with CaptureQueriesContext(connection) as waiting:
        assert place(storefront, order_body((product, 10))).status_code == 201

    assert len(ordinary) == ORDER_STATEMENTS
    # The waiting units counted on the stock row: one update, only when some wait.
    assert len(waiting) == ORDER_STATEMENTS + 1
    assert _stock(product) == (10, 10, 2)


def test_a_product_whose_orders_wait_gets_no_variants(admin_api, backorderable):
    product = backorderable(on_hand=0, limit=None)
    _order(product, 2)

    sizes = [{"name": "Size", "values": ["S"]}]
    declared = admin_api.put(f"/api/v1/products/{product.pk}/options/", sizes, format="json")
    assert declared.status_code == 200
    refused = admin_api.post(f"/api/v1/products/{product.pk}/variants/generate/", {}, format="json")

    # Its waiting units could never get stock once it sold through variants.
    assert refused.status_code == 409
    assert refused.json()["code"] == "product_holds_stock"
    assert "2 backordered" in refused.json()["detail"]


def test_the_allocation_event_keeps_the_customer_encrypted_at_rest(backorderable):
    from tests.integration.at_rest import database_dump

    product = backorderable(on_hand=0, limit=None)
    order = _order(product, 1)
    _receive(product, 1)

    event = Event.objects.get(type="order.backorder_allocated")
    # The relay joins it back for receivers: the order as the API shows it.
    assert event.full_data()["customer"] == ORDER_CUSTOMER
    assert event.full_data()["id"] == str(order.pk)
    assert "customer" not in event.data  # sealed in the outbox row
    dump = database_dump()
    assert ORDER_CUSTOMER["name"] not in dump and ORDER_ADDRESS["line1"] not in dump


def test_the_product_page_says_how_many_units_wait(admin_client, backorderable):
    from tests.integration.test_admin_catalog import PRODUCTS

    product = backorderable(on_hand=1, limit=None)
    _order(product, 3)

    html = admin_client.get(f"{PRODUCTS}{product.pk}/change/").content.decode()

    assert "2 backordered (waiting for stock)" in html


def test_a_shipment_takes_only_units_that_have_stock_and_the_rest_ships_once_they_arrive(
    backorderable, admin_api
):
    product = backorderable(on_hand=1, limit=None)
    order = _order(product, 3)
    assert admin_api.post(f"/api/v1/orders/{order.pk}/process/").status_code == 200
    ship = f"/api/v1/orders/{order.pk}/fulfillments/"

    refused = admin_api.post(
        ship, {"lines": [{"product": product.pk, "quantity": 2}]}, format="json"
    )

    assert refused.status_code == 409, refused.json()
    assert refused.json()["code"] == "fulfillment_exceeds_remaining"
    assert refused.json()["lines"] == [
        {
            "product": product.pk,
            "sku": product.sku,
            "requested": 2,
            "remaining": 1,
            "backordered": 2,
        }
    ]
    assert "2 wait for stock" in refused.json()["detail"]
    assert _stock(product) == (1, 1, 2)  # nothing sold, nothing taken from the queue

    first = admin_api.post(ship, {"lines": [{"product": product.pk, "quantity": 1}]}, format="json")
    assert first.status_code == 201, first.json()
    assert _stock(product) == (0, 0, 2)
    _receive(product, 2)  # the waiting units get their stock
    rest = admin_api.post(ship, {}, format="json")  # everything left
    assert rest.status_code == 201, rest.json()
    done = Order.objects.get(pk=order.pk)
    assert done.status == "completed"
    assert list(done.items.values_list("quantity_fulfilled", "backordered")) == [(3, 0)]
    assert _stock(product) == (0, 0, 0)
    assert inventory_drift() == []
