"""Shipping orders in fulfilments: partial and whole shipments, the stock they sell (and
where), shipping from another location, refusals that write nothing, untracked lines,
completing with a remainder, the API, events and audit, races with real threads, and
the queries the endpoints cost. ``check_inventory`` stays clean after each."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditLog
from catalog import services as catalog
from catalog import variants
from inventory.integrity import inventory_drift
from inventory.models import InventoryMovement, Location
from orders.fulfilments import fulfillment_create, fulfillment_update
from orders.models import Fulfillment, FulfillmentLine, LineAllocation, Order
from orders.services import order_transition
from orders.topics import placed_by
from pms_backend.errors import Conflict, InvalidInput
from pms_backend.events.models import Event
from tests.integration.order_support import writes_nothing
from tests.integration.problem_json import assert_problem
from tests.integration.test_locations_allocation import (
    STAFF,
    allocations,
    buy,
    levels,
    moves,
    receive_at,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def places(db) -> dict[str, Location]:
    """The store first by priority, then the warehouse."""
    return {
        code: Location.objects.create(code=code, name=code.title(), priority=priority)
        for code, priority in (("store", 10), ("warehouse", 20))
    }


@pytest.fixture
def shirt(make_product, places):
    """5 at the store, 10 at the warehouse."""
    product = make_product("published", sku="SHIRT")
    receive_at(product, "store", 5)
    receive_at(product, "warehouse", 10)
    return product


@pytest.fixture
def mug(make_product, places):
    """4 at the store only."""
    product = make_product("published", sku="MUG")
    receive_at(product, "store", 4)
    return product


def processing(*lines) -> Order:
    order = buy(*lines)
    order_transition(actor=STAFF, order_id=order.pk, transition="process")
    return order


def fulfilled(order: Order) -> dict[str, tuple[int, str]]:
    """Return ``{sku: (quantity_fulfilled, fulfillment_status)}`` as the API shows them."""
    from orders.payloads import order_payload
    from orders.selectors import order_list

    shown = order_payload(order_list().get(pk=order.pk))
    return {i["sku"]: (i["quantity_fulfilled"], i["fulfillment_status"]) for i in shown["items"]}


def test_partial_then_full_fulfilment_completes_the_order(shirt, mug):
    order = processing((shirt, 3), (mug, 2))  # all reserved at the store

    first = fulfillment_create(
        actor=STAFF,
        order_id=order.pk,
        lines={shirt.pk: 2},
        carrier="DHL",
        tracking_number="JD0001",
        tracking_url="https://track.example/JD0001",
    )

    assert first.number == f"{order.number}-1"
    assert first.location.code == "store"
    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSING
    assert fulfilled(order) == {"SHIRT": (2, "partial"), "MUG": (0, "unfulfilled")}
    # Sold from the reservation at the store; what is left stays reserved there.
    assert moves(order, "sale") == {(shirt.pk, "store"): (-2, -2)}
    assert allocations(order) == {(shirt.pk, "store"): 1, (mug.pk, "store"): 2}
    assert levels(shirt) == {"store": (3, 1), "warehouse": (10, 0)}
    assert inventory_drift() == []

    second = fulfillment_create(actor=STAFF, order_id=order.pk)  # everything left

    assert second.number == f"{order.number}-2"
    assert {(line.item.sku, line.quantity) for line in second.lines.all()} == {
        ("SHIRT", 1),
        ("MUG", 2),
    }
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert order.completed_at is not None
    assert fulfilled(order) == {"SHIRT": (3, "fulfilled"), "MUG": (2, "fulfilled")}
    assert allocations(order) == {}
    assert levels(shirt) == {"store": (2, 0), "warehouse": (10, 0)}
    assert levels(mug) == {"store": (2, 0)}
    types = list(
        Event.objects.filter(subject=f"order:{order.pk}")
        .order_by("created_at", "pk")
        .values_list("type", flat=True)
    )
    assert types[-3:] == ["fulfillment.created", "fulfillment.created", "order.status_changed"]
    assert set(
        AuditLog.objects.filter(object_type="orders.fulfillment").values_list("action", flat=True)
    ) == {"fulfillment.create"}
    assert AuditLog.objects.filter(action="order.complete", object_id=str(order.pk)).count() == 1
    assert inventory_drift() == []


def test_the_event_names_order_location_lines_and_tracking(shirt):
    order = processing((shirt, 2))
    fulfillment_create(
        actor=STAFF, order_id=order.pk, lines={shirt.pk: 1}, carrier="UPS", tracking_number="1Z"
    )

    data = Event.objects.filter(type="fulfillment.created").get().data
    assert data["order"] == str(order.pk)
    assert data["order_number"] == order.number
    assert data["number"] == f"{order.number}-1"
    assert data["location"] == "store"
    assert data["lines"] == [{"product": shirt.pk, "sku": "SHIRT", "quantity": 1}]
    assert (data["carrier"], data["tracking_number"]) == ("UPS", "1Z")
    assert data["order_status"] == "processing"


def test_shipping_from_another_location_releases_the_reservation_and_sells_there(shirt):
    order = processing((shirt, 3))  # reserved at the store
    assert allocations(order) == {(shirt.pk, "store"): 3}

    fulfillment_create(actor=STAFF, order_id=order.pk, lines={shirt.pk: 2}, location="warehouse")

    assert moves(order, "release") == {(shirt.pk, "store"): (0, -2)}
    assert moves(order, "sale") == {(shirt.pk, "warehouse"): (-2, 0)}
    assert allocations(order) == {(shirt.pk, "store"): 1}
    assert levels(shirt) == {"store": (5, 1), "warehouse": (8, 0)}
    assert inventory_drift() == []


def test_shipping_from_a_location_without_the_stock_is_409_and_writes_nothing(shirt, mug):
    order = processing((mug, 3))  # the mug is only at the store

    with writes_nothing(), pytest.raises(Conflict) as refused:
        fulfillment_create(actor=STAFF, order_id=order.pk, lines={mug.pk: 1}, location="warehouse")

    assert refused.value.code == "insufficient_stock"
    assert refused.value.extra["lines"] == [
        {"product": mug.pk, "requested": 1, "reserved_here": 0, "available": 0}
    ]
    assert Fulfillment.objects.count() == 0
    assert allocations(order) == {(mug.pk, "store"): 3}
    assert inventory_drift() == []


def test_over_fulfilling_is_409_and_writes_nothing(shirt):
    order = processing((shirt, 3))
    fulfillment_create(actor=STAFF, order_id=order.pk, lines={shirt.pk: 2})

    with writes_nothing(), pytest.raises(Conflict) as refused:
        fulfillment_create(actor=STAFF, order_id=order.pk, lines={shirt.pk: 2})

    assert refused.value.code == "fulfillment_exceeds_remaining"
    assert refused.value.extra["lines"] == [
        {"product": shirt.pk, "sku": "SHIRT", "requested": 2, "remaining": 1, "backordered": 0}
    ]
    assert Fulfillment.objects.count() == 1
    assert fulfilled(order) == {"SHIRT": (2, "partial")}


@pytest.mark.parametrize("status", ["pending", "cancelled", "completed"])
def test_only_a_processing_order_ships(shirt, status):
    order = buy((shirt, 1))
    if status == "cancelled":
        order_transition(actor=STAFF, order_id=order.pk, transition="cancel")
    elif status == "completed":
        order_transition(actor=STAFF, order_id=order.pk, transition="process")
        order_transition(actor=STAFF, order_id=order.pk, transition="complete")
    fulfillments_before = Fulfillment.objects.count()

    with writes_nothing(), pytest.raises(Conflict) as refused:
        fulfillment_create(actor=STAFF, order_id=order.pk, lines={shirt.pk: 1})

    assert refused.value.code == "invalid_transition"
    assert refused.value.extra["current_status"] == status
    assert Fulfillment.objects.count() == fulfillments_before


def test_bad_input_is_400(shirt, mug):
    order = processing((shirt, 2))
    for kwargs, field in (
        ({"lines": {mug.pk: 1}}, "lines"),
        ({"lines": {shirt.pk: 0}}, "lines"),
        ({"tracking_url": "javascript:alert(1)"}, "tracking_url"),
        ({"tracking_url": "ftp://example.com/x"}, "tracking_url"),
        ({"shipped_at": timezone.now() + timedelta(days=1)}, "shipped_at"),
        ({"location": "nowhere"}, "location"),
    ):
        with writes_nothing(), pytest.raises(InvalidInput) as refused:
            fulfillment_create(actor=STAFF, order_id=order.pk, **kwargs)
        assert field in refused.value.errors, (kwargs, refused.value.errors)


def test_a_line_reserved_at_two_locations_needs_the_location_named(shirt):
    order = processing((shirt, 7))  # 5 at the store, 2 at the warehouse

    with pytest.raises(InvalidInput) as refused:
        fulfillment_create(actor=STAFF, order_id=order.pk)
    assert refused.value.code == "location_required"

    # From the warehouse: its 2 from the reservation there, 3 released at the store and
    # sold from what the warehouse has available.
    fulfillment_create(actor=STAFF, order_id=order.pk, lines={shirt.pk: 5}, location="warehouse")

    assert moves(order, "sale") == {(shirt.pk, "warehouse"): (-5, -2)}
    assert moves(order, "release") == {(shirt.pk, "store"): (0, -3)}
    assert allocations(order) == {(shirt.pk, "store"): 2}
    assert levels(shirt) == {"store": (5, 2), "warehouse": (5, 0)}
    assert inventory_drift() == []


def test_untracked_lines_ship_without_moving_stock(make_product, shirt):
    base = make_product(sku="POSTER")
    variants.product_set_options(
        actor=STAFF, product_id=base.pk, options=[{"name": "Size", "values": ["A2"]}]
    )
    (poster,) = variants.variants_generate(actor=STAFF, product_id=base.pk)
    catalog.product_transition(actor=STAFF, product_id=base.pk, transition="publish")
    variants.variant_update(actor=STAFF, variant_id=poster.pk, data={"track_stock": False})
    order = processing((shirt, 1), (poster, 3))
    sales = InventoryMovement.objects.filter(kind="sale").count()

    fulfillment_create(actor=STAFF, order_id=order.pk, lines={poster.pk: 2}, location="store")

    assert InventoryMovement.objects.filter(kind="sale").count() == sales
    assert fulfilled(order) == {"SHIRT": (0, "unfulfilled"), poster.sku: (2, "partial")}
    fulfillment_create(actor=STAFF, order_id=order.pk, location="store")
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert inventory_drift() == []


def test_completing_ships_the_remainder_as_fulfilments_from_where_it_is_reserved(shirt, mug):
    order = processing((shirt, 7), (mug, 1))  # shirt: 5 store + 2 warehouse; mug: store
    fulfillment_create(actor=STAFF, order_id=order.pk, lines={shirt.pk: 1}, location="store")

    order_transition(actor=STAFF, order_id=order.pk, transition="complete")

    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    made = {
        f.number: (f.location.code, {(line.item.sku, line.quantity) for line in f.lines.all()})
        for f in order.fulfillments.all()
    }
    assert made == {
        f"{order.number}-1": ("store", {("SHIRT", 1)}),
        f"{order.number}-2": ("store", {("SHIRT", 4), ("MUG", 1)}),
        f"{order.number}-3": ("warehouse", {("SHIRT", 2)}),
    }
    assert fulfilled(order) == {"SHIRT": (7, "fulfilled"), "MUG": (1, "fulfilled")}
    assert allocations(order) == {}
    assert levels(shirt) == {"store": (0, 0), "warehouse": (8, 0)}
    assert order.fulfillments.get(sequence=2).shipped_at == order.completed_at
    assert inventory_drift() == []


def test_refund_with_restock_returns_goods_where_they_shipped_from(shirt):
    order = processing((shirt, 3))  # reserved at the store
    fulfillment_create(actor=STAFF, order_id=order.pk, lines={shirt.pk: 3}, location="warehouse")

    order_transition(actor=STAFF, order_id=order.pk, transition="refund", restock=True)

    assert moves(order, "return") == {(shirt.pk, "warehouse"): (3, 0)}
    assert levels(shirt) == {"store": (5, 0), "warehouse": (10, 0)}
    assert inventory_drift() == []


def test_an_order_that_shipped_something_cannot_be_cancelled(shirt):
    order = processing((shirt, 3))
    fulfillment_create(actor=STAFF, order_id=order.pk, lines={shirt.pk: 1})

    with pytest.raises(Conflict) as refused:
        order_transition(actor=STAFF, order_id=order.pk, transition="cancel")

    assert refused.value.code == "order_partly_fulfilled"
    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSING
    assert inventory_drift() == []


def test_updating_tracking_records_and_announces_it(shirt):
    order = processing((shirt, 1))
    made = fulfillment_create(actor=STAFF, order_id=order.pk)

    fulfillment_update(
        actor=STAFF,
        order_id=order.pk,
        sequence=made.sequence,
        carrier="GLS",
        tracking_url="http://gls.example/1",
    )

    made.refresh_from_db()
    assert (made.carrier, made.tracking_url) == ("GLS", "http://gls.example/1")
    entry = AuditLog.objects.get(action="fulfillment.update")
    assert entry.changes["carrier"] == {"before": "", "after": "GLS"}
    event = Event.objects.get(type="fulfillment.updated")
    assert event.data["carrier"] == "GLS"
    assert event.data["changed"] == ["carrier", "tracking_url"]
    with pytest.raises(InvalidInput):
        fulfillment_update(
            actor=STAFF, order_id=order.pk, sequence=made.sequence, tracking_url="file:///etc"
        )


# --- the API --------------------------------------------------------------------------


def url(order: Order, tail: str = "") -> str:
    return f"/api/v1/orders/{order.pk}/fulfillments/{tail}"


def test_api_ships_lists_and_patches(admin_api, shirt, mug):
    order = processing((shirt, 2), (mug, 1))

    response = admin_api.post(
        url(order),
        {
            "lines": [{"product": shirt.pk, "quantity": 1}],
            "carrier": "DHL",
            "tracking_url": "https://dhl.example/t/1",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"] == f"{order.number}-1"
    assert body["order_status"] == "processing"
    assert body["lines"] == [{"product": shirt.pk, "sku": "SHIRT", "quantity": 1}]
    listed = admin_api.get(url(order)).json()
    assert listed["count"] == 1 and listed["results"][0] == body
    shown = admin_api.get(f"/api/v1/orders/{order.pk}/").json()
    assert shown["fulfillments"][0]["number"] == body["number"]
    assert [(i["sku"], i["fulfillment_status"]) for i in shown["items"]] == [
        ("SHIRT", "partial"),
        ("MUG", "unfulfilled"),
    ]

    patched = admin_api.patch(url(order, "1/"), {"tracking_number": "X1"}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["tracking_number"] == "X1"
    assert_problem(admin_api.get(url(order, "9/")), 404)

    rest = admin_api.post(url(order), {}, format="json")
    assert rest.status_code == 201, rest.content
    assert rest.json()["order_status"] == "completed"


def test_api_refusals_are_problems(admin_api, shirt):
    order = processing((shirt, 1))
    over = admin_api.post(
        url(order), {"lines": [{"product": shirt.pk, "quantity": 2}]}, format="json"
    )
    assert_problem(over, 409, "fulfillment_exceeds_remaining")
    bad = admin_api.post(url(order), {"tracking_url": "javascript:x"}, format="json")
    assert_problem(bad, 400, "invalid_fulfillment")
    assert_problem(admin_api.post(url(order), {"colour": "red"}, format="json"), 400)
    missing = f"/api/v1/orders/{uuid.uuid4()}/fulfillments/"
    assert_problem(admin_api.post(missing, {}, format="json"), 404)
    assert Fulfillment.objects.count() == 0


def test_a_storefront_reads_its_own_shipments_but_never_ships(storefront, client_for, shirt):
    from tests.conftest import order_body
    from tests.integration.order_support import place

    placed = place(storefront, order_body((shirt, 1))).json()
    order = Order.objects.get(pk=placed["id"])
    order_transition(actor=STAFF, order_id=order.pk, transition="process")

    assert_problem(storefront.post(url(order), {}, format="json"), 403)
    fulfillment_create(actor=STAFF, order_id=order.pk)
    assert storefront.get(url(order)).json()["count"] == 1
    stranger = client_for("orders:read")
    assert_problem(stranger.get(url(order)), 404)
    # Its sockets and webhooks hear the shipment as they hear the order (its own group).
    event = Event.objects.get(type="fulfillment.created")
    assert placed_by([event])(event) == order.api_key.prefix


def test_an_idempotency_key_ships_once(admin_api, shirt):
    order = processing((shirt, 2))
    body = {"lines": [{"product": shirt.pk, "quantity": 1}]}

    first = admin_api.post(url(order), body, format="json", HTTP_IDEMPOTENCY_KEY="ship-1")
    again = admin_api.post(url(order), body, format="json", HTTP_IDEMPOTENCY_KEY="ship-1")

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Fulfillment.objects.count() == 1


# --- queries --------------------------------------------------------------------------

# Lock the order, read its lines, lock their stock rows (a stock arrival serving waiting
# units cannot interleave), read their allocations, the location and its key-share
# lock, the next number, insert the fulfilment; lock the stock totals and levels, update
# both, insert the sale movements; lower the allocations, insert the lines, update the
# lines' counts, insert audit entries and events; the key's last use and the order read
# for the URL; the savepoint pair. The same for 1 line or 3.
FULFILMENT_STATEMENTS = 21


def statements_to_ship(client, order: Order, lines) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(
            url(order),
            {"lines": [{"product": p.pk, "quantity": q} for p, q in lines]},
            format="json",
        )
    assert response.status_code == 201, response.content
    return len(ctx.captured_queries)


def test_shipping_costs_the_same_statements_for_1_or_3_lines(admin_api, make_product, places):
    made = [make_product("published") for _ in range(3)]
    for product in made:
        receive_at(product, "store", 50)
    warm = processing((made[0], 2))
    statements_to_ship(admin_api, warm, [(made[0], 1)])  # warm up: key, settings

    one = statements_to_ship(admin_api, processing((made[0], 2)), [(made[0], 1)])
    three = statements_to_ship(
        admin_api, processing(*((p, 2) for p in made)), [(p, 1) for p in made]
    )

    assert one == three == FULFILMENT_STATEMENTS, (one, three)


def test_order_detail_and_list_with_fulfilments_cost_fixed_queries(
    admin_api, make_product, places, django_assert_max_num_queries
):
    made = [make_product("published") for _ in range(3)]
    for product in made:
        receive_at(product, "store", 50)
    for _ in range(4):
        order = processing(*((p, 3) for p in made))
        for product in made:
            fulfillment_create(actor=STAFF, order_id=order.pk, lines={product.pk: 1})
    admin_api.get(f"/api/v1/orders/{order.pk}/")

    with django_assert_max_num_queries(5):  # key, order, items, fulfilments, their lines
        shown = admin_api.get(f"/api/v1/orders/{order.pk}/").json()
    assert len(shown["fulfillments"]) == 3
    with CaptureQueriesContext(connection) as one:
        admin_api.get("/api/v1/orders/", {"page_size": 1})
    with CaptureQueriesContext(connection) as four:
        admin_api.get("/api/v1/orders/", {"page_size": 4})
    assert len(one.captured_queries) == len(four.captured_queries)
    with CaptureQueriesContext(connection) as listed:
        assert admin_api.get(url(order)).json()["count"] == 3
    assert len(listed.captured_queries) <= 5


# --- races ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_shipments_racing_for_the_last_units_one_wins(make_product):
    Location.objects.create(code="store", name="Store", priority=10)
    product = make_product("published", sku="LAST")
    receive_at(product, "store", 3)
    order = processing((product, 3))
    fulfillment_create(actor=STAFF, order_id=order.pk, lines={product.pk: 1})
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def ship():
        try:
            barrier.wait()
            fulfillment_create(
                actor=Actor.system("racer"), order_id=order.pk, lines={product.pk: 2}
            )
            outcomes.append("shipped")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=ship) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The winner ships the last 2 and completes the order; the loser, let in after it,
    # finds the order completed.
    assert sorted(outcomes) == ["invalid_transition", "shipped"]
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert (
        sum(FulfillmentLine.objects.filter(item__order=order).values_list("quantity", flat=True))
        == 3
    )
    assert LineAllocation.objects.filter(item__order=order).count() == 0
    assert inventory_drift() == []


@pytest.mark.django_db(transaction=True)
def test_a_shipment_racing_staff_completing_the_order_ships_each_unit_once(make_product):
    Location.objects.create(code="store", name="Store", priority=10)
    product = make_product("published", sku="RACE")
    receive_at(product, "store", 5)
    order = processing((product, 3))
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def run(name, step):
        try:
            barrier.wait()
            step()
            outcomes[name] = "done"
        except Conflict as exc:
            outcomes[name] = exc.code
        finally:
            connection.close()

    racers = [
        threading.Thread(
            target=run,
            args=(
                "ship",
                lambda: fulfillment_create(
                    actor=Actor.system("racer"), order_id=order.pk, lines={product.pk: 1}
                ),
            ),
        ),
        threading.Thread(
            target=run,
            args=(
                "complete",
                lambda: order_transition(
                    actor=Actor.system("racer"), order_id=order.pk, transition="complete"
                ),
            ),
        ),
    ]
    for thread in racers:
        thread.start()
    for thread in racers:
        thread.join()

    # Completing always wins its move; the shipment either went first (and completing
    # shipped the other 2) or found the order completed.
    assert outcomes["complete"] == "done"
    assert outcomes["ship"] in ("done", "invalid_transition")
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    shipped = FulfillmentLine.objects.filter(item__order=order).values_list("quantity", flat=True)
    assert sum(shipped) == 3
    assert levels(product) == {"store": (2, 0)}
    assert inventory_drift() == []


# --- with backorders --------------------------------------------------------------------


def test_units_waiting_for_stock_do_not_ship_until_they_get_it(admin_api, make_product, places):
    product = make_product("published", sku="WAIT")
    receive_at(product, "store", 2)
    made = admin_api.patch(
        f"/api/v1/products/{product.pk}/",
        {"allow_backorder": True, "backorder_limit": 10},
        format="json",
    )
    assert made.status_code == 200, made.content
    order = processing((product, 5))  # 2 reserved at the store, 3 waiting
    item = order.items.get()
    assert item.backordered == 3

    with pytest.raises(Conflict) as refused:
        fulfillment_create(actor=STAFF, order_id=order.pk, lines={product.pk: 3})
    assert refused.value.code == "fulfillment_exceeds_remaining"
    assert refused.value.extra["lines"][0] == {
        "product": product.pk,
        "sku": "WAIT",
        "requested": 3,
        "remaining": 2,
        "backordered": 3,
    }

    first = fulfillment_create(actor=STAFF, order_id=order.pk)  # what may ship: the 2
    assert [line.quantity for line in first.lines.all()] == [2]
    assert allocations(order) == {}
    # Stock arrives: the waiting units get it (a new allocation), then ship too.
    receive_at(product, "store", 4)
    item.refresh_from_db()
    assert (item.backordered, allocations(order)) == (0, {(product.pk, "store"): 3})
    fulfillment_create(actor=STAFF, order_id=order.pk)
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert fulfilled(order) == {"WAIT": (5, "fulfilled")}
    assert levels(product) == {"store": (1, 0)}
    assert inventory_drift() == []
