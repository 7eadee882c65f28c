"""An order's refunds and returns are read with a fixed number of queries, however many;
paying a refund costs a fixed number too, however many lines the order has."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.actors import Actor
from orders.refunds import refund_create
from orders.returns import return_receive, return_request
from tests.conftest import order_body
from tests.integration.order_support import move_order, place
from tests.integration.query_counts import queries_for

pytestmark = pytest.mark.django_db
STAFF = Actor.system("query-counts")


@pytest.fixture
def products(make_product, receive):
    made = [make_product("published") for _ in range(5)]
    for product in made:
        receive(product, 1000)
    return made


@pytest.fixture
def busy_order(storefront, products):
    """A completed order of 5 lines x 20 units, with 50 refunds and 50 returns of a unit
    (every other return received)."""
    order_id = place(storefront, order_body(*[(p, 20) for p in products])).json()["id"]
    move_order(order_id, "process", "complete")
    for n in range(50):
        product = products[n % 5]
        refund_create(actor=STAFF, order_id=order_id, lines={product.pk: 1}, amount="0.01")
        rma = return_request(actor=STAFF, order_id=order_id, lines={product.pk: 1})
        if n % 2:
            return_receive(
                actor=STAFF,
                order_id=order_id,
                number=rma.number,
                lines=[{"product": product.pk, "restocked": 1}],
            )
    return order_id


@pytest.mark.parametrize("kind", ["refunds", "returns"])
def test_an_orders_refunds_and_returns_are_listed_in_a_fixed_number_of_queries(
    admin_api, busy_order, kind
):
    path = f"/api/v1/orders/{busy_order}/{kind}/"
    admin_api.get(path, {"page_size": 1})  # warm up: key lookup and last-used stamp
    small = queries_for(admin_api, path, {"page_size": 5}, 5)
    large = queries_for(admin_api, path, {"page_size": 50}, 50)
    assert large == small, f"{path}: {small} queries for 5, {large} for 50"
    # The order is read as the order endpoints read it: with its lines and its shipments.
    assert small <= 7, f"{path}: {small} queries"


def test_a_return_is_read_in_a_fixed_number_of_queries(
    admin_api, busy_order, django_assert_max_num_queries
):
    number = admin_api.get(f"/api/v1/orders/{busy_order}/returns/").json()["results"][1]["number"]
    path = f"/api/v1/orders/{busy_order}/returns/{number}/"
    admin_api.get(path)
    with django_assert_max_num_queries(6):  # the order with its lines and shipments
        assert admin_api.get(path).status_code == 200


def test_a_refund_costs_a_fixed_number_of_queries(admin_api, storefront, products):
    order_id = place(storefront, order_body(*[(p, 3) for p in products])).json()["id"]
    move_order(order_id, "process", "complete")
    admin_api.get(f"/api/v1/orders/{order_id}/")  # warm up the key

    def pay(lines):
        with CaptureQueriesContext(connection) as ctx:
            response = admin_api.post(
                f"/api/v1/orders/{order_id}/refunds/",
                {"lines": [{"product": p.pk, "quantity": 1} for p in lines]},
                format="json",
                HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            )
        assert response.status_code == 201, response.json()
        return len(ctx.captured_queries)

    one, five = pay(products[:1]), pay(products)
    assert one == five, f"{one} queries for one line, {five} for five"
    assert one <= 14, f"{one} queries"
