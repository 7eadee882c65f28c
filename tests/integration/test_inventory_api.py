"""Stock status and the movement ledger over the API, with their audit entries and events."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from inventory.integrity import inventory_drift
from inventory.models import InventoryMovement, Location, Stock
from inventory.selectors import ledger_totals
from inventory.services import MAX_ON_HAND
from pms_backend.apikeys.selectors import api_key_parse_prefix
from pms_backend.events.models import Event
from tests.conftest import order_body
from tests.integration.order_support import move_order, place, stock_of, writes_nothing
from tests.integration.problem_json import assert_problem

pytestmark = pytest.mark.django_db

MOVEMENTS = "/api/v1/inventory/movements/"
STOCK = "/api/v1/stock/"


def stock_url(product) -> str:
    return f"/api/v1/products/{product.pk}/stock/"


def move(client, product, quantity, kind="receipt", reason="delivery 42"):
    return client.post(
        MOVEMENTS,
        {"product": product.pk, "quantity": quantity, "kind": kind, "reason": reason},
        format="json",
    )


@pytest.fixture
def inventory_api(client_for):
    return client_for("inventory:read,inventory:write")


# --- Stock of one product ---------------------------------------------------------------


def test_stock_of_a_product_with_on_hand_and_reserved(storefront, make_product, receive):
    product = make_product("published")
    receive(product, 8)
    place(storefront, order_body((product, 3)))

    response = storefront.get(stock_url(product))

    assert response.status_code == 200
    assert response.json() == {
        "product": product.pk,
        "on_hand": 8,
        "reserved": 3,
        "available": 5,
        "in_stock": True,
        "backordered": 0,
    }


def test_a_product_never_received_shows_zeros(storefront, make_product):
    product = make_product("published")

    assert storefront.get(stock_url(product)).json() == {
        "product": product.pk,
        "on_hand": 0,
        "reserved": 0,
        "available": 0,
        "in_stock": False,
        "backordered": 0,
    }
    assert not Stock.objects.filter(product=product).exists()  # reading creates nothing


def test_fully_reserved_stock_is_not_in_stock(storefront, make_product, receive):
    product = make_product("published")
    receive(product, 2)
    place(storefront, order_body((product, 2)))

    body = storefront.get(stock_url(product)).json()

    assert (body["on_hand"], body["available"], body["in_stock"]) == (2, 0, False)


@pytest.mark.parametrize("status", ["draft", "archived"])
def test_storefront_cannot_read_the_stock_of_an_unpublished_product(
    storefront, admin_api, make_product, receive, status
):
    product = make_product(status)
    receive(product, 3)

    assert_problem(storefront.get(stock_url(product)), 404)
    assert admin_api.get(stock_url(product)).json()["on_hand"] == 3


def test_stock_of_a_missing_product_is_404(admin_api):
    assert_problem(admin_api.get("/api/v1/products/999999/stock/"), 404)


def test_stock_needs_inventory_read(client_for, make_product, api_client_without_key):
    product = make_product("published")

    assert_problem(client_for("catalog:read").get(stock_url(product)), 403)
    assert_problem(client_for("catalog:read").get(STOCK, {"products": product.pk}), 403)
    assert_problem(api_client_without_key.get(stock_url(product)), 401)
    assert_problem(api_client_without_key.get(STOCK, {"products": product.pk}), 401)


@pytest.fixture
def api_client_without_key():
    from rest_framework.test import APIClient

    return APIClient()


# --- Stock of several products ----------------------------------------------------------


def test_batch_stock_lists_each_product_once_in_id_order(storefront, make_product, receive):
    a, b, c = (make_product("published") for _ in range(3))
    receive(a, 4)
    receive(c, 9)
    place(storefront, order_body((c, 2)))

    response = storefront.get(STOCK, {"products": f"{c.pk},{a.pk},{b.pk},{a.pk}"})

    assert response.status_code == 200
    assert response.json() == [
        {
            "product": a.pk,
            "on_hand": 4,
            "reserved": 0,
            "available": 4,
            "in_stock": True,
            "backordered": 0,
        },
        {
            "product": b.pk,
            "on_hand": 0,
            "reserved": 0,
            "available": 0,
            "in_stock": False,
            "backordered": 0,
        },
        {
            "product": c.pk,
            "on_hand": 9,
            "reserved": 2,
            "available": 7,
            "in_stock": True,
            "backordered": 0,
        },
    ]


def test_batch_stock_shows_a_storefront_published_products_only(
    storefront, admin_api, make_product, receive
):
    published = make_product("published")
    draft = make_product("draft")
    archived = make_product("archived")
    for product in (published, draft, archived):
        receive(product, 1)
    ids = f"{published.pk},{draft.pk},{archived.pk},999999"

    seen_by_shop = [row["product"] for row in storefront.get(STOCK, {"products": ids}).json()]
    seen_by_admin = [row["product"] for row in admin_api.get(STOCK, {"products": ids}).json()]

    assert seen_by_shop == [published.pk]
    assert seen_by_admin == [published.pk, draft.pk, archived.pk]


def test_batch_stock_takes_up_to_100_ids(storefront, make_product):
    products = [make_product("published") for _ in range(101)]
    ids = [str(p.pk) for p in products]

    hundred = storefront.get(STOCK, {"products": ",".join(ids[:100])})
    too_many = storefront.get(STOCK, {"products": ",".join(ids)})

    assert hundred.status_code == 200
    assert len(hundred.json()) == 100
    assert "products" in assert_problem(too_many, 400)["errors"]


@pytest.mark.parametrize(
    "raw", ["", ",", "x", "1,x", "0", "-1", "1.5", "1;2", None, "+5", "1_0", "1" + "0" * 25]
)
def test_batch_stock_refuses_bad_ids(storefront, raw):
    params = {} if raw is None else {"products": raw}

    problem = assert_problem(storefront.get(STOCK, params), 400)

    assert "products" in problem["errors"]


# --- Recording movements ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "quantity", "on_hand_after"),
    [
        ("receipt", 5, 15),
        ("return", 2, 12),
        ("adjustment", -4, 6),
        ("adjustment", 3, 13),
        ("correction", -10, 0),
        ("correction", 1, 11),
    ],
)
def test_a_manual_movement_changes_stock_and_is_ledgered(
    inventory_api, make_product, receive, kind, quantity, on_hand_after
):
    product = make_product("published")
    receive(product, 10)

    response = move(inventory_api, product, quantity, kind=kind, reason="counted the shelf")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["product"] == product.pk
    assert body["kind"] == kind
    assert (body["on_hand_delta"], body["reserved_delta"]) == (quantity, 0)
    assert (body["on_hand_after"], body["reserved_after"]) == (on_hand_after, 0)
    assert body["reason"] == "counted the shelf"
    assert body["actor_label"].startswith(f"api_key:{api_key_parse_prefix(inventory_api.raw_key)}")
    assert stock_of(product) == (on_hand_after, 0)
    assert InventoryMovement.objects.get(pk=body["id"]).kind == kind


def test_a_receipt_creates_the_stock_row_of_a_new_product(inventory_api, make_product):
    product = make_product("draft")

    response = move(inventory_api, product, 7)

    assert response.status_code == 201
    assert stock_of(product) == (7, 0)


def test_an_adjustment_below_reserved_is_409_and_writes_nothing(
    inventory_api, storefront, make_product, receive
):
    product = make_product("published")
    receive(product, 10)
    place(storefront, order_body((product, 6)))

    with writes_nothing():
        response = move(inventory_api, product, -5, kind="adjustment", reason="broken")

    problem = assert_problem(response, 409, "insufficient_stock")
    assert problem["lines"] == [
        {"product": product.pk, "location": "main", "requested": 5, "available": 4}
    ]
    assert "6 are reserved" in problem["detail"]
    # Down to exactly what is reserved is fine.
    assert move(inventory_api, product, -4, kind="adjustment", reason="broken").status_code == 201
    assert stock_of(product) == (6, 6)


@pytest.mark.parametrize("kind", ["adjustment", "correction"])
def test_a_movement_below_zero_is_409_and_writes_nothing(
    inventory_api, make_product, receive, kind
):
    product = make_product("published")
    receive(product, 3)
    never_received = make_product("published")

    with writes_nothing():
        response = move(inventory_api, product, -4, kind=kind, reason="lost")
        fresh = move(inventory_api, never_received, -1, kind=kind, reason="lost")

    assert_problem(response, 409, "insufficient_stock")
    assert_problem(fresh, 409, "insufficient_stock")
    assert stock_of(product) == (3, 0)


def _near_the_ceiling(product, on_hand: int) -> None:
    """Put ``on_hand`` straight into the stock row: reaching a billion through receipts of
    at most a million each would take a thousand requests."""
    Stock.objects.filter(product=product).update(on_hand=on_hand)


@pytest.mark.parametrize(
    ("on_hand", "kind", "quantity"),
    [
        (2_147_000_000, "receipt", 1_000_000),  # past the integer column: was a 500
        (MAX_ON_HAND - 10, "receipt", 11),
        (MAX_ON_HAND - 10, "return", 11),
        (MAX_ON_HAND - 10, "adjustment", 11),
        (MAX_ON_HAND - 10, "correction", 11),
    ],
)
def test_stock_above_the_ceiling_is_409_and_writes_nothing(
    inventory_api, make_product, receive, on_hand, kind, quantity
):
    product = make_product("published")
    receive(product, 1)
    _near_the_ceiling(product, on_hand)

    with writes_nothing():
        response = move(inventory_api, product, quantity, kind=kind, reason="pallets")

    problem = assert_problem(response, 409, "stock_limit_exceeded")
    assert "at most 1,000,000,000 on hand" in problem["detail"]
    assert problem["lines"] == [
        {"product": product.pk, "requested": quantity, "on_hand": on_hand, "maximum": MAX_ON_HAND}
    ]
    if on_hand < MAX_ON_HAND:  # up to the ceiling itself is fine
        assert move(inventory_api, product, 10, kind=kind, reason="pallets").status_code == 201
        assert stock_of(product) == (MAX_ON_HAND, 0)


def test_a_restocking_refund_above_the_ceiling_is_409_and_the_order_stays_completed(
    admin_api, storefront, make_product, receive
):
    product = make_product("published")
    receive(product, 10)
    order = place(storefront, order_body((product, 5))).json()
    move_order(order["id"], "process", "complete")
    _near_the_ceiling(product, MAX_ON_HAND - 1)

    with writes_nothing():
        response = admin_api.post(
            f"/api/v1/orders/{order['id']}/refund/", {"restock": True}, format="json"
        )

    assert_problem(response, 409, "stock_limit_exceeded")
    assert admin_api.get(f"/api/v1/orders/{order['id']}/").json()["status"] == "completed"


def test_the_admin_stock_form_names_the_ceiling(admin_client, make_product, receive):
    product = make_product("published")
    receive(product, 1)
    _near_the_ceiling(product, MAX_ON_HAND)

    with writes_nothing():
        response = admin_client.post(
            f"/admin/catalog/product/{product.pk}/stock/",
            {"kind": "receipt", "quantity": 1, "reason": "one more"},
        )

    assert response.status_code == 200
    assert "A product may have at most 1,000,000,000 on hand" in response.content.decode()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", 0),
        ("quantity", 1.5),
        ("quantity", "x"),
        ("quantity", None),
        ("quantity", True),
        ("quantity", 10**9),
        ("quantity", -(10**9)),
        ("kind", "reserve"),
        ("kind", "release"),
        ("kind", "sale"),
        ("kind", "gift"),
        ("product", 999999),
        ("product", "x"),
        ("reason", "r" * 501),
    ],
)
def test_a_bad_movement_is_400_naming_the_field(inventory_api, make_product, receive, field, value):
    product = make_product("published")
    receive(product, 5)
    body = {"product": product.pk, "quantity": 1, "kind": "receipt", "reason": "why"}
    body[field] = value

    with writes_nothing():
        response = inventory_api.post(MOVEMENTS, body, format="json")

    assert field in assert_problem(response, 400)["errors"]


@pytest.mark.parametrize("missing", ["product", "quantity", "kind"])
def test_a_movement_without_a_required_field_is_400(inventory_api, make_product, missing):
    body = {"product": make_product().pk, "quantity": 1, "kind": "receipt"}
    del body[missing]

    with writes_nothing():
        response = inventory_api.post(MOVEMENTS, body, format="json")

    assert missing in assert_problem(response, 400)["errors"]


@pytest.mark.parametrize("kind", ["receipt", "return"])
def test_receipts_and_returns_only_add(inventory_api, make_product, receive, kind):
    product = make_product("published")
    receive(product, 5)

    with writes_nothing():
        response = move(inventory_api, product, -1, kind=kind)

    assert "quantity" in assert_problem(response, 400, "invalid_movement")["errors"]


@pytest.mark.parametrize("kind", ["adjustment", "correction"])
def test_adjustments_and_corrections_need_a_reason(inventory_api, make_product, receive, kind):
    product = make_product("published")
    receive(product, 5)

    with writes_nothing():
        response = move(inventory_api, product, -1, kind=kind, reason="   ")

    assert "reason" in assert_problem(response, 400, "invalid_movement")["errors"]


def test_unknown_and_ledger_fields_are_refused(inventory_api, make_product):
    product = make_product()
    body = {"product": product.pk, "quantity": 1, "kind": "receipt", "on_hand_after": 99}

    with writes_nothing():
        response = inventory_api.post(MOVEMENTS, {**body, "colour": "red"}, format="json")

    errors = assert_problem(response, 400)["errors"]
    assert {"on_hand_after", "colour"} <= set(errors)


def test_movements_need_inventory_write(storefront, client_for, make_product, receive):
    product = make_product("published")
    receive(product, 1)
    reader = client_for("inventory:read")

    with writes_nothing():
        for client in (storefront, reader):
            assert_problem(move(client, product, 5), 403)
            assert_problem(client.get(MOVEMENTS), 403)


def test_movements_cannot_be_changed_or_deleted(inventory_api, make_product, receive):
    product = make_product()
    movement = receive(product, 5)

    with writes_nothing():
        patch = inventory_api.patch(f"{MOVEMENTS}{movement.pk}/", {"reason": "x"}, format="json")
        delete = inventory_api.delete(f"{MOVEMENTS}{movement.pk}/")

    assert (patch.status_code, delete.status_code) == (405, 405)


# --- Reading the ledger -------------------------------------------------------------------


def test_the_movement_list_is_newest_first_and_filters_by_product_and_kind(
    inventory_api, storefront, make_product, receive
):
    a, b = make_product("published"), make_product("published")
    receive(a, 10)
    receive(b, 10)
    move(inventory_api, a, -1, kind="adjustment", reason="dented")
    order = place(storefront, order_body((a, 2), (b, 1))).json()

    everything = inventory_api.get(MOVEMENTS).json()
    of_a = inventory_api.get(MOVEMENTS, {"product": a.pk}).json()
    reserves = inventory_api.get(MOVEMENTS, {"kind": "reserve"}).json()
    a_receipts = inventory_api.get(MOVEMENTS, {"product": a.pk, "kind": "receipt"}).json()
    by_order = inventory_api.get(MOVEMENTS, {"reference": f"order:{order['number']}"}).json()

    assert everything["count"] == 5
    ids = [m["id"] for m in everything["results"]]
    assert ids == sorted(ids, reverse=True)
    assert [m["kind"] for m in of_a["results"]] == ["reserve", "adjustment", "receipt"]
    assert {(m["product"], m["kind"]) for m in reserves["results"]} == {
        (a.pk, "reserve"),
        (b.pk, "reserve"),
    }
    assert [m["on_hand_after"] for m in a_receipts["results"]] == [10]
    assert by_order["count"] == 2
    assert_problem(inventory_api.get(MOVEMENTS, {"kind": "theft"}), 400)


def test_one_movement_can_be_read(inventory_api, make_product, receive):
    product = make_product()
    movement = receive(product, 5)

    body = inventory_api.get(f"{MOVEMENTS}{movement.pk}/").json()

    assert (body["kind"], body["on_hand_delta"], body["reason"]) == ("receipt", 5, "test receipt")
    assert_problem(inventory_api.get(f"{MOVEMENTS}999999/"), 404)


# --- Events, audit and the ledger ---------------------------------------------------------


def stock_events(product, type_: str) -> list[dict]:
    return [
        e.data
        for e in Event.objects.filter(type=type_, subject=f"product:{product.pk}").order_by("id")
    ]


def test_every_change_announces_stock_updated(inventory_api, storefront, admin_api, make_product):
    product = make_product("published")

    move(inventory_api, product, 10)
    move(inventory_api, product, -1, kind="adjustment", reason="dented")
    order = place(storefront, order_body((product, 2))).json()
    admin_api.post(f"/api/v1/orders/{order['id']}/cancel/")

    updates = stock_events(product, "stock.updated")
    assert [(u["on_hand"], u["reserved"], u["available"]) for u in updates] == [
        (10, 0, 10),
        (9, 0, 9),
        (9, 2, 7),
        (9, 0, 9),
    ]
    assert all(u["product"] == product.pk for u in updates)
    assert Event.objects.get(type="stock.updated", data__available=7).topic == "stock"


def test_stock_low_fires_once_when_available_falls_to_the_threshold(
    inventory_api, storefront, make_product, settings
):
    assert settings.PMS_LOW_STOCK_THRESHOLD == 5
    product = make_product("published")

    def low_count() -> int:
        return len(stock_events(product, "stock.low"))

    move(inventory_api, product, 10)
    assert low_count() == 0  # rising out of an empty shelf is not "falling low"
    move(inventory_api, product, -4, kind="adjustment", reason="dented")  # 6
    assert low_count() == 0
    move(inventory_api, product, -1, kind="adjustment", reason="dented")  # 5 = threshold
    assert low_count() == 1
    move(inventory_api, product, -1, kind="adjustment", reason="dented")  # 4, still low
    move(inventory_api, product, 1, kind="correction", reason="found one")  # 5, still low
    assert low_count() == 1
    move(inventory_api, product, 10)  # 15: recovered
    assert low_count() == 1
    place(storefront, order_body((product, 9)))  # a reservation takes available to 6
    assert low_count() == 1
    place(storefront, order_body((product, 1)))  # and to 5
    assert low_count() == 2

    low = stock_events(product, "stock.low")[-1]
    assert low == {
        "product": product.pk,
        "on_hand": 15,
        "reserved": 10,
        "available": 5,
        "in_stock": True,
        "backordered": 0,
        "locations": ["main"],
        "low_stock_threshold": 5,
    }


def test_a_movement_is_audited_with_its_actor(inventory_api, make_product, receive):
    product = make_product("published")
    receive(product, 10)

    move(inventory_api, product, -3, kind="adjustment", reason="water damage")

    entry = AuditLog.objects.get(action="stock.adjustment")
    assert (entry.object_type, entry.object_id) == ("inventory.stock", str(product.pk))
    assert entry.actor_type == "api_key"
    assert entry.actor_id == api_key_parse_prefix(inventory_api.raw_key)
    assert entry.changes == {
        "on_hand": {"before": 10, "after": 7},
        "location": {"before": None, "after": "main"},
    }
    receipt = AuditLog.objects.get(action="stock.receipt")
    assert (receipt.actor_type, receipt.actor_label) == ("system", "job:tests")


def test_the_ledger_sums_to_the_stock_rows(inventory_api, storefront, admin_api, make_product):
    a, b = make_product("published"), make_product("published")
    move(inventory_api, a, 20)
    move(inventory_api, b, 5)
    move(inventory_api, a, -2, kind="adjustment", reason="dented")
    move(inventory_api, b, 1, kind="correction", reason="miscounted")
    sold = place(storefront, order_body((a, 4), (b, 2))).json()
    released = place(storefront, order_body((a, 1))).json()
    open_order = place(storefront, order_body((a, 3), (b, 1))).json()
    move_order(sold["id"], "process", "complete")
    move_order(sold["id"], "refund", restock=True)
    move_order(released["id"], "cancel")
    move(inventory_api, a, 1, kind="return", reason="came back by post")

    # One place (the shop's first location): its ledger is the product's.
    totals = ledger_totals()
    main = Location.objects.get(code="main")
    for product in (a, b):
        assert totals[(product.pk, main.pk)] == stock_of(product)
    last = InventoryMovement.objects.filter(product=a).order_by("-id").first()
    assert (last.on_hand_after, last.reserved_after) == stock_of(a)
    assert stock_of(a) == (20 - 2 + 1, 3)
    assert stock_of(b) == (5 + 1, 1)
    assert inventory_drift() == []
    assert open_order["status"] == "pending"
