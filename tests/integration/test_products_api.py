"""Reading and writing products over /api/v1/products/."""

from decimal import Decimal

import pytest

from catalog.models import Product
from tests.integration.problem_json import assert_problem

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"


def skus(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [p["sku"] for p in response.json()["results"]]


# --- Who sees what ---------------------------------------------------------------------


def test_storefront_list_holds_published_products_only(storefront, make_product):
    published = make_product("published")
    make_product("draft")
    make_product("archived")

    body = storefront.get(PRODUCTS).json()

    assert body["count"] == 1
    assert [p["id"] for p in body["results"]] == [published.pk]
    assert body["results"][0]["status"] == "published"


@pytest.mark.parametrize("status", ["draft", "archived"])
def test_storefront_detail_of_unpublished_product_is_404_not_403(storefront, make_product, status):
    product = make_product(status)

    response = storefront.get(f"{PRODUCTS}{product.pk}/")

    assert_problem(response, 404, "not_found")


def test_storefront_detail_of_published_product(storefront, make_product):
    product = make_product("published", name="Teapot", price=Decimal("24.50"))

    response = storefront.get(f"{PRODUCTS}{product.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == product.pk
    assert body["name"] == "Teapot"
    assert body["price"] == "24.50"
    assert body["status"] == "published"
    assert body["published_at"] is not None


def test_storefront_cannot_widen_its_view_with_the_status_filter(storefront, make_product):
    make_product("published")
    make_product("draft")

    assert skus(storefront.get(PRODUCTS, {"status": "draft"})) == []
    assert len(skus(storefront.get(PRODUCTS, {"status": "published"}))) == 1


def test_admin_key_sees_every_status_and_filters_by_status(admin_api, make_product):
    draft = make_product("draft")
    published = make_product("published")
    archived = make_product("archived")

    assert sorted(skus(admin_api.get(PRODUCTS))) == sorted([draft.sku, published.sku, archived.sku])
    assert skus(admin_api.get(PRODUCTS, {"status": "draft"})) == [draft.sku]
    assert skus(admin_api.get(PRODUCTS, {"status": "published"})) == [published.sku]
    assert skus(admin_api.get(PRODUCTS, {"status": "archived"})) == [archived.sku]
    assert admin_api.get(f"{PRODUCTS}{draft.pk}/").json()["status"] == "draft"


def test_catalog_write_scope_is_what_reveals_unpublished_products(client_for, make_product):
    draft = make_product("draft")
    published = make_product("published")

    reader = client_for("catalog:read")
    writer = client_for("catalog:read,catalog:write")

    assert skus(reader.get(PRODUCTS)) == [published.sku]
    assert_problem(reader.get(f"{PRODUCTS}{draft.pk}/"), 404)
    assert sorted(skus(writer.get(PRODUCTS))) == sorted([draft.sku, published.sku])
    assert writer.get(f"{PRODUCTS}{draft.pk}/").status_code == 200


def test_unknown_status_filter_is_refused(admin_api, make_product):
    make_product("draft")

    body = assert_problem(admin_api.get(PRODUCTS, {"status": "deleted"}), 400)

    assert "status" in body["errors"]


def test_detail_of_a_missing_or_malformed_id_is_404(admin_api):
    assert_problem(admin_api.get(f"{PRODUCTS}999999/"), 404, "not_found")
    assert_problem(admin_api.get(f"{PRODUCTS}abc/"), 404, "not_found")
    assert_problem(admin_api.get(f"{PRODUCTS}{10**25}/"), 404, "not_found")


# --- Filters, search, ordering -----------------------------------------------------------


def test_category_filter(storefront, make_product, system_actor):
    from catalog.services import category_create

    garden = category_create(actor=system_actor, name="Garden")
    kitchen_item = make_product("published")
    garden_item = make_product("published", category=garden)

    assert skus(storefront.get(PRODUCTS, {"category": garden.pk})) == [garden_item.sku]
    assert skus(storefront.get(PRODUCTS, {"category": kitchen_item.category_id})) == [
        kitchen_item.sku
    ]
    assert skus(storefront.get(PRODUCTS, {"category": 999_999})) == []


@pytest.mark.parametrize("value", ["kitchen", "1.5", "1e3", "0", "-1", str(10**25)])
def test_non_integer_category_filter_is_a_400(storefront, make_product, value):
    make_product("published")  # in category 1: "1.5" must not be read as 1

    body = assert_problem(storefront.get(PRODUCTS, {"category": value}), 400)

    assert "category" in body["errors"]


def test_search_matches_sku_or_name_case_insensitively(storefront, make_product):
    lamp = make_product("published", sku="LMP-100", name="Desk lamp")
    kettle = make_product("published", sku="KTL-200", name="Kettle")
    make_product("published", sku="MUG-300", name="Mug")

    assert skus(storefront.get(PRODUCTS, {"search": "lmp-1"})) == [lamp.sku]
    assert skus(storefront.get(PRODUCTS, {"search": "LAMP"})) == [lamp.sku]
    assert skus(storefront.get(PRODUCTS, {"search": "ktl"})) == [kettle.sku]
    assert skus(storefront.get(PRODUCTS, {"search": "nothing-like-it"})) == []
    # Wildcards are matched literally.
    assert skus(storefront.get(PRODUCTS, {"search": "%"})) == []


def test_search_does_not_reveal_drafts_to_a_storefront(storefront, make_product):
    make_product("draft", sku="SECRET-1", name="Unreleased gadget")

    assert skus(storefront.get(PRODUCTS, {"search": "SECRET"})) == []


def test_ordering_by_name_and_price(storefront, make_product):
    make_product("published", sku="B", name="Bravo", price=Decimal("5.00"))
    make_product("published", sku="A", name="Alpha", price=Decimal("30.00"))
    make_product("published", sku="C", name="Charlie", price=Decimal("12.50"))

    assert skus(storefront.get(PRODUCTS)) == ["A", "B", "C"]  # default: by name
    assert skus(storefront.get(PRODUCTS, {"ordering": "name"})) == ["A", "B", "C"]
    assert skus(storefront.get(PRODUCTS, {"ordering": "-name"})) == ["C", "B", "A"]
    assert skus(storefront.get(PRODUCTS, {"ordering": "price"})) == ["B", "C", "A"]
    assert skus(storefront.get(PRODUCTS, {"ordering": "-price"})) == ["A", "C", "B"]
    assert skus(storefront.get(PRODUCTS, {"ordering": "-sku"})) == ["C", "B", "A"]


def test_price_ordering_is_numeric_not_textual(storefront, make_product):
    make_product("published", sku="NINE", price=Decimal("9.00"))
    make_product("published", sku="HUNDRED", price=Decimal("100.00"))
    make_product("published", sku="TEN", price=Decimal("10.00"))

    assert skus(storefront.get(PRODUCTS, {"ordering": "price"})) == ["NINE", "TEN", "HUNDRED"]


# --- Pagination --------------------------------------------------------------------------


def test_pagination_shape_and_links(storefront, make_product):
    for n in range(5):
        make_product("published", sku=f"P{n}", name=f"Item {n}")

    first = storefront.get(PRODUCTS, {"page_size": 2})
    body = first.json()

    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 5
    assert body["previous"] is None
    assert [p["sku"] for p in body["results"]] == ["P0", "P1"]
    assert "page=2" in body["next"]
    assert "page_size=2" in body["next"]

    seen = [p["sku"] for p in body["results"]]
    url = body["next"]
    while url:
        page = storefront.get(url).json()
        assert page["previous"] is not None
        seen += [p["sku"] for p in page["results"]]
        url = page["next"]
    assert seen == ["P0", "P1", "P2", "P3", "P4"]


def test_default_page_size_is_20(storefront, make_product):
    for _ in range(21):
        make_product("published")

    body = storefront.get(PRODUCTS).json()

    assert body["count"] == 21
    assert len(body["results"]) == 20
    assert body["next"] is not None


def test_page_size_100_is_allowed(storefront, make_product):
    make_product("published")

    response = storefront.get(PRODUCTS, {"page_size": 100})

    assert response.status_code == 200
    assert response.json()["count"] == 1


@pytest.mark.parametrize("page_size", ["101", "1000", "0", "-1", "abc", "1.5"])
def test_bad_page_size_is_refused_not_clamped(storefront, admin_api, make_product, page_size):
    make_product("published")

    for client in (storefront, admin_api):
        body = assert_problem(client.get(PRODUCTS, {"page_size": page_size}), 400)
        assert "page_size" in body["errors"]


def test_page_beyond_the_last_is_404(storefront, make_product):
    make_product("published")

    assert_problem(storefront.get(PRODUCTS, {"page": 5}), 404)


# --- Create and change -------------------------------------------------------------------


def test_create_makes_a_draft_with_derived_slug_and_default_currency(admin_api, category):
    response = admin_api.post(
        PRODUCTS,
        {"sku": "MUG-1", "name": "Blue Mug", "price": "9.5", "category": category.pk},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert body["published_at"] is None
    assert body["price"] == "9.50"
    assert body["currency"] == "EUR"
    assert body["slug"] == "blue-mug-mug-1"
    assert body["category"] == category.pk
    product = Product.objects.get(pk=body["id"])
    assert product.status == "draft"
    assert product.price == Decimal("9.50")


def test_create_ignores_nothing_it_was_given(admin_api, category):
    payload = {
        "sku": "LAMP.2_x",
        "name": "Lamp",
        "slug": "the-lamp",
        "description": "Warm light.",
        "price": "120.00",
        "currency": "USD",
        "category": category.pk,
        "attributes": {"colour": "brass", "watts": 40, "dimmable": True, "note": None},
    }

    body = admin_api.post(PRODUCTS, payload, format="json").json()

    for field, value in payload.items():
        assert body[field] == value, field
    assert admin_api.get(f"{PRODUCTS}{body['id']}/").json() == body


def test_created_draft_is_invisible_to_the_storefront(admin_api, storefront, category):
    body = admin_api.post(
        PRODUCTS, {"sku": "HID-1", "name": "Hidden", "price": "1.00"}, format="json"
    ).json()

    assert skus(storefront.get(PRODUCTS)) == []
    assert_problem(storefront.get(f"{PRODUCTS}{body['id']}/"), 404)


def test_patch_changes_only_the_given_fields(admin_api, make_product):
    product = make_product("draft", name="Old name", description="Keep me")

    response = admin_api.patch(
        f"{PRODUCTS}{product.pk}/", {"name": "New name", "price": "3.30"}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "New name"
    assert body["price"] == "3.30"
    assert body["description"] == "Keep me"
    assert body["sku"] == product.sku
    product.refresh_from_db()
    assert (product.name, product.price, product.description) == (
        "New name",
        Decimal("3.30"),
        "Keep me",
    )


def test_patch_of_a_published_product_keeps_it_published(admin_api, storefront, make_product):
    product = make_product("published")

    admin_api.patch(f"{PRODUCTS}{product.pk}/", {"name": "Renamed"}, format="json")

    body = storefront.get(f"{PRODUCTS}{product.pk}/").json()
    assert body["name"] == "Renamed"
    assert body["status"] == "published"


def test_patch_can_move_a_draft_out_of_its_category(admin_api, make_product):
    product = make_product("draft")

    response = admin_api.patch(f"{PRODUCTS}{product.pk}/", {"category": None}, format="json")

    assert response.status_code == 200
    assert response.json()["category"] is None


def test_patch_of_a_missing_product_is_404(admin_api):
    assert_problem(
        admin_api.patch(f"{PRODUCTS}424242/", {"name": "x"}, format="json"), 404, "not_found"
    )


@pytest.mark.parametrize("method", ["put", "delete"])
def test_products_cannot_be_replaced_or_deleted(admin_api, make_product, method):
    product = make_product("draft")

    response = getattr(admin_api, method)(f"{PRODUCTS}{product.pk}/", {}, format="json")

    assert_problem(response, 405, "method_not_allowed")
    assert Product.objects.filter(pk=product.pk).exists()


# --- The list's representation ---------------------------------------------------------


def test_every_list_shows_each_product_exactly_as_the_schemas_serializer_would(
    admin_api, storefront, make_product, system_actor
):
    """The lists build their items from columns (catalog.payloads.product_list_item), not
    through ProductListSerializer: item for item, filters, search and ordering included,
    they must be what the serializer (the schema's shape) makes of the same products."""
    from catalog.payloads import ProductListSerializer
    from catalog.variants import product_set_options, variants_generate
    from inventory.services import stock_record_movement

    make_product(
        "published",
        name="Tea cup · 茶杯",
        price=Decimal("0.50"),
        description='Line one\nline "two" ✓',
        attributes={"material": "porcelain", "pieces": 2, "glazed": True, "origin": None},
    )
    make_product("draft", name="Teapot", price=Decimal("1234567890.99"), category=None)
    make_product("archived", name="Old tea tin", price=Decimal("12.00"))
    shirt = make_product("published", name="Tea shirt", price=Decimal("20.00"))
    product_set_options(
        actor=system_actor,
        product_id=shirt.pk,
        options=[{"name": "Size", "values": ["S", "M"]}],
    )
    variants_generate(actor=system_actor, product_id=shirt.pk)
    medium = Product.objects.get(parent=shirt, option_values__Size="M")
    stock_record_movement(
        actor=system_actor, product_id=medium.pk, kind="receipt", quantity=3, reason="in"
    )

    def as_serialized(items):
        ids = [item["id"] for item in items]
        products = {p.pk: p for p in Product.objects.filter(pk__in=ids)}
        return [dict(ProductListSerializer(products[pk]).data) for pk in ids]

    for client, query in [
        (admin_api, ""),
        (admin_api, "?ordering=-price"),
        (admin_api, "?status=draft"),
        (admin_api, "?search=tea"),
        (storefront, ""),
        (storefront, "?search=tea&in_stock=true"),
        (storefront, "?option=Size:M&price_min=1"),
    ]:
        response = client.get(PRODUCTS + query)
        assert response.status_code == 200, (query, response.content)
        items = response.json()["results"]
        assert items, query
        serialized = as_serialized(items)
        assert items == serialized, query
        # The same keys in the same order: the same JSON, byte for byte (and ETag).
        assert [list(item) for item in items] == [list(item) for item in serialized], query
