"""Orders over the API: placement and its refusals, the status machine, who sees what."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.models import AuditLog
from catalog.services import product_update
from inventory.models import InventoryMovement
from orders.models import Order, OrderItem
from pms_backend.apikeys.selectors import api_key_parse_prefix
from pms_backend.events.models import Event
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER, order_body
from tests.integration.order_support import move_order, place, stock_of, writes_nothing
from tests.integration.problem_json import assert_problem

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"

# How to reach each status from Pending, and the moves the machine allows from it.
PATH_TO = {
    "pending": [],
    "processing": ["process"],
    "completed": ["process", "complete"],
    "cancelled": ["cancel"],
    "refunded": ["process", "complete", "refund"],
}
ALLOWED = {
    ("pending", "process"): "processing",
    ("pending", "cancel"): "cancelled",
    ("processing", "complete"): "completed",
    ("processing", "cancel"): "cancelled",
    ("completed", "refund"): "refunded",
}
FORBIDDEN = [
    (status, transition)
    for status in PATH_TO
    for transition in ("process", "complete", "cancel", "refund")
    if (status, transition) not in ALLOWED
]


@pytest.fixture
def stocked(make_product, receive):
    """Two published products: A with 10 on hand (19.90), B with 4 on hand (5.25)."""
    a = make_product("published")
    b = make_product("published", price=Decimal("5.25"))
    receive(a, 10)
    receive(b, 4)
    return a, b


@pytest.fixture
def placed(storefront, stocked):
    """A Pending order for 3 of A and 2 of B, placed by the storefront key."""
    a, b = stocked
    response = place(storefront, order_body((a, 3), (b, 2)))
    assert response.status_code == 201, response.json()
    return response.json()


def movements_of(order_number: str) -> list[tuple[int, str, int, int]]:
    return list(
        InventoryMovement.objects.filter(reference=f"order:{order_number}")
        .order_by("id")
        .values_list("product_id", "kind", "on_hand_delta", "reserved_delta")
    )


# --- Placement --------------------------------------------------------------------------


def test_placing_reserves_every_line_and_prices_from_the_catalog(storefront, stocked):
    a, b = stocked
    before = timezone.now()

    response = place(storefront, order_body((a, 3), (b, 2)))

    assert response.status_code == 201, response.json()
    order = response.json()
    assert order["status"] == "pending"
    assert order["number"].startswith("PMS-")
    assert order["currency"] == "EUR"
    assert order["total"] == "70.20"  # 3 x 19.90 + 2 x 5.25
    assert [
        (i["product"], i["quantity"], i["unit_price"], i["line_total"]) for i in order["items"]
    ] == [
        (a.pk, 3, "19.90", "59.70"),
        (b.pk, 2, "5.25", "10.50"),
    ]
    assert order["customer"] == ORDER_CUSTOMER
    assert order["shipping_address"] == ORDER_ADDRESS
    reserved_until = parse_datetime(order["reserved_until"])
    assert before + timedelta(minutes=29) < reserved_until < timezone.now() + timedelta(minutes=31)
    assert stock_of(a) == (10, 3)
    assert stock_of(b) == (4, 2)
    assert movements_of(order["number"]) == [(a.pk, "reserve", 0, 3), (b.pk, "reserve", 0, 2)]


def test_placing_is_audited_and_announced_as_the_key(storefront, placed):
    entry = AuditLog.objects.get(action="order.created", object_id=str(placed["id"]))
    assert entry.actor_type == "api_key"
    assert entry.actor_id == api_key_parse_prefix(storefront.raw_key)
    event = Event.objects.get(type="order.created")
    assert event.data["id"] == placed["id"]
    assert event.data["status"] == "pending"
    assert event.data["total"] == placed["total"]


def test_the_same_product_twice_is_merged_into_one_line(storefront, stocked):
    a, _ = stocked

    response = place(storefront, order_body((a, 2), (a, 3)))

    assert response.status_code == 201, response.json()
    order = response.json()
    assert [(i["product"], i["quantity"], i["line_total"]) for i in order["items"]] == [
        (a.pk, 5, "99.50")
    ]
    assert order["total"] == "99.50"
    assert OrderItem.objects.filter(order_id=order["id"]).count() == 1
    assert stock_of(a) == (10, 5)
    assert movements_of(order["number"]) == [(a.pk, "reserve", 0, 5)]


def test_merged_lines_are_checked_against_stock_as_one(storefront, stocked):
    a, _ = stocked

    with writes_nothing():
        response = place(storefront, order_body((a, 6), (a, 5)))

    body = assert_problem(response, 409, "insufficient_stock")
    assert body["lines"] == [{"product": a.pk, "requested": 11, "available": 10}]


def test_merged_lines_are_checked_against_the_per_product_limit(storefront, stocked, receive):
    a, _ = stocked
    receive(a, 2000)

    with writes_nothing():
        response = place(storefront, order_body((a, 600), (a, 600)))

    body = assert_problem(response, 400, "invalid_order")
    assert "items" in body["errors"]


def test_every_short_line_is_named_and_nothing_is_reserved(storefront, stocked, make_product):
    a, b = stocked
    never_received = make_product("published")

    with writes_nothing():
        response = place(storefront, order_body((a, 10), (b, 5), (never_received, 1)))

    body = assert_problem(response, 409, "insufficient_stock")
    assert body["lines"] == [
        {"product": b.pk, "requested": 5, "available": 4},
        {"product": never_received.pk, "requested": 1, "available": 0},
    ]
    assert str(b.pk) in body["detail"]


def test_the_whole_available_quantity_can_be_ordered(storefront, stocked):
    a, b = stocked

    response = place(storefront, order_body((a, 10), (b, 4)))

    assert response.status_code == 201
    assert stock_of(a) == (10, 10)
    assert stock_of(b) == (4, 4)
    with writes_nothing():
        again = place(storefront, order_body((a, 1)))
    assert assert_problem(again, 409, "insufficient_stock")["lines"] == [
        {"product": a.pk, "requested": 1, "available": 0}
    ]


@pytest.mark.parametrize("kind", ["unknown", "draft", "archived"])
def test_an_unorderable_product_is_409_product_unavailable(storefront, stocked, make_product, kind):
    a, _ = stocked
    if kind == "unknown":
        product_id, reason = a.pk + 1000, "not_found"
    else:
        product_id, reason = make_product(kind).pk, kind
    body = order_body((a, 1))
    body["items"].append({"product": product_id, "quantity": 1})

    with writes_nothing():
        response = place(storefront, body)

    problem = assert_problem(response, 409, "product_unavailable")
    assert problem["lines"] == [{"product": product_id, "reason": reason}]
    assert stock_of(a) == (10, 0)


def test_all_unavailable_products_are_named_in_one_answer(storefront, stocked, make_product):
    a, _ = stocked
    draft = make_product("draft")
    archived = make_product("archived")
    missing = archived.pk + 1000
    body = order_body((a, 1))
    body["items"] += [
        {"product": missing, "quantity": 1},
        {"product": archived.pk, "quantity": 2},
        {"product": draft.pk, "quantity": 1},
    ]

    with writes_nothing():
        response = place(storefront, body)

    problem = assert_problem(response, 409, "product_unavailable")
    assert problem["lines"] == [
        {"product": draft.pk, "reason": "draft"},
        {"product": archived.pk, "reason": "archived"},
        {"product": missing, "reason": "not_found"},
    ]
    for product_id in (draft.pk, archived.pk, missing):
        assert f"product {product_id}" in problem["detail"]


def test_a_product_unpublished_after_receiving_stock_cannot_be_ordered(
    storefront, stocked, system_actor
):
    from catalog.services import product_transition

    a, _ = stocked
    product_transition(actor=system_actor, product_id=a.pk, transition="unpublish")

    with writes_nothing():
        response = place(storefront, order_body((a, 1)))

    assert assert_problem(response, 409, "product_unavailable")["lines"] == [
        {"product": a.pk, "reason": "draft"}
    ]


def test_products_in_different_currencies_cannot_share_an_order(
    storefront, stocked, make_product, receive
):
    a, _ = stocked
    dollars = make_product("published", currency="USD")
    receive(dollars, 5)

    with writes_nothing():
        response = place(storefront, order_body((a, 1), (dollars, 1)))

    body = assert_problem(response, 400, "mixed_currencies")
    assert "EUR" in body["detail"] and "USD" in body["detail"]


def test_a_total_over_what_an_order_can_hold_is_409_and_writes_nothing(
    storefront, make_product, receive
):
    """1000 x 9,999,999,999.99 does not fit the total's numeric(14, 2): refused by name,
    not a 500; the largest order that fits is still taken."""
    dear = make_product("published", price=Decimal("9999999999.99"))
    receive(dear, 1000)

    with writes_nothing():
        response = place(storefront, order_body((dear, 1000)))

    body = assert_problem(response, 409, "order_total_too_large")
    assert "9,999,999,999,990.00 EUR" in body["detail"]
    assert "at most 999,999,999,999.99 EUR" in body["detail"]
    fits = place(storefront, order_body((dear, 99)))
    assert fits.status_code == 201, fits.json()
    assert fits.json()["total"] == "989999999999.01"


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "x", 10**9, None, True, "", [1]])
def test_a_bad_quantity_is_400_naming_the_line(storefront, stocked, quantity):
    a, b = stocked
    body = order_body((a, 1), (b, 1))
    body["items"][1]["quantity"] = quantity

    with writes_nothing():
        response = place(storefront, body)

    problem = assert_problem(response, 400)
    assert "items.1.quantity" in problem["errors"], problem


def test_a_quantity_over_the_per_product_limit_is_400(storefront, stocked, receive, settings):
    a, _ = stocked
    receive(a, 5000)

    with writes_nothing():
        response = place(storefront, order_body((a, settings.PMS_ORDER_MAX_QUANTITY + 1)))

    assert_problem(response, 400, "invalid_order")


@pytest.mark.parametrize("product", [0, -5, "x", None, 1.5])
def test_a_bad_product_id_is_400(storefront, stocked, product):
    body = order_body((stocked[0], 1))
    body["items"][0]["product"] = product

    with writes_nothing():
        response = place(storefront, body)

    assert "items.0.product" in assert_problem(response, 400)["errors"]


def test_at_most_100_lines(storefront, make_product, receive):
    products = [make_product("published") for _ in range(101)]
    for product in products:
        receive(product, 1)

    with writes_nothing():
        response = place(storefront, order_body(*[(p, 1) for p in products]))
    assert "items" in assert_problem(response, 400)["errors"]

    accepted = place(storefront, order_body(*[(p, 1) for p in products[:100]]))
    assert accepted.status_code == 201, accepted.json()
    assert len(accepted.json()["items"]) == 100


def test_101_lines_of_one_product_are_refused_too(storefront, stocked):
    a, _ = stocked

    with writes_nothing():
        response = place(storefront, order_body(*[(a, 1)] * 101))

    assert "items" in assert_problem(response, 400)["errors"]


@pytest.mark.parametrize("items", [[], "abc", None, {"product": 1, "quantity": 1}, [1, 2]])
def test_items_must_be_a_non_empty_list_of_lines(storefront, stocked, items):
    body = order_body((stocked[0], 1)) | {"items": items}

    with writes_nothing():
        response = place(storefront, body)

    problem = assert_problem(response, 400)
    assert any(name.startswith("items") for name in problem["errors"]), problem


@pytest.mark.parametrize(
    ("part", "field"),
    [
        ("customer", "email"),
        ("customer", "name"),
        ("shipping_address", "line1"),
        ("shipping_address", "city"),
        ("shipping_address", "postal_code"),
        ("shipping_address", "country"),
    ],
)
def test_a_missing_customer_or_address_field_is_400_naming_it(storefront, stocked, part, field):
    body = order_body((stocked[0], 1))
    body[part] = {k: v for k, v in body[part].items() if k != field}

    with writes_nothing():
        response = place(storefront, body)

    assert f"{part}.{field}" in assert_problem(response, 400)["errors"]


@pytest.mark.parametrize("part", ["items", "customer", "shipping_address"])
def test_a_missing_part_is_400_naming_it(storefront, stocked, part):
    body = order_body((stocked[0], 1))
    del body[part]

    with writes_nothing():
        response = place(storefront, body)

    assert part in assert_problem(response, 400)["errors"]


@pytest.mark.parametrize(
    ("part", "field", "value"),
    [
        ("customer", "email", "not-an-email"),
        ("customer", "name", ""),
        ("shipping_address", "country", "gb"),
        ("shipping_address", "country", "GBR"),
        ("shipping_address", "city", "x" * 101),
    ],
)
def test_a_bad_customer_or_address_value_is_400_naming_it(storefront, stocked, part, field, value):
    body = order_body((stocked[0], 1))
    body[part] = {**body[part], field: value}

    with writes_nothing():
        response = place(storefront, body)

    assert f"{part}.{field}" in assert_problem(response, 400)["errors"]


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("top", "total"),
        ("top", "price"),
        ("top", "currency"),
        ("top", "status"),
        ("top", "reserved_until"),
        ("item", "unit_price"),
        ("item", "price"),
        ("item", "line_total"),
        ("customer", "phone"),
        ("shipping_address", "planet"),
    ],
)
def test_unknown_and_client_priced_fields_are_refused_by_name(storefront, stocked, where, field):
    body = order_body((stocked[0], 1))
    if where == "top":
        body[field] = "0.01"
        name = field
    elif where == "item":
        body["items"][0][field] = "0.01"
        name = f"items.0.{field}"
    else:
        body[where] = {**body[where], field: "0.01"}
        name = f"{where}.{field}"

    with writes_nothing():
        response = place(storefront, body)

    problem = assert_problem(response, 400)
    assert name in problem["errors"], problem


def test_a_client_total_cannot_lower_the_price(storefront, stocked):
    a, _ = stocked
    body = order_body((a, 2)) | {"total": "0.00"}

    assert place(storefront, body).status_code == 400
    order = place(storefront, order_body((a, 2))).json()
    assert order["total"] == "39.80"
    assert Order.objects.get(pk=order["id"]).total == Decimal("39.80")


def test_the_price_is_a_snapshot(storefront, admin_api, stocked, system_actor):
    a, b = stocked
    order = place(storefront, order_body((a, 2), (b, 1))).json()

    product_update(actor=system_actor, product_id=a.pk, data={"price": Decimal("99.00")})
    product_update(actor=system_actor, product_id=b.pk, data={"name": "Renamed"})

    again = storefront.get(f"{ORDERS}{order['id']}/").json()
    assert again["total"] == order["total"] == "45.05"
    assert again["items"] == order["items"]
    assert again["items"][1]["name"] == b.name
    move_order(order["id"], "process", "complete")
    assert admin_api.get(f"{ORDERS}{order['id']}/").json()["total"] == "45.05"

    newer = place(storefront, order_body((a, 2))).json()
    assert newer["total"] == "198.00"


# --- Idempotency-Key --------------------------------------------------------------------


def test_a_missing_idempotency_key_is_400_and_nothing_is_written(storefront, stocked):
    with writes_nothing():
        response = storefront.post(ORDERS, order_body((stocked[0], 1)), format="json")
        empty = storefront.post(
            ORDERS, order_body((stocked[0], 1)), format="json", HTTP_IDEMPOTENCY_KEY=""
        )

    assert_problem(response, 400, "idempotency_key_required")
    assert_problem(empty, 400, "idempotency_key_required")


@pytest.mark.parametrize("key", ["k" * 256, "has space", "tab\there", "é-accent"])
def test_a_malformed_idempotency_key_is_400(storefront, stocked, key):
    with writes_nothing():
        response = place(storefront, order_body((stocked[0], 1)), key=key)

    assert_problem(response, 400, "invalid_idempotency_key")


def test_a_255_character_key_is_accepted(storefront, stocked):
    assert place(storefront, order_body((stocked[0], 1)), key="k" * 255).status_code == 201


def test_a_replay_returns_the_first_order_and_reserves_once(storefront, stocked):
    a, _ = stocked
    body = order_body((a, 2))
    first = place(storefront, body, key="retry-me")

    with writes_nothing():
        second = place(storefront, body, key="retry-me")

    assert second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert stock_of(a) == (10, 2)


def test_a_reused_key_with_another_body_is_422_and_writes_nothing(storefront, stocked):
    a, b = stocked
    place(storefront, order_body((a, 2)), key="once")

    with writes_nothing():
        response = place(storefront, order_body((b, 1)), key="once")

    assert_problem(response, 422, "idempotency_key_reused")


def test_a_refusal_is_replayed_too(storefront, stocked):
    a, _ = stocked
    first = place(storefront, order_body((a, 11)), key="too-many")

    second = place(storefront, order_body((a, 11)), key="too-many")

    assert_problem(first, 409, "insufficient_stock")
    assert_problem(second, 409, "insufficient_stock")
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()


def test_a_body_refused_by_validation_does_not_use_up_the_key(storefront, stocked):
    a, _ = stocked
    bad = order_body((a, 0))
    assert place(storefront, bad, key="fix-and-retry").status_code == 400

    fixed = place(storefront, order_body((a, 1)), key="fix-and-retry")

    assert fixed.status_code == 201
    assert "Idempotent-Replayed" not in fixed


def test_keys_belong_to_their_client(client_for, stocked):
    a, _ = stocked
    one, two = client_for("storefront"), client_for("storefront")

    first = place(one, order_body((a, 1)), key="shared-key")
    second = place(two, order_body((a, 1)), key="shared-key")

    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert first.json()["id"] != second.json()["id"]
    assert stock_of(a) == (10, 2)


# --- Transitions ------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "transition"), list(ALLOWED))
def test_every_allowed_transition(admin_api, placed, stocked, status, transition):
    a, b = stocked
    move_order(placed["id"], *PATH_TO[status])
    stock_before = {a.pk: stock_of(a), b.pk: stock_of(b)}
    movements_before = InventoryMovement.objects.count()

    response = admin_api.post(f"{ORDERS}{placed['id']}/{transition}/")

    assert response.status_code == 200, response.json()
    target = ALLOWED[(status, transition)]
    assert response.json()["status"] == target
    assert Order.objects.get(pk=placed["id"]).status == target
    entry = AuditLog.objects.filter(action=f"order.{transition}", object_id=str(placed["id"])).get()
    assert entry.actor_type == "api_key"
    assert entry.changes["status"] == {"before": status, "after": target}
    event = Event.objects.filter(type="order.status_changed").latest("id")
    assert (event.data["from"], event.data["to"]) == (status, target)
    assert event.data["id"] == placed["id"]

    # The stock effect of each move: a = 3 ordered, b = 2 ordered.
    if transition in ("process", "refund"):
        assert {a.pk: stock_of(a), b.pk: stock_of(b)} == stock_before
        assert InventoryMovement.objects.count() == movements_before
    elif transition == "cancel":
        assert (stock_of(a), stock_of(b)) == ((10, 0), (4, 0))
        assert movements_of(placed["number"])[-2:] == [
            (a.pk, "release", 0, -3),
            (b.pk, "release", 0, -2),
        ]
    elif transition == "complete":
        assert (stock_of(a), stock_of(b)) == ((7, 0), (2, 0))
        assert movements_of(placed["number"])[-2:] == [
            (a.pk, "sale", -3, -3),
            (b.pk, "sale", -2, -2),
        ]


@pytest.mark.parametrize(("status", "transition"), FORBIDDEN)
def test_every_forbidden_transition_is_409_and_changes_nothing(
    admin_api, placed, status, transition
):
    move_order(placed["id"], *PATH_TO[status])
    body = {"restock": True} if transition == "refund" else {}

    with writes_nothing():
        response = admin_api.post(f"{ORDERS}{placed['id']}/{transition}/", body, format="json")

    problem = assert_problem(response, 409, "invalid_transition")
    assert problem["current_status"] == status
    assert Order.objects.get(pk=placed["id"]).status == status


def test_the_models_machine_is_the_contracts():
    field = Order._meta.get_field("status")
    machine = {(t.source, t.name): t.target for t in field.get_all_transitions(Order)}

    assert machine == ALLOWED
    assert len(FORBIDDEN) == 15


def test_cancel_from_pending_releases_and_keeps_the_reason(admin_api, placed, stocked):
    a, b = stocked

    response = admin_api.post(
        f"{ORDERS}{placed['id']}/cancel/", {"reason": "customer changed her mind"}, format="json"
    )

    assert response.status_code == 200
    order = response.json()
    assert order["status"] == "cancelled"
    assert order["cancellation_reason"] == "customer changed her mind"
    assert order["reserved_until"] is None
    assert (stock_of(a), stock_of(b)) == ((10, 0), (4, 0))
    # The released units can be ordered again.
    assert place(admin_api, order_body((a, 10), (b, 4))).status_code == 201


def test_cancel_from_processing_releases(admin_api, placed, stocked):
    a, b = stocked
    assert admin_api.post(f"{ORDERS}{placed['id']}/process/").json()["reserved_until"] is None
    assert (stock_of(a), stock_of(b)) == ((10, 3), (4, 2))

    response = admin_api.post(f"{ORDERS}{placed['id']}/cancel/")

    assert response.json()["status"] == "cancelled"
    assert response.json()["cancellation_reason"] == "cancelled"
    assert (stock_of(a), stock_of(b)) == ((10, 0), (4, 0))


def test_complete_is_a_sale(admin_api, placed, stocked):
    a, b = stocked
    admin_api.post(f"{ORDERS}{placed['id']}/process/")

    response = admin_api.post(f"{ORDERS}{placed['id']}/complete/")

    assert response.json()["status"] == "completed"
    assert response.json()["completed_at"]
    assert (stock_of(a), stock_of(b)) == ((7, 0), (2, 0))
    kinds = [k for _, k, _, _ in movements_of(placed["number"])]
    assert kinds == ["reserve", "reserve", "sale", "sale"]


def test_refund_without_restock_leaves_stock_as_sold(admin_api, placed, stocked):
    a, b = stocked
    move_order(placed["id"], "process", "complete")

    with_empty_body = admin_api.post(f"{ORDERS}{placed['id']}/refund/")

    assert with_empty_body.status_code == 200
    assert with_empty_body.json()["status"] == "refunded"
    assert with_empty_body.json()["restocked"] is False
    assert (stock_of(a), stock_of(b)) == ((7, 0), (2, 0))
    assert not InventoryMovement.objects.filter(kind="return").exists()
    entry = AuditLog.objects.get(action="order.refund")
    assert entry.changes["restocked"] == {"before": None, "after": False}


def test_refund_with_restock_false_leaves_stock_as_sold(admin_api, placed, stocked):
    a, _ = stocked
    move_order(placed["id"], "process", "complete")

    response = admin_api.post(f"{ORDERS}{placed['id']}/refund/", {"restock": False}, format="json")

    assert response.json()["restocked"] is False
    assert stock_of(a) == (7, 0)


def test_refund_with_restock_puts_the_goods_back(admin_api, placed, stocked):
    a, b = stocked
    move_order(placed["id"], "process", "complete")

    response = admin_api.post(f"{ORDERS}{placed['id']}/refund/", {"restock": True}, format="json")

    assert response.status_code == 200
    assert response.json()["restocked"] is True
    assert (stock_of(a), stock_of(b)) == ((10, 0), (4, 0))
    assert movements_of(placed["number"])[-2:] == [(a.pk, "return", 3, 0), (b.pk, "return", 2, 0)]


@pytest.mark.parametrize(
    ("transition", "body"),
    [
        ("refund", {"restock": "perhaps"}),
        ("refund", {"restock": True, "amount": "1.00"}),
        ("cancel", {"reason": "x" * 201}),
        ("cancel", {"why": "no"}),
    ],
)
def test_a_bad_transition_body_is_400_and_changes_nothing(admin_api, placed, transition, body):
    status = "completed" if transition == "refund" else "pending"
    move_order(placed["id"], *PATH_TO[status])

    with writes_nothing():
        response = admin_api.post(f"{ORDERS}{placed['id']}/{transition}/", body, format="json")

    assert_problem(response, 400)
    assert Order.objects.get(pk=placed["id"]).status == status


def test_transitions_of_a_missing_order_are_404(admin_api):
    for transition in ("process", "complete", "cancel", "refund"):
        assert_problem(admin_api.post(f"{ORDERS}999999/{transition}/"), 404)


def test_transitions_need_orders_manage(storefront, client_for, placed):
    reader = client_for("orders:read,orders:write")

    with writes_nothing():
        for client in (storefront, reader):
            for transition in ("process", "cancel"):
                response = client.post(f"{ORDERS}{placed['id']}/{transition}/")
                # The placing key may see its order but not move it; others may not see it.
                assert response.status_code in (403, 404)
                assert_problem(response, response.status_code)
    assert storefront.post(f"{ORDERS}{placed['id']}/cancel/").status_code == 403


def test_transitions_refuse_get(admin_api, placed):
    assert_problem(admin_api.get(f"{ORDERS}{placed['id']}/process/"), 405)


def test_orders_cannot_be_changed_or_deleted_directly(admin_api, placed):
    with writes_nothing():
        patch = admin_api.patch(f"{ORDERS}{placed['id']}/", {"status": "completed"}, format="json")
        delete = admin_api.delete(f"{ORDERS}{placed['id']}/")

    assert patch.status_code == 405
    assert delete.status_code == 405
    assert Order.objects.get(pk=placed["id"]).status == "pending"


# --- Who sees which orders ----------------------------------------------------------------


@pytest.fixture
def two_shops(client_for, stocked):
    a, _ = stocked
    one, two = client_for("storefront"), client_for("storefront")
    return {
        "one": one,
        "two": two,
        "one_order": place(one, order_body((a, 1))).json(),
        "two_order": place(two, order_body((a, 2))).json(),
    }


def test_a_storefront_key_cannot_read_another_keys_order(two_shops):
    one, two = two_shops["one"], two_shops["two"]

    assert_problem(one.get(f"{ORDERS}{two_shops['two_order']['id']}/"), 404)
    assert_problem(two.get(f"{ORDERS}{two_shops['one_order']['id']}/"), 404)
    mine = one.get(f"{ORDERS}{two_shops['one_order']['id']}/")
    assert mine.status_code == 200
    assert mine.json()["number"] == two_shops["one_order"]["number"]


def test_a_storefront_list_shows_only_its_own_orders(two_shops):
    one = two_shops["one"]

    listed = one.get(ORDERS).json()
    by_number = one.get(ORDERS, {"number": two_shops["two_order"]["number"]}).json()

    assert listed["count"] == 1
    assert [o["id"] for o in listed["results"]] == [two_shops["one_order"]["id"]]
    assert by_number["count"] == 0


def test_an_admin_key_sees_every_order(admin_api, two_shops):
    listed = admin_api.get(ORDERS).json()

    assert {o["id"] for o in listed["results"]} == {
        two_shops["one_order"]["id"],
        two_shops["two_order"]["id"],
    }
    assert admin_api.get(f"{ORDERS}{two_shops['two_order']['id']}/").status_code == 200


def test_a_staff_session_sees_every_order(client, staff_user, two_shops):
    client.force_login(staff_user)

    listed = client.get(ORDERS).json()

    assert listed["count"] == 2


def test_a_key_without_orders_read_cannot_list(client_for, two_shops):
    catalog_only = client_for("catalog:read")

    assert_problem(catalog_only.get(ORDERS), 403)


def test_the_order_list_filters_by_status(admin_api, two_shops):
    move_order(two_shops["two_order"]["id"], "process")

    processing = admin_api.get(ORDERS, {"status": "processing"}).json()
    pending = admin_api.get(ORDERS, {"status": "pending"}).json()

    assert [o["id"] for o in processing["results"]] == [two_shops["two_order"]["id"]]
    assert [o["id"] for o in pending["results"]] == [two_shops["one_order"]["id"]]
    assert_problem(admin_api.get(ORDERS, {"status": "lost"}), 400)


def test_a_storefront_sees_its_order_move(two_shops):
    one = two_shops["one"]
    order_id = two_shops["one_order"]["id"]
    move_order(order_id, "process", "complete")

    assert one.get(f"{ORDERS}{order_id}/").json()["status"] == "completed"
