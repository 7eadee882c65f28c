"""Order, movement and stock reads issue a fixed number of queries, however many rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.actors import Actor
from orders.services import order_place
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.selectors import api_key_parse_prefix
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER, order_body
from tests.integration.order_support import place
from tests.integration.query_counts import queries_for

pytestmark = pytest.mark.django_db

ROWS = 60


def assert_flat(client, path: str, *, limit: int) -> None:
    client.get(path, {"page_size": 1})  # warm up: key lookup and last-used stamp
    small = queries_for(client, path, {"page_size": 5}, 5)
    large = queries_for(client, path, {"page_size": 50}, 50)
    assert large == small, f"{path}: {small} queries for 5 rows, {large} for 50"
    assert small <= limit, f"{path}: {small} queries"


@pytest.fixture
def products(make_product, receive):
    """Five published products with plenty on hand."""
    made = [make_product("published") for _ in range(5)]
    for product in made:
        receive(product, 1000)
    return made


@pytest.fixture
def many_orders(storefront, products):
    """60 orders of 1 to 5 lines each, placed by the storefront key."""
    key = ApiKey.objects.get(prefix=api_key_parse_prefix(storefront.raw_key))
    actor = Actor(api_key=key)
    for n in range(ROWS):
        order_place(
            actor=actor,
            items=[{"product": p.pk, "quantity": 1} for p in products[: n % 5 + 1]],
            customer=ORDER_CUSTOMER,
            shipping_address=ORDER_ADDRESS,
        )


# The page, its items and its fulfilments (their lines too once some have shipped: see
# tests/integration/test_fulfilments.py), plus the key.
def test_order_list_query_count_is_flat(admin_api, many_orders):
    assert_flat(admin_api, "/api/v1/orders/", limit=4)


def test_storefront_order_list_query_count_is_flat(storefront, many_orders):
    assert_flat(storefront, "/api/v1/orders/", limit=4)


def test_filtered_order_list_query_count_is_flat(admin_api, many_orders):
    admin_api.get("/api/v1/orders/", {"page_size": 1})
    small = queries_for(admin_api, "/api/v1/orders/", {"page_size": 5, "status": "pending"}, 5)
    large = queries_for(admin_api, "/api/v1/orders/", {"page_size": 50, "status": "pending"}, 50)
    assert large == small


def test_order_detail_query_count(admin_api, many_orders, django_assert_max_num_queries):
    order_id = admin_api.get("/api/v1/orders/", {"page_size": 1}).json()["results"][0]["id"]
    admin_api.get(f"/api/v1/orders/{order_id}/")

    with django_assert_max_num_queries(3):
        assert admin_api.get(f"/api/v1/orders/{order_id}/").status_code == 200


def test_movement_list_query_count_is_flat(admin_api, many_orders):
    # 5 receipts + 60 orders' reserve lines: well over 60 movements.
    assert_flat(admin_api, "/api/v1/inventory/movements/", limit=2)


def test_movement_list_filtered_by_product_query_count_is_flat(admin_api, products, many_orders):
    path = "/api/v1/inventory/movements/"
    admin_api.get(path, {"page_size": 1})
    params = {"product": products[0].pk, "kind": "reserve"}
    small = queries_for(admin_api, path, {**params, "page_size": 5}, 5)
    large = queries_for(admin_api, path, {**params, "page_size": 50}, 50)
    assert large == small <= 2


def test_batch_stock_query_count_does_not_grow_with_ids(storefront, make_product, receive):
    made = [make_product("published") for _ in range(ROWS)]
    for product in made[::2]:
        receive(product, 3)
    ids = [str(p.pk) for p in made]
    storefront.get("/api/v1/stock/", {"products": ids[0]})

    small = queries_for(storefront, "/api/v1/stock/", {"products": ",".join(ids[:5])}, 5)
    large = queries_for(storefront, "/api/v1/stock/", {"products": ",".join(ids)}, ROWS)

    assert large == small <= 3


# Claim the idempotency key, lock the stock rows (reading their products), insert the
# order, lock the stock levels at active locations, update the stock rows and the
# levels, insert movements, items, where each line is reserved, audit entries and events
# (one insert each), store the answer; plus the transaction (BEGIN/COMMIT here become a
# savepoint and its release: the test runs in a transaction). Locations added three
# (the levels' lock and update, the allocations), however many lines and locations.
# Variants added one: which variant each line names (a v1 "product" with one variant
# stands for it) and whether its stock is tracked, read before any lock.
ORDER_STATEMENTS = 15


def statements_to_place(client, lines) -> tuple[dict, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = place(client, order_body(*lines))
    assert response.status_code == 201, response.content
    return response.json(), [q["sql"] for q in ctx.captured_queries]


def test_placing_an_order_costs_the_same_statements_for_1_or_5_lines(storefront, products):
    place(storefront, order_body((products[0], 1)))  # warm up: key lookup, settings

    _, one = statements_to_place(storefront, [(products[1], 1)])
    placed, five = statements_to_place(storefront, [(p, n + 1) for n, p in enumerate(products)])

    assert len(one) == len(five) == ORDER_STATEMENTS, (
        f"{len(one)} statements for 1 line, {len(five)} for 5:\n" + "\n".join(five)
    )
    # The answer comes from memory, not from reading the order back, and is the same.
    assert not any(sql.startswith('SELECT "orders_orderitem"') for sql in five)
    assert placed == storefront.get(f"/api/v1/orders/{placed['id']}/").json()
    assert [item["product"] for item in placed["items"]] == sorted(p.pk for p in products)
