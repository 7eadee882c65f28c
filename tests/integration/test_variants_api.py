"""Variants over the API: options, making and editing variants, what each client sees of
them (with their availability), ordering by variant, and the refusals."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from catalog.models import Product
from catalog.variants import product_set_options, variant_create, variants_generate
from inventory.locations import location_create
from inventory.models import Stock
from inventory.services import default_location, stock_record_movement
from pms_backend.events.models import Event
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER
from tests.integration.order_support import place, stock_of, writes_nothing
from tests.integration.problem_json import assert_problem, leaves_no_trace

pytestmark = pytest.mark.django_db

SIZES = {"name": "Size", "values": ["S", "M", "L"]}
COLOURS = {"name": "Colour", "values": ["Red", "Blue"]}
VALID_EAN = "4006381333931"  # the EAN-13 example of GS1's and Wikipedia's pages
BAD_EAN = "4006381333932"  # the same with a wrong check digit


def product_url(product) -> str:
    return f"/api/v1/products/{product.pk}/"


def variant_url(variant) -> str:
    pk = variant if isinstance(variant, int) else variant.pk
    return f"/api/v1/variants/{pk}/"


@pytest.fixture
def shirt(make_product, system_actor):
    """A draft product with Size and Colour and its six variants."""
    product = make_product(sku="SHIRT", name="Shirt", price=Decimal("20.00"))
    product_set_options(actor=system_actor, product_id=product.pk, options=[SIZES, COLOURS])
    variants_generate(actor=system_actor, product_id=product.pk)
    return Product.objects.get(pk=product.pk)


def publish(product, system_actor):
    from catalog.services import product_transition

    return product_transition(actor=system_actor, product_id=product.pk, transition="publish")


def receive_at(system_actor, product_id: int, quantity: int, location):
    stock_record_movement(
        actor=system_actor,
        product_id=product_id,
        kind="receipt",
        quantity=quantity,
        reason="delivery",
        location=location,
    )


def order(*lines) -> dict:
    return {"items": list(lines), "customer": ORDER_CUSTOMER, "shipping_address": ORDER_ADDRESS}


# --- Making variants ------------------------------------------------------------------------


def test_declare_options_then_make_every_combination(admin_api, make_product):
    product = make_product(sku="TEE", name="Tee", price=Decimal("12.50"))
    response = admin_api.put(f"{product_url(product)}options/", [SIZES, COLOURS], format="json")
    assert response.status_code == 200, response.content
    assert response.json()["options"] == [SIZES, COLOURS]

    response = admin_api.post(f"{product_url(product)}variants/generate/", {}, format="json")
    assert response.status_code == 201, response.content
    made = response.json()
    assert [v["sku"] for v in made] == [
        "TEE-S-RED", "TEE-S-BLUE", "TEE-M-RED", "TEE-M-BLUE", "TEE-L-RED", "TEE-L-BLUE",
    ]  # fmt: skip
    assert made[2]["options"] == {"Size": "M", "Colour": "Red"}
    assert {(v["price"], v["currency"], v["status"], v["product"]) for v in made} == {
        ("12.50", product.currency, "draft", product.pk)
    }
    assert Event.objects.filter(type="variant.created").count() == 6

    detail = admin_api.get(product_url(product)).json()
    assert [v["id"] for v in detail["variants"]] == [v["id"] for v in made]
    assert {(v["available"], v["in_stock"]) for v in detail["variants"]} == {(0, False)}
    listed = admin_api.get(f"{product_url(product)}variants/").json()
    assert listed == {
        "count": len(detail["variants"]),
        "next": None,
        "previous": None,
        "results": detail["variants"],
    }


def test_make_only_the_ticked_combinations_and_again_makes_none_twice(admin_api, shirt):
    admin_api.put(
        f"{product_url(shirt)}options/",
        [{"name": "Size", "values": ["S", "M", "L", "XL"]}, COLOURS],
        format="json",
    )
    url = f"{product_url(shirt)}variants/generate/"
    ticked = [{"Size": "XL", "Colour": "Red"}, {"Size": "S", "Colour": "Red"}]
    response = admin_api.post(url, {"combinations": ticked}, format="json")
    assert response.status_code == 201, response.content
    assert [v["options"] for v in response.json()] == [{"Size": "XL", "Colour": "Red"}]
    assert shirt.variants.count() == 7


def test_add_one_variant_with_its_own_price_and_barcode(admin_api, make_product):
    product = make_product(sku="MUG", price=Decimal("8.00"))
    admin_api.put(f"{product_url(product)}options/", [SIZES], format="json")
    body = {"options": {"Size": "M"}, "sku": "MUG-M", "barcode": VALID_EAN, "price": "9.50"}
    response = admin_api.post(f"{product_url(product)}variants/", body, format="json")
    assert response.status_code == 201, response.content
    variant = response.json()
    assert (variant["sku"], variant["barcode"], variant["price"]) == ("MUG-M", VALID_EAN, "9.50")
    assert variant["weight_grams"] is None and variant["track_stock"] is True

    response = admin_api.post(
        f"{product_url(product)}variants/",
        {"options": {"Size": "S"}, "sku": "MUG-S"},
        format="json",
    )
    assert response.json()["price"] == "8.00"  # the product's


def test_change_and_delete_a_variant(admin_api, shirt, system_actor):
    variant = shirt.variants.order_by("pk").first()
    response = admin_api.patch(
        variant_url(variant),
        {"price": "25.00", "weight_grams": 180, "options": {"Size": "L", "Colour": "Red"}},
        format="json",
    )
    assert response.status_code == 409  # L / Red is another variant already
    response = admin_api.patch(
        variant_url(variant), {"price": "25.00", "weight_grams": 180}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["price"], response.json()["weight_grams"]) == ("25.00", 180)
    event = Event.objects.filter(type="variant.updated").latest("id")
    assert event.data == response.json()

    assert admin_api.delete(variant_url(variant)).status_code == 204
    assert admin_api.get(variant_url(variant)).status_code == 404
    assert Event.objects.filter(type="variant.deleted").latest("id").data["id"] == variant.pk


def test_a_variant_follows_its_product_through_the_api(admin_api, shirt):
    shirt_variant = shirt.variants.first()
    admin_api.post(f"{product_url(shirt)}publish/")
    assert admin_api.get(variant_url(shirt_variant)).json()["status"] == "published"
    # A variant is not a product of the lists nor moved on its own.
    assert admin_api.get(product_url(shirt_variant)).status_code == 404
    listed = admin_api.get("/api/v1/products/").json()["results"]
    assert [p["id"] for p in listed] == [shirt.pk]
    assert "variants" not in listed[0] and listed[0]["options"] == [SIZES, COLOURS]


# --- What clients see -----------------------------------------------------------------------


def test_a_product_without_variants_is_its_own_single_variant(storefront, make_product):
    product = make_product("published")
    shown = storefront.get(product_url(product)).json()
    assert shown["options"] == []
    assert shown["variants"] == [
        {
            "id": product.pk,
            "product": product.pk,
            "sku": product.sku,
            "barcode": None,
            "price": "19.90",
            "currency": product.currency,
            "options": {},
            "weight_grams": None,
            "track_stock": True,
            "allow_backorder": False,
            "backorder_limit": None,
            "preorder_until": None,
            "preorder_limit": None,
            "status": "published",
            "created_at": shown["created_at"],
            "updated_at": shown["variants"][0]["updated_at"],
            "available": 0,
            "in_stock": False,
        }
    ]


def test_storefronts_see_availability_summed_over_active_locations(storefront, shirt, system_actor):
    main = default_location()
    store = location_create(actor=system_actor, code="store", name="Store", priority=200)
    small, medium = shirt.variants.order_by("pk")[:2]
    receive_at(system_actor, small.pk, 3, main)
    receive_at(system_actor, small.pk, 4, store)
    receive_at(system_actor, medium.pk, 1, store)
    publish(shirt, system_actor)

    shown = {v["id"]: v for v in storefront.get(product_url(shirt)).json()["variants"]}
    assert (shown[small.pk]["available"], shown[small.pk]["in_stock"]) == (7, True)
    assert (shown[medium.pk]["available"], shown[medium.pk]["in_stock"]) == (1, True)
    assert sum(v["in_stock"] for v in shown.values()) == 2
    # Totals only: no location is named to a storefront.
    assert "locations" not in json.dumps(shown) and "store" not in json.dumps(shown)
    assert storefront.get(variant_url(small)).json()["available"] == 7


def test_a_cached_product_shows_the_stock_of_now(
    storefront, shirt, system_actor, django_assert_num_queries
):
    """Stock moves replace no catalog version: a cached answer is brought up to date."""
    variant = shirt.variants.order_by("pk").first()
    publish(shirt, system_actor)
    first = storefront.get(product_url(shirt))
    with django_assert_num_queries(1):  # the variants' stock, by primary key
        assert storefront.get(product_url(shirt))["X-Cache"] == "hit"
    receive_at(system_actor, variant.pk, 5, default_location())

    again = storefront.get(product_url(shirt))
    assert again["X-Cache"] == "hit"
    shown = {v["id"]: v for v in again.json()["variants"]}
    assert (shown[variant.pk]["available"], shown[variant.pk]["in_stock"]) == (5, True)
    assert again["ETag"] != first["ETag"]
    assert storefront.get(product_url(shirt))["ETag"] == again["ETag"]


def test_storefronts_see_no_variant_of_an_unpublished_product(storefront, shirt, admin_api):
    variant = shirt.variants.first()
    assert_problem(storefront.get(variant_url(variant)), 404)
    assert_problem(storefront.get(f"{product_url(shirt)}variants/"), 404)
    assert admin_api.get(variant_url(variant)).status_code == 200


def test_the_published_event_carries_the_product_as_the_api_returns_it(
    admin_api, shirt, system_actor
):
    publish(shirt, system_actor)
    event = Event.objects.filter(type="product.published").latest("id")
    api = admin_api.get(product_url(shirt)).json()
    assert json.loads(json.dumps(event.data)) == api
    assert len(api["variants"]) == 6


def test_storefront_keys_cannot_write_variants(storefront, shirt):
    variant = shirt.variants.first()
    assert (
        storefront.put(f"{product_url(shirt)}options/", [SIZES], format="json").status_code == 403
    )
    assert storefront.post(f"{product_url(shirt)}variants/generate/").status_code == 403
    assert storefront.patch(variant_url(variant), {"price": "1.00"}).status_code == 403
    assert storefront.delete(variant_url(variant)).status_code == 403


# --- Query counts ---------------------------------------------------------------------------


def _detail_queries(client, product):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(product_url(product))  # warm up: key lookup and last-used stamp
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(product_url(product))
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()


def test_product_detail_queries_do_not_grow_with_variants_and_locations(
    admin_api, make_product, system_actor
):
    """One variant or 50 over 5 locations: the same number of queries."""
    locations = [default_location()] + [
        location_create(actor=system_actor, code=f"loc-{n}", name=f"Loc {n}", priority=n)
        for n in range(4)
    ]
    products = {}
    for count in (1, 50):
        product = make_product(sku=f"P{count}")
        values = [f"V{n}" for n in range(count)]
        product_set_options(
            actor=system_actor,
            product_id=product.pk,
            options=[{"name": "Kind", "values": values}],
        )
        variants_generate(actor=system_actor, product_id=product.pk)
        for variant in Product.objects.filter(parent=product):
            for location in locations:
                receive_at(system_actor, variant.pk, 2, location)
        products[count] = product

    one, shown_one = _detail_queries(admin_api, products[1])
    fifty, shown_fifty = _detail_queries(admin_api, products[50])
    assert len(shown_one["variants"]) == 1 and len(shown_fifty["variants"]) == 50
    assert {v["available"] for v in shown_fifty["variants"]} == {10}
    assert fifty == one <= 4
    # A product without options: no variant query at all.
    plain = make_product(sku="PLAIN")
    alone, _ = _detail_queries(admin_api, plain)
    assert alone == one - 1


def test_the_product_list_costs_the_same_with_variants(
    admin_api, storefront, make_product, system_actor, django_assert_num_queries
):
    """The lists show no variants: a page of products with 50 variants each costs the
    queries of a page of plain ones, for staff (uncached) and storefronts (a miss)."""
    plain = [make_product("published", sku=f"PLAIN-{n}") for n in range(5)]
    for client in (admin_api, storefront):
        client.get("/api/v1/products/", {"page_size": 1})  # warm up: key lookup
    with django_assert_num_queries(2):  # the page and its count
        page = admin_api.get("/api/v1/products/", {"page_size": 5}).json()
    assert [p["id"] for p in page["results"]] == [p.pk for p in plain]

    for n in range(5):
        product = make_product(sku=f"MANY-{n}", name=f"A product {n}")
        product_set_options(
            actor=system_actor,
            product_id=product.pk,
            options=[{"name": "Kind", "values": [f"K{m}" for m in range(50)]}],
        )
        variants_generate(actor=system_actor, product_id=product.pk)
        publish(product, system_actor)
    for client in (admin_api, storefront):
        # A search asks first whether any product has every word (else it looks for typos).
        with django_assert_num_queries(3):
            page = client.get("/api/v1/products/", {"page_size": 5, "search": "A product"})
        assert [p["sku"] for p in page.json()["results"]] == [f"MANY-{n}" for n in range(5)]
        assert "variants" not in page.json()["results"][0]


# --- Ordering by variant --------------------------------------------------------------------


@pytest.fixture
def stocked_shirt(shirt, system_actor):
    main = default_location()
    for variant in shirt.variants.all():
        receive_at(system_actor, variant.pk, 10, main)
    publish(shirt, system_actor)
    return shirt


def test_order_a_variant_reserves_that_variants_stock(storefront, stocked_shirt):
    variant = stocked_shirt.variants.order_by("pk")[1]
    response = place(storefront, order({"variant": variant.pk, "quantity": 2}))
    assert response.status_code == 201, response.content
    assert [i["product"] for i in response.json()["items"]] == [variant.pk]
    assert stock_of(variant) == (10, 2)
    assert not Stock.objects.filter(product=stocked_shirt).exists()
    shown = {v["id"]: v for v in storefront.get(product_url(stocked_shirt)).json()["variants"]}
    assert shown[variant.pk]["available"] == 8


def test_v1_product_lines_still_order_a_product_without_variants(storefront, make_product, receive):
    product = make_product("published")
    receive(product, 5)
    response = place(storefront, order({"product": product.pk, "quantity": 1}))
    assert response.status_code == 201, response.content
    assert stock_of(product) == (5, 1)


def test_v1_product_lines_order_the_one_variant_of_a_product(
    storefront, make_product, system_actor
):
    product = make_product(sku="ONE")
    product_set_options(
        actor=system_actor, product_id=product.pk, options=[{"name": "Size", "values": ["M"]}]
    )
    (variant,) = variants_generate(actor=system_actor, product_id=product.pk)
    receive_at(system_actor, variant.pk, 4, default_location())
    publish(product, system_actor)

    response = place(storefront, order({"product": product.pk, "quantity": 3}))
    assert response.status_code == 201, response.content
    assert [i["product"] for i in response.json()["items"]] == [variant.pk]
    assert stock_of(variant) == (4, 3)


def test_a_product_with_several_variants_is_400_naming_them(storefront, stocked_shirt):
    with writes_nothing():
        response = place(storefront, order({"product": stocked_shirt.pk, "quantity": 1}))
    body = assert_problem(response, 400, "variant_required")
    skus = sorted(stocked_shirt.variants.values_list("sku", flat=True))
    assert all(sku in body["detail"] for sku in skus)
    assert sorted(v["sku"] for v in body["lines"][0]["variants"]) == skus


def test_a_variant_of_an_unpublished_product_is_409(storefront, shirt, system_actor):
    variant = shirt.variants.first()
    receive_at(system_actor, variant.pk, 5, default_location())
    with writes_nothing():
        response = place(storefront, order({"variant": variant.pk, "quantity": 1}))
    assert_problem(response, 409, "product_unavailable")


def test_the_order_schema_names_the_variant(admin_api):
    schema = admin_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    line = schema["components"]["schemas"]["OrderLineRequest"]["properties"]
    assert "variant" in line and "variant_required" in line["product"]["description"]
    assert "/api/v1/variants/{id}/" in schema["paths"]
    assert "/api/v1/products/{id}/variants/generate/" in schema["paths"]


# --- Bad input ------------------------------------------------------------------------------


def test_a_combination_taken_is_409_duplicate_variant(admin_api, shirt):
    body = {"options": {"Size": "S", "Colour": "Red"}, "sku": "SHIRT-NEW"}
    with leaves_no_trace():
        response = admin_api.post(f"{product_url(shirt)}variants/", body, format="json")
    assert_problem(response, 409, "duplicate_variant")


def test_a_sku_taken_is_409_duplicate_sku(admin_api, shirt, system_actor):
    product_set_options(
        actor=system_actor,
        product_id=shirt.pk,
        options=[{"name": "Size", "values": ["S", "M", "L", "XL"]}, COLOURS],
    )
    taken = shirt.variants.first().sku
    body = {"options": {"Size": "XL", "Colour": "Red"}, "sku": taken}
    with leaves_no_trace():
        response = admin_api.post(f"{product_url(shirt)}variants/", body, format="json")
    assert_problem(response, 409, "duplicate_sku")


def test_a_barcode_with_a_wrong_check_digit_is_400(admin_api, shirt):
    variant = shirt.variants.first()
    with leaves_no_trace():
        response = admin_api.patch(variant_url(variant), {"barcode": BAD_EAN}, format="json")
    body = assert_problem(response, 400, "invalid_barcode")
    assert "check digit" in body["detail"]
    response = admin_api.patch(variant_url(variant), {"barcode": VALID_EAN}, format="json")
    assert response.status_code == 200


def test_a_barcode_taken_is_409(admin_api, shirt):
    first, second = shirt.variants.order_by("pk")[:2]
    admin_api.patch(variant_url(first), {"barcode": VALID_EAN}, format="json")
    with leaves_no_trace():
        response = admin_api.patch(variant_url(second), {"barcode": VALID_EAN}, format="json")
    assert_problem(response, 409, "duplicate_barcode")


@pytest.mark.parametrize(
    "options",
    [
        {"Size": "XXL", "Colour": "Red"},  # a value not declared
        {"Size": "S", "Colour": "Red", "Fit": "Slim"},  # an option not declared
        {"Size": "S"},  # an option left out
    ],
)
def test_options_the_product_does_not_declare_are_400(admin_api, shirt, options):
    body = {"options": options, "sku": "SHIRT-ODD"}
    with leaves_no_trace():
        response = admin_api.post(f"{product_url(shirt)}variants/", body, format="json")
    assert_problem(response, 400, "invalid_variant")


def test_removing_an_option_value_a_variant_uses_is_409(admin_api, shirt):
    smaller = [{"name": "Size", "values": ["S", "M"]}, COLOURS]
    with leaves_no_trace():
        response = admin_api.put(f"{product_url(shirt)}options/", smaller, format="json")
    body = assert_problem(response, 409, "option_in_use")
    assert "SHIRT-L-" in body["detail"]
    assert Product.objects.get(pk=shirt.pk).options == [SIZES, COLOURS]


def test_bad_options_are_400(admin_api, shirt):
    with leaves_no_trace():
        response = admin_api.put(
            f"{product_url(shirt)}options/", [{"name": "Size", "values": []}], format="json"
        )
    assert_problem(response, 400, "invalid_options")


def test_a_variant_of_a_variant_is_400(admin_api, shirt):
    variant = shirt.variants.first()
    body = {"options": {"Size": "S"}, "sku": "DEEP-1"}
    with leaves_no_trace():
        response = admin_api.post(f"/api/v1/products/{variant.pk}/variants/", body, format="json")
    body = assert_problem(response, 400, "invalid_variant")
    assert "one level deep" in body["detail"]
    with leaves_no_trace():
        response = admin_api.put(f"/api/v1/products/{variant.pk}/options/", [SIZES], format="json")
    assert_problem(response, 400, "invalid_variant")


def test_deleting_a_stocked_variant_is_409_variant_in_use(admin_api, shirt, system_actor):
    variant = shirt.variants.first()
    receive_at(system_actor, variant.pk, 1, default_location())
    with leaves_no_trace():
        response = admin_api.delete(variant_url(variant))
    assert_problem(response, 409, "variant_in_use")
    assert Product.objects.filter(pk=variant.pk).exists()


def test_a_variant_cannot_be_moved_on_its_own(admin_api, shirt):
    variant = shirt.variants.first()
    # Not a product of the API: its status is its product's.
    assert_problem(admin_api.post(f"{product_url(variant)}publish/"), 404)


def test_unknown_fields_and_ids_are_refused(admin_api, shirt):
    variant = shirt.variants.first()
    with leaves_no_trace():
        response = admin_api.patch(variant_url(variant), {"status": "archived"}, format="json")
    assert_problem(response, 400)
    assert_problem(admin_api.get(variant_url(shirt.pk)), 404)  # a product, not a variant
    assert_problem(admin_api.post("/api/v1/products/999999/variants/generate/"), 404)


def test_a_product_change_reaches_its_variants(admin_api, shirt, system_actor):
    from catalog.services import category_create

    other = category_create(actor=system_actor, name="Shirts")
    response = admin_api.patch(
        product_url(shirt),
        {"name": "Oxford", "currency": "USD", "category": other.pk},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert set(shirt.variants.values_list("currency", "category")) == {("USD", other.pk)}
    assert shirt.variants.filter(name="Oxford (S / Red)").exists()


def test_a_variant_created_via_the_service_shows_its_product(system_actor, shirt):
    product_set_options(
        actor=system_actor,
        product_id=shirt.pk,
        options=[{"name": "Size", "values": ["S", "M", "L", "XL"]}, COLOURS],
    )
    variant = variant_create(
        actor=system_actor, product_id=shirt.pk, options={"Size": "XL", "Colour": "Blue"},
        sku="SHIRT-XL-B",
    )  # fmt: skip
    assert variant.name == "Shirt (XL / Blue)" and variant.status == "draft"


def test_an_import_that_archives_a_product_archives_its_variants(shirt, system_actor):
    import csv
    import io

    from catalog.csv_columns import COLUMNS
    from catalog.importing import product_import

    publish(shirt, system_actor)
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS)
    writer.writeheader()
    row = {"sku": "SHIRT", "name": "Shirt", "price": "20.00", "category": "Kitchen"}
    writer.writerow(dict.fromkeys(COLUMNS, "") | row | {"status": "archived"})

    product_import(actor=system_actor, source=io.BytesIO(out.getvalue().encode()))

    assert Product.objects.get(pk=shirt.pk).status == "archived"
    assert set(shirt.variants.values_list("status", flat=True)) == {"archived"}


def test_stock_is_read_for_a_variant_and_summed_for_its_product(admin_api, storefront):
    from decimal import Decimal as D

    from audit.actors import Actor as A
    from catalog import services as catalog_services
    from catalog import variants as v
    from inventory.services import stock_record_movement

    actor = A.system("tests")
    category = catalog_services.category_create(actor=actor, name="Cups", slug="cups")
    cup = catalog_services.product_create(
        actor=actor, sku="CUP-S", name="Cup", price=D("4.00"), category=category
    )
    v.product_set_options(
        actor=actor, product_id=cup.pk, options=[{"name": "Colour", "values": ["Red", "Blue"]}]
    )
    red, blue = v.variants_generate(actor=actor, product_id=cup.pk)
    catalog_services.product_transition(actor=actor, product_id=cup.pk, transition="publish")
    stock_record_movement(actor=actor, product_id=red.pk, kind="receipt", quantity=3, reason="")
    # A movement may name the variant as "variant".
    moved = admin_api.post(
        "/api/v1/inventory/movements/",
        {"variant": blue.pk, "quantity": 4, "kind": "receipt", "reason": ""},
        format="json",
    )
    assert moved.status_code == 201, moved.content

    assert storefront.get(f"/api/v1/products/{red.pk}/stock/").json()["on_hand"] == 3
    summed = storefront.get(f"/api/v1/products/{cup.pk}/stock/").json()
    assert (summed["on_hand"], summed["available"], summed["in_stock"]) == (7, 7, True)
    batch = storefront.get("/api/v1/stock/", {"products": f"{cup.pk},{blue.pk}"}).json()
    assert [(s["product"], s["on_hand"]) for s in batch] == [(cup.pk, 7), (blue.pk, 4)]
    # Publishing moved the variants: their updated_at says so.
    red.refresh_from_db()
    assert red.updated_at > red.created_at


# --- What a storefront may not learn (a security read of the change) ----------------------


def test_ordering_a_draft_product_names_none_of_its_variants(storefront, shirt):
    # The shirt is a draft: its variants are nobody's business but staff's.
    response = storefront.post(
        "/api/v1/orders/",
        order({"product": shirt.pk, "quantity": 1}),
        format="json",
        HTTP_IDEMPOTENCY_KEY="draft-probe",
    )
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "product_unavailable"
    assert "SHIRT-" not in response.content.decode()
    assert all(v.pk != line.get("product") for v in shirt.variants.all() for line in body["lines"])


def test_storefronts_hear_stock_totals_never_where_they_changed(shirt, system_actor):
    from inventory.models import Location
    from pms_backend.events.broadcast import full_group, public_group, routes
    from pms_backend.events.models import Event

    publish(shirt, system_actor)
    main = (
        Location.objects.get(code="main") if Location.objects.filter(code="main").exists() else None
    )
    variant = shirt.variants.order_by("pk").first()
    receive_at(system_actor, variant.pk, 5, main)
    event = Event.objects.filter(type="stock.updated").latest("id")
    heard = {group: envelope["data"] for group, envelope in routes([event])}

    assert "locations" in heard[full_group("stock")]
    assert heard[public_group("stock")]["on_hand"] == 5
    assert "locations" not in heard[public_group("stock")]


def test_a_product_with_a_zero_row_of_its_own_shows_its_variants_stock(
    storefront, make_product, system_actor
):
    lamp = make_product("published", sku="LAMP-Z", name="Lamp")
    stock_record_movement(
        actor=system_actor, product_id=lamp.pk, kind="receipt", quantity=2, reason="count"
    )
    stock_record_movement(
        actor=system_actor, product_id=lamp.pk, kind="adjustment", quantity=-2, reason="to variants"
    )
    product_set_options(
        actor=system_actor, product_id=lamp.pk, options=[{"name": "Colour", "values": ["Black"]}]
    )
    (black,) = variants_generate(actor=system_actor, product_id=lamp.pk)
    receive_at(system_actor, black.pk, 4, None)

    one = storefront.get(f"/api/v1/products/{lamp.pk}/stock/").json()
    batch = storefront.get("/api/v1/stock/", {"products": str(lamp.pk)}).json()
    assert (one["on_hand"], one["in_stock"]) == (4, True)
    assert batch[0]["on_hand"] == 4
