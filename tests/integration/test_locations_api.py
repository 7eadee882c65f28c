"""Stock locations over the API: managing them, moving and reading stock per location,
stocktakes per location, and what a storefront key never sees (issue 16)."""

from __future__ import annotations

import io
from contextlib import contextmanager

import pytest
from django.core.management import call_command

from audit.models import AuditLog
from inventory.integrity import inventory_drift
from inventory.locations import location_create
from inventory.models import InventoryMovement, Location, StockLevel
from inventory.services import default_location, stock_record_movement
from pms_backend.events.models import Event
from tests.conftest import order_body
from tests.integration.order_support import move_order, place, stock_of, writes_nothing
from tests.integration.problem_json import assert_problem

pytestmark = pytest.mark.django_db

LOCATIONS = "/api/v1/inventory/locations/"
MOVEMENTS = "/api/v1/inventory/movements/"
STOCK = "/api/v1/stock/"
LOCATION_KEYS = {"code", "name", "address", "is_active", "priority"}
STOCK_KEYS = {"product", "on_hand", "reserved", "available", "in_stock", "backordered"}


def url(code: str) -> str:
    return f"{LOCATIONS}{code}/"


def stock_url(product) -> str:
    return f"/api/v1/products/{product.pk}/stock/"


@pytest.fixture
def inventory_api(client_for):
    return client_for("inventory:read,inventory:write")


@pytest.fixture
def main(db):
    return default_location()  # "main", made for a shop that has no location yet


@pytest.fixture
def store(main, system_actor):
    return location_create(
        actor=system_actor, code="store-1", name="High Street", address="1 High St", priority=200
    )


@pytest.fixture
def receive_at(system_actor):
    def receive_at(product, quantity: int, location):
        return stock_record_movement(
            actor=system_actor,
            product_id=product.pk,
            kind="receipt",
            quantity=quantity,
            reason="delivery",
            location=location,
        )

    return receive_at


def level(product, location) -> tuple[int, int]:
    row = StockLevel.objects.filter(product=product, location=location)
    return row.values_list("on_hand", "reserved").first() or (0, 0)


@contextmanager
def nothing_written():
    """``writes_nothing``, and no location added, removed or changed."""

    def locations():
        return sorted(Location.objects.values_list("code", "name", "is_active", "priority"))

    before = locations()
    with writes_nothing():
        yield
    assert locations() == before


def move(client, product, quantity, *, kind="receipt", reason="delivery", **extra):
    body = {"product": product.pk, "quantity": quantity, "kind": kind, "reason": reason}
    return client.post(MOVEMENTS, body | extra, format="json")


# --- Managing locations -------------------------------------------------------------------


def test_create_then_read_a_location_audited_and_announced(inventory_api, main):
    body = {"code": "wh-2", "name": "North warehouse", "address": "Dock 4", "priority": 50}

    created = inventory_api.post(LOCATIONS, body, format="json")

    assert created.status_code == 201, created.json()
    assert created.json() == body | {"is_active": True, "on_hand": 0, "reserved": 0}
    assert inventory_api.get(url("wh-2")).json() == created.json()
    # By priority: the new one (50) before main (100).
    listed = inventory_api.get(LOCATIONS).json()
    assert [row["code"] for row in listed["results"]] == ["wh-2", "main"]
    entry = AuditLog.objects.get(action="location.created")
    assert entry.object_type == "inventory.location"
    assert entry.changes["code"] == {"before": None, "after": "wh-2"}
    event = Event.objects.get(type="location.created")
    assert (event.topic, event.data) == ("locations", body | {"is_active": True})


