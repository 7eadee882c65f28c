import pytest

pytestmark = pytest.mark.django_db


def test_storefront_lists_only_published_products(storefront, make_product):
    published = make_product("published")
    make_product("draft")
    make_product("archived")

    response = storefront.get("/api/v1/products/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert [p["sku"] for p in body["results"]] == [published.sku]
