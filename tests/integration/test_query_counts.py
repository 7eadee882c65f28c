"""List endpoints issue a fixed number of queries, however many rows a page holds."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.integration.query_counts import queries_for

pytestmark = pytest.mark.django_db

ROWS = 60


def assert_flat(client, path: str) -> None:
    client.get(path, {"page_size": 1})  # warm up: key lookup and last-used stamp
    small = queries_for(client, path, {"page_size": 5}, 5)
    large = queries_for(client, path, {"page_size": 50}, 50)
    assert large == small, f"{path}: {small} queries for 5 rows, {large} for 50"
    assert small <= 4


@pytest.fixture
def many_products(make_product, system_actor):
    from catalog.services import category_create

    categories = [category_create(actor=system_actor, name=f"Cat {n}") for n in range(6)]
    return [make_product("published", category=categories[n % 6]) for n in range(ROWS)]


def test_product_list_query_count_is_flat(admin_api, many_products):
    assert_flat(admin_api, "/api/v1/products/")


def test_storefront_product_list_query_count_is_flat(storefront, many_products):
    # Different page sizes are different cache entries, so both are misses.
    assert_flat(storefront, "/api/v1/products/")


def test_product_list_with_filters_query_count_is_flat(admin_api, many_products):
    admin_api.get("/api/v1/products/", {"page_size": 1})
    with CaptureQueriesContext(connection) as ctx:
        admin_api.get(
            "/api/v1/products/", {"page_size": 50, "search": "Product", "ordering": "-price"}
        )
    assert len(ctx.captured_queries) <= 4


def test_category_list_query_count_is_flat(admin_api, system_actor, category):
    from catalog.services import category_create

    parents = [category_create(actor=system_actor, name=f"Parent {n}") for n in range(ROWS)]
    for parent in parents[:20]:
        for m in range(3):
            category_create(actor=system_actor, name=f"{parent.name} child {m}", parent=parent)

    assert_flat(admin_api, "/api/v1/categories/")


def test_storefront_category_list_query_count_is_flat(storefront, system_actor, category):
    from catalog.services import category_create

    for n in range(ROWS):
        parent = category_create(actor=system_actor, name=f"Parent {n}")
        category_create(actor=system_actor, name=f"Child {n}", parent=parent)

    assert_flat(storefront, "/api/v1/categories/")


def test_audit_list_query_count_is_flat(admin_api, many_products):
    assert_flat(admin_api, "/api/v1/audit/")


def test_product_detail_query_count(admin_api, many_products, django_assert_max_num_queries):
    product = many_products[0]
    admin_api.get(f"/api/v1/products/{product.pk}/")

    with django_assert_max_num_queries(2):
        assert admin_api.get(f"/api/v1/products/{product.pk}/").status_code == 200