def test_change_a_location_including_its_code(inventory_api, store):
    response = inventory_api.patch(
        url("store-1"), {"code": "store-9", "name": "Market St", "priority": 7}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["code"] == "store-9"
    assert (response.json()["name"], response.json()["priority"]) == ("Market St", 7)
    assert_problem(inventory_api.get(url("store-1")), 404)
    entry = AuditLog.objects.get(action="location.updated")
    assert entry.changes == {
        "code": {"before": "store-1", "after": "store-9"},
        "name": {"before": "High Street", "after": "Market St"},
        "priority": {"before": 200, "after": 7},
    }
    assert Event.objects.get(type="location.updated").data["code"] == "store-9"


def test_a_change_that_changes_nothing_writes_nothing(inventory_api, store):
    with nothing_written():
        response = inventory_api.patch(url("store-1"), {"name": "High Street"}, format="json")

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "has space", "name": "x"}, "code"),
        ({"code": "-dash-first", "name": "x"}, "code"),
        ({"code": "é", "name": "x"}, "code"),
        ({"code": "c" * 33, "name": "x"}, "code"),
        ({"code": "", "name": "x"}, "code"),
        ({"name": "x"}, "code"),
        ({"code": "ok"}, "name"),
        ({"code": "ok", "name": ""}, "name"),
        ({"code": "ok", "name": "x", "priority": -1}, "priority"),
        ({"code": "ok", "name": "x", "priority": "5"}, "priority"),
        ({"code": "ok", "name": "x", "is_active": "yes"}, "is_active"),
        ({"code": "ok", "name": "x", "on_hand": 5}, "on_hand"),
        ({"code": "ok", "name": "x", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_location_is_400_naming_the_field(inventory_api, main, body, field):
    with nothing_written():
        response = inventory_api.post(LOCATIONS, body, format="json")

    assert field in assert_problem(response, 400)["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"code": "bad code"}, "code"), ({"name": ""}, "name"), ({"priority": 1.5}, "priority")],
)
def test_a_bad_change_is_400_naming_the_field(inventory_api, store, body, field):
    with nothing_written():
        response = inventory_api.patch(url("store-1"), body, format="json")

    assert field in assert_problem(response, 400)["errors"]


def test_a_code_in_use_is_409(inventory_api, store):
    with nothing_written():
        create = inventory_api.post(LOCATIONS, {"code": "main", "name": "Dup"}, format="json")
        rename = inventory_api.patch(url("store-1"), {"code": "main"}, format="json")

    for response in (create, rename):
        assert "code" in assert_problem(response, 409, "location_code_taken")["errors"]


def test_an_unknown_location_is_404(inventory_api, main):
    with nothing_written():
        for response in (
            inventory_api.get(url("nowhere")),
            inventory_api.patch(url("nowhere"), {"name": "x"}, format="json"),
            inventory_api.delete(url("nowhere")),
        ):
            assert_problem(response, 404)


def test_a_location_holding_stock_can_be_neither_deactivated_nor_deleted(
    inventory_api, storefront, store, make_product, receive_at
):
    a, b = make_product("published"), make_product("published")
    receive_at(a, 4, store)
    receive_at(b, 3, store)

    with nothing_written():
        off = inventory_api.patch(url("store-1"), {"is_active": False}, format="json")
        gone = inventory_api.delete(url("store-1"))

    for response in (off, gone):
        problem = assert_problem(response, 409, "location_holds_stock")
        assert "7 units of 2 products" in problem["detail"]
        assert "Transfer its stock first" in problem["detail"]
        assert problem["held"] == {"products": 2, "on_hand": 7, "reserved": 0}


def test_reserved_stock_is_named_too(
    inventory_api, storefront, main, store, make_product, receive_at
):
    product = make_product("published")
    receive_at(product, 2, main)
    place(storefront, order_body((product, 2)))
    inventory_api.patch(url("store-1"), {"priority": 1}, format="json")  # so main may go

    problem = assert_problem(
        inventory_api.patch(url("main"), {"is_active": False}, format="json"),
        409,
        "location_holds_stock",
    )

    assert "2 units of 1 product, 2 of them reserved by open orders" in problem["detail"]


def test_the_last_active_location_cannot_be_deactivated_or_deleted(inventory_api, store):
    assert inventory_api.patch(url("main"), {"is_active": False}, format="json").status_code == 200

    with nothing_written():
        off = inventory_api.patch(url("store-1"), {"is_active": False}, format="json")
        gone = inventory_api.delete(url("store-1"))

    assert_problem(off, 409, "last_active_location")
    assert_problem(gone, 409, "last_active_location")
    # An inactive location nothing names may go, and may come back.
    assert inventory_api.patch(url("main"), {"is_active": True}, format="json").status_code == 200


def test_a_location_the_ledger_names_cannot_be_deleted_only_deactivated(
    inventory_api, store, make_product, receive_at
):
    product = make_product("published")
    receive_at(product, 5, store)
    move(inventory_api, product, -5, kind="correction", reason="all broken", location="store-1")

    with nothing_written():
        response = inventory_api.delete(url("store-1"))

    problem = assert_problem(response, 409, "location_in_use")
    assert "2 stock movements" in problem["detail"]
    assert "Deactivate it instead" in problem["detail"]
    off = inventory_api.patch(url("store-1"), {"is_active": False}, format="json")
    assert off.json()["is_active"] is False


def test_a_location_an_order_names_cannot_be_deleted(
    inventory_api, storefront, main, store, make_product, receive_at
):
    product = make_product("published")
    receive_at(product, 1, store)
    order = place(storefront, order_body((product, 1))).json()
    move_order(order["id"], "cancel")  # the stock is back; the line still says where it was
    StockLevel.objects.filter(location=store).delete()
    InventoryMovement.objects.filter(location=store).delete()  # only the order names it now

    with nothing_written():
        response = inventory_api.delete(url("store-1"))

    problem = assert_problem(response, 409, "location_in_use")
    assert problem["detail"].startswith("Cannot delete location store-1: 1 order line allocation")


def test_delete_an_unused_location(inventory_api, store):
    response = inventory_api.delete(url("store-1"))

    assert response.status_code == 204
    assert not Location.objects.filter(code="store-1").exists()
    assert AuditLog.objects.filter(action="location.deleted").count() == 1
    event = Event.objects.get(type="location.deleted")
    assert (event.data["code"], event.data["deleted"]) == ("store-1", True)


def test_location_writes_need_inventory_write(storefront, client_for, store):
    reader = client_for("inventory:read")

    with nothing_written():
        for client in (storefront, reader):
            assert_problem(client.post(LOCATIONS, {"code": "x", "name": "x"}, format="json"), 403)
            assert_problem(client.patch(url("store-1"), {"name": "x"}, format="json"), 403)
            assert_problem(client.delete(url("store-1")), 403)
            assert_problem(client.post(f"{url('store-1')}stocktake/", {}, format="json"), 403)
    assert_problem(client_for("catalog:read").get(LOCATIONS), 403)


def test_staff_change_locations_with_the_admin_permissions(make_staff, store):
    viewer = make_staff("inventory.view_inventorymovement", username="viewer")
    editor = make_staff(
        "inventory.view_inventorymovement", "inventory.change_location", username="editor"
    )

    assert viewer.get(LOCATIONS).status_code == 200
    assert_problem(
        viewer.patch(url("store-1"), {"name": "x"}, content_type="application/json"), 403
    )
    response = editor.patch(url("store-1"), {"name": "Renamed"}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["on_hand"] == 0  # staff who read the ledger see the counts


# --- What each audience sees ---------------------------------------------------------------


def test_storefront_sees_locations_without_counts(
    storefront, inventory_api, main, store, make_product, receive_at
):
    product = make_product("published")
    receive_at(product, 6, main)
    receive_at(product, 4, store)
    place(storefront, order_body((product, 3)))

    shop = storefront.get(LOCATIONS).json()["results"]
    staff = inventory_api.get(LOCATIONS).json()["results"]

    assert all(set(row) == LOCATION_KEYS for row in shop)
    assert set(storefront.get(url("main")).json()) == LOCATION_KEYS
    assert [(r["code"], r["on_hand"], r["reserved"]) for r in staff] == [
        ("main", 6, 3),
        ("store-1", 4, 0),
    ]


def test_stock_per_location_for_inventory_keys_only(
    storefront, inventory_api, make_staff, main, store, make_product, receive_at
):
    product = make_product("published")
    receive_at(product, 6, main)
    receive_at(product, 4, store)
    place(storefront, order_body((product, 3)))  # reserved at main (priority 100 < 200)
    closed = {"code": "closed", "name": "Closed", "is_active": False}
    assert inventory_api.post(LOCATIONS, closed, format="json").status_code == 201
    per_location = [
        {"location": "main", "on_hand": 6, "reserved": 3, "available": 3},
        {"location": "store-1", "on_hand": 4, "reserved": 0, "available": 4},
    ]
    totals = {"product": product.pk, "on_hand": 10, "reserved": 3, "available": 7}

    shop_one = storefront.get(stock_url(product)).json()
    shop_batch = storefront.get(STOCK, {"products": product.pk}).json()
    staff_one = inventory_api.get(stock_url(product)).json()
    staff_batch = inventory_api.get(STOCK, {"products": product.pk}).json()
    session = make_staff("inventory.view_inventorymovement").get(stock_url(product)).json()

    assert shop_one == totals | {"in_stock": True, "backordered": 0}
    assert shop_batch == [shop_one]
    assert set(shop_one) == STOCK_KEYS
    assert staff_one == shop_one | {"locations": per_location}
    assert staff_batch == [staff_one]
    assert session == staff_one


def test_one_audience_never_gets_the_others_body_from_an_etag(
    storefront, inventory_api, store, make_product, receive_at
):
    product = make_product("published")
    receive_at(product, 4, store)

    staff = inventory_api.get(stock_url(product))
    shop = storefront.get(stock_url(product), HTTP_IF_NONE_MATCH=staff["ETag"])

    assert staff["ETag"] and shop["ETag"] != staff["ETag"]
    assert shop.status_code == 200
    assert "locations" not in shop.json()
    assert (
        inventory_api.get(stock_url(product), HTTP_IF_NONE_MATCH=staff["ETag"]).status_code == 304
    )


def test_batch_stock_per_location_costs_the_same_queries_for_many_products(
    inventory_api, main, store, make_product, receive_at, django_assert_max_num_queries
):
    products = [make_product("published") for _ in range(30)]
    for product in products:
        receive_at(product, 2, store)
    ids = ",".join(str(p.pk) for p in products)
    inventory_api.get(STOCK, {"products": ids})  # warm up: key lookup

    with django_assert_max_num_queries(4):
        response = inventory_api.get(STOCK, {"products": ids})

    assert [row["locations"][1]["on_hand"] for row in response.json()] == [2] * 30


# --- Movements at a location ----------------------------------------------------------------


def test_a_movement_at_a_named_location(inventory_api, main, store, make_product):
    product = make_product("published")

    response = move(inventory_api, product, 5, location="store-1")
    default = move(inventory_api, product, 2)

    assert response.status_code == 201, response.json()
    assert (response.json()["location"], response.json()["on_hand_after"]) == ("store-1", 5)
    assert default.json()["location"] == "main"
    assert (level(product, store), level(product, main)) == ((5, 0), (2, 0))
    assert stock_of(product) == (7, 0)
    event = Event.objects.filter(type="stock.updated").order_by("id").first()
    assert event.data["locations"] == ["store-1"]


def test_a_movement_at_an_unknown_or_inactive_location_is_refused(
    inventory_api, main, store, make_product
):
    product = make_product("published")
    inventory_api.patch(url("store-1"), {"is_active": False}, format="json")

    with nothing_written():
        unknown = move(inventory_api, product, 5, location="atlantis")
        inactive = move(inventory_api, product, 5, location="store-1")
        blank = move(inventory_api, product, 5, location="")
        number = move(inventory_api, product, 5, location=7)

    assert "atlantis" in assert_problem(unknown, 404, "unknown_location")["detail"]
    assert "store-1" in assert_problem(inactive, 409, "location_inactive")["detail"]
    assert "location" in assert_problem(blank, 400)["errors"]
    assert "location" in assert_problem(number, 400)["errors"]


def test_the_ledger_filters_by_location(inventory_api, main, store, make_product):
    product = make_product("published")
    move(inventory_api, product, 5, location="store-1")
    move(inventory_api, product, 2)

    at_store = inventory_api.get(MOVEMENTS, {"location": "store-1"}).json()
    everything = inventory_api.get(MOVEMENTS).json()

    assert [(m["location"], m["on_hand_delta"]) for m in at_store["results"]] == [("store-1", 5)]
    assert [m["location"] for m in everything["results"]] == ["main", "store-1"]
    # A code that names no location matches nothing, as an unknown id does (docs/api.md).
    nowhere = inventory_api.get(MOVEMENTS, {"location": "atlantis"})
    assert (nowhere.status_code, nowhere.json()["count"]) == (200, 0)


def test_the_ledger_list_query_count_is_flat(inventory_api, main, store, make_product):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for n in range(30):
        move(inventory_api, make_product("published"), 1, location="store-1" if n % 2 else "main")

    def queries(page_size: int) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert inventory_api.get(MOVEMENTS, {"page_size": page_size}).status_code == 200
        return len(ctx.captured_queries)

    queries(1)
    assert queries(5) == queries(30)


def test_the_location_list_query_count_is_flat(
    inventory_api,
    storefront,
    main,
    make_product,
    receive_at,
    system_actor,
    django_assert_max_num_queries,
):
    product = make_product("published")
    for n in range(25):
        place_n = location_create(actor=system_actor, code=f"wh-{n}", name=f"W{n}")
        receive_at(product, n + 1, place_n)
    inventory_api.get(LOCATIONS)
    storefront.get(LOCATIONS)

    with django_assert_max_num_queries(4):
        staff = inventory_api.get(LOCATIONS, {"page_size": 30}).json()
    with django_assert_max_num_queries(4):
        shop = storefront.get(LOCATIONS, {"page_size": 30}).json()

    assert staff["count"] == shop["count"] == 26
    assert sum(row["on_hand"] for row in staff["results"]) == sum(range(1, 26))


# --- Stocktake per location ---------------------------------------------------------------


def stocktake(client, code, counts, reason="quarterly count"):
    body = {"reason": reason, "counts": [{"product": p.pk, "on_hand": n} for p, n in counts]}
    return client.post(f"{url(code)}stocktake/", body, format="json")


def test_a_stocktake_posts_the_differences_as_corrections_at_that_location(
    inventory_api, main, store, make_product, receive_at
):
    a, b, c = (make_product("published") for _ in range(3))
    receive_at(a, 10, store)
    receive_at(b, 3, store)
    receive_at(a, 7, main)

    response = stocktake(inventory_api, "store-1", [(a, 8), (b, 3), (c, 2)])

    assert response.status_code == 200, response.json()
    assert response.json() == {"location": "store-1", "counted": 3, "movements": 2}
    assert (level(a, store), level(b, store), level(c, store)) == ((8, 0), (3, 0), (2, 0))
    assert level(a, main) == (7, 0)  # another location's count is untouched
    corrections = InventoryMovement.objects.filter(kind="correction").order_by("product_id")
    assert [(m.product_id, m.location.code, m.on_hand_delta, m.reason) for m in corrections] == [
        (a.pk, "store-1", -2, "quarterly count"),
        (c.pk, "store-1", 2, "quarterly count"),
    ]
    assert {m.reference for m in corrections} == {"stocktake:store-1"}
    assert inventory_drift() == []


def test_a_count_below_what_is_reserved_there_is_409_and_posts_nothing(
    inventory_api, storefront, main, make_product, receive_at
):
    a, b = make_product("published"), make_product("published")
    receive_at(a, 5, main)
    receive_at(b, 5, main)
    place(storefront, order_body((a, 4)))

    with nothing_written():
        response = stocktake(inventory_api, "main", [(a, 3), (b, 1)])

    problem = assert_problem(response, 409, "insufficient_stock")
    assert problem["lines"] == [
        {"product": a.pk, "location": "main", "requested": 3, "reserved": 4}
    ]


def _line(product, on_hand=1, **more):
    return {"product": product.pk, "on_hand": on_hand} | more


@pytest.mark.parametrize(
    ("make_body", "field"),
    [
        (lambda p: {"reason": "x", "counts": []}, "counts"),
        (lambda p: {"reason": "x"}, "counts"),
        (lambda p: {"counts": [_line(p)]}, "reason"),
        (lambda p: {"reason": "", "counts": [_line(p)]}, "reason"),
        (lambda p: {"reason": "x", "counts": [{"product": 999999, "on_hand": 1}]}, "counts"),
        (lambda p: {"reason": "x", "counts": [_line(p, -1)]}, "counts"),
        (lambda p: {"reason": "x", "counts": [_line(p, 10**7)]}, "counts"),
        (lambda p: {"reason": "x", "counts": [_line(p, "3")]}, "counts"),
        (lambda p: {"reason": "x", "counts": [_line(p), _line(p, 2)]}, "counts"),
        (lambda p: {"reason": "x", "counts": [_line(p, bin="A")]}, "counts"),
        (lambda p: {"reason": "x", "counts": [_line(p)], "kind": "receipt"}, "kind"),
    ],
)
def test_a_bad_stocktake_is_400_and_posts_nothing(
    inventory_api, main, make_product, make_body, field
):
    product = make_product("published")

    with nothing_written():
        response = inventory_api.post(f"{url('main')}stocktake/", make_body(product), format="json")

    # Nested errors are named by their path: counts.0.on_hand.
    assert field in {name.split(".")[0] for name in assert_problem(response, 400)["errors"]}


def test_a_stocktake_of_an_unknown_or_inactive_location_is_refused(
    inventory_api, main, store, make_product
):
    product = make_product("published")
    inventory_api.patch(url("store-1"), {"is_active": False}, format="json")

    with nothing_written():
        unknown = stocktake(inventory_api, "atlantis", [(product, 1)])
        inactive = stocktake(inventory_api, "store-1", [(product, 1)])

    assert_problem(unknown, 404, "unknown_location")
    assert_problem(inactive, 409, "location_inactive")


# --- The whole story stays consistent -----------------------------------------------------


def test_check_inventory_is_clean_after_locations_come_and_go(
    inventory_api, storefront, main, store, make_product, receive_at
):
    product = make_product("published")
    receive_at(product, 5, store)
    receive_at(product, 5, main)
    place(storefront, order_body((product, 7)))  # 5 at main, 2 at store-1
    stocktake(inventory_api, "store-1", [(product, 4)])
    inventory_api.post(LOCATIONS, {"code": "spare", "name": "Spare"}, format="json")
    inventory_api.patch(url("spare"), {"is_active": False}, format="json")
    inventory_api.delete(url("spare"))

    out = io.StringIO()
    call_command("check_inventory", stdout=out)

    assert inventory_drift() == []
    assert stock_of(product) == (9, 7)
    assert (level(product, main), level(product, store)) == ((5, 5), (4, 2))


# --- The stocktake command ------------------------------------------------------------------


def test_the_stocktake_command_counts_one_location(tmp_path, main, store, make_product, receive_at):
    a, b = make_product("published", sku="MUG-1"), make_product("published", sku="MUG-2")
    receive_at(a, 10, store)
    receive_at(a, 3, main)
    sheet = tmp_path / "count.csv"
    sheet.write_text("sku,on_hand\nMUG-1,9\nMUG-2,4\n")
    out = io.StringIO()

    call_command("stocktake", str(sheet), "--location", "store-1", "--reason", "Q4", stdout=out)

    assert (
        out.getvalue().strip() == "Stocktake at store-1: 2 products counted, 2 corrections posted."
    )
    assert (level(a, store), level(b, store), level(a, main)) == ((9, 0), (4, 0), (3, 0))
    assert set(
        InventoryMovement.objects.filter(kind="correction").values_list("location__code", "reason")
    ) == {("store-1", "Q4")}
    assert inventory_drift() == []


@pytest.mark.parametrize(
    ("sheet", "location", "message"),
    [
        ("sku,on_hand\nMUG-1,9\n", "atlantis", "No stock location is 'atlantis'"),
        ("sku,on_hand\nNOPE,9\n", "store-1", "No product has the SKU NOPE"),
        ("sku,on_hand\nMUG-1,-1\n", "store-1", "Line 2: on_hand '-1' is not a whole number"),
        ("sku,on_hand\nMUG-1,1\nMUG-1,2\n", "store-1", "Line 3: MUG-1 is counted twice"),
        ("sku,count\nMUG-1,1\n", "store-1", "must name the columns sku and on_hand"),
        ("sku,on_hand\nMUG-1,1\n", "closed", "not active"),
        ("sku,on_hand\n", "store-1", "The sheet counts no product"),
        ("sku,on_hand\nMUG-1,99999999999999999999\n", "store-1", "must be from 0 to"),
        (b"sku,on_hand\nMUG-\xff,1\n", "store-1", "it is not UTF-8 text"),
        (None, "store-1", "Cannot read"),
        ("sku,on_hand\nMUG\x00-1,1\n", "store-1", "Line 2: a SKU holds no NUL character"),
        ("sku,on_hand\n" + "M" * 200_000 + ",1\n", "store-1", "field larger than field limit"),
    ],
)
def test_a_bad_stocktake_sheet_posts_nothing(
    tmp_path, inventory_api, store, make_product, sheet, location, message
):
    from django.core.management import CommandError

    make_product("published", sku="MUG-1")
    closed = {"code": "closed", "name": "Closed", "is_active": False}
    assert inventory_api.post(LOCATIONS, closed, format="json").status_code == 201
    path = tmp_path / "count.csv"
    if isinstance(sheet, bytes):
        path.write_bytes(sheet)
    elif sheet is not None:  # None: no file there at all
        path.write_text(sheet)

    with nothing_written(), pytest.raises(CommandError) as refused:
        call_command("stocktake", str(path), "--location", location, "--reason", "Q4")

    assert message in str(refused.value)


# --- Who hears the location events ----------------------------------------------------------


def test_location_events_need_inventory_read_to_subscribe(client_for):
    endpoint = {"url": "https://example.com/h", "event_types": ["location.updated"]}

    refused = client_for("webhooks:manage,catalog:read").post(
        "/api/v1/webhooks/endpoints/", endpoint, format="json"
    )
    allowed = client_for("webhooks:manage,inventory:read").post(
        "/api/v1/webhooks/endpoints/", endpoint, format="json"
    )

    assert assert_problem(refused, 403)["missing_scopes"] == ["inventory:read"]
    assert allowed.status_code == 201, allowed.json()
