"""Input the API and the admin used to take or mishandle: signed and non-ASCII prices,
unknown ordering fields, and API paths missing their final slash."""

from decimal import Decimal

import pytest

from catalog.models import Product
from tests.integration.test_every_url_is_protected import ENDPOINTS

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
# Arabic-Indic and full-width digits read as numbers by Decimal(); "-0.00" is a zero
# that prints negative.
ODD_PRICES = [
    "-0.00",
    "-0",
    "\u0661\u0662.00",
    "12.\u0665\u0660",
    "\uff11\uff12.00",
    "+12.00",
    " -0.00",
]


@pytest.mark.parametrize("price", ODD_PRICES)
def test_an_odd_price_is_refused_on_create_and_change(admin_api, category, make_product, price):
    body = {"sku": "ODD-1", "name": "Odd", "price": price, "category": category.pk}
    created = admin_api.post(PRODUCTS, body, format="json")
    assert created.status_code == 400, created.json()
    assert created["Content-Type"] == "application/problem+json"
    assert "price" in created.json()["errors"]
    assert not Product.objects.filter(sku="ODD-1").exists()

    product = make_product(price=Decimal("10.00"))
    changed = admin_api.patch(f"{PRODUCTS}{product.pk}/", {"price": price}, format="json")
    assert changed.status_code == 400
    assert "digits 0-9" in changed.json()["errors"]["price"][0]
    product.refresh_from_db()
    assert product.price == Decimal("10.00")


def test_plain_prices_are_still_taken(admin_api, category):
    for sku, price in (("P-1", "12.50"), ("P-2", "0"), ("P-3", " 7.5 "), ("P-4", "3.")):
        body = {"sku": sku, "name": sku, "price": price, "category": category.pk}
        assert admin_api.post(PRODUCTS, body, format="json").status_code == 201, price
    assert Product.objects.get(sku="P-3").price == Decimal("7.50")


@pytest.mark.parametrize("price", ["-0.00", "\u0661\u0662.00"])
def test_the_admin_refuses_an_odd_price(admin_client, make_product, price):
    product = make_product(price=Decimal("10.00"))
    form = {
        "sku": product.sku,
        "name": product.name,
        "slug": product.slug,
        "description": "",
        "price": price,
        "currency": product.currency,
        "category": product.category_id,
        "attributes": "{}",
    }
    response = admin_client.post(f"/admin/catalog/product/{product.pk}/change/", form)
    assert response.status_code == 200  # the form again
    assert "digits 0-9" in response.content.decode()
    product.refresh_from_db()
    assert product.price == Decimal("10.00")


@pytest.mark.parametrize(
    "ordering", ["colour", "-stock", "name,secret_field", "--name", "category__name", "?"]
)
def test_an_unknown_ordering_is_a_400_naming_the_allowed_fields(storefront, ordering):
    response = storefront.get(PRODUCTS, {"ordering": ordering})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    (message,) = response.json()["errors"]["ordering"]
    assert "allowed: name, price, published_at, created_at, sku, id" in message


def test_known_orderings_still_order(storefront, make_product):
    for name, price in (("b", "2.00"), ("a", "3.00"), ("c", "1.00")):
        make_product("published", name=name, price=Decimal(price))
    names = lambda r: [p["name"] for p in r.json()["results"]]  # noqa: E731
    assert names(storefront.get(PRODUCTS, {"ordering": "-price"})) == ["a", "b", "c"]
    assert names(storefront.get(PRODUCTS, {"ordering": "name,-id"})) == ["a", "b", "c"]
    assert names(storefront.get(PRODUCTS, {"ordering": ""})) == ["a", "b", "c"]


ROUTES = sorted({path for path, _, _ in ENDPOINTS})


@pytest.mark.parametrize("debug", [False, True])
def test_every_api_route_without_its_slash_is_a_problem_404(admin_api, settings, debug):
    settings.DEBUG = debug
    seen = []
    for path in ROUTES:
        bare = path.rstrip("/")
        for method in ("get", "post", "put", "patch", "delete", "head", "options"):
            response = getattr(admin_api, method)(bare, {}, format="json")
            seen.append((bare, method, response.status_code))
            assert response.status_code == 404, (bare, method, response.status_code)
            assert response["Content-Type"] == "application/problem+json"
            if method != "head":
                assert response.json()["detail"].endswith(f"({bare}/).")
    assert len(seen) > 100
