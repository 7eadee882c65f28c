"""Product search (issue 17): ranked full-text with typo tolerance, filters and facets, the
search rows kept current by the write itself, bad input refused cleanly."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from catalog import search, selectors
from catalog.importing import product_import
from catalog.models import Product, ProductSearch
from catalog.services import (
    category_create,
    product_bulk_create,
    product_create,
    product_transition,
    product_update,
)
from catalog.variants import (
    product_set_options,
    variant_create,
    variant_delete,
    variant_update,
    variants_generate,
)
from inventory.models import InventoryMovement
from inventory.stocktake import stock_set_levels
from tests.integration.problem_json import assert_problem
from tests.integration.test_import_export_variants import csv_bytes, variant_row
from tests.integration.threads import until_another_waits_for_my_locks

# The search index is PostgreSQL's; what SQLite (development) does is tested at the end
# of this file, on whichever database the suite runs.
pytestmark = pytest.mark.django_db
postgres = pytest.mark.postgres

PRODUCTS = "/api/v1/products/"
FACETS = "/api/v1/products/facets/"


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [p["name"] for p in response.json()["results"]]


def words_of(product: Product) -> str:
    """The search row's document, as PostgreSQL keeps it."""
    return ProductSearch.objects.get(product=product).document


@pytest.fixture
def shop(system_actor, category):
    """A small published shop: a shirt in sizes and colours, a mug, a scarf whose
    description (not name) says shirt, and a draft."""
    other = category_create(actor=system_actor, name="Kitchenware")
    made = {}

    def add(key, status="published", **fields):
        fields.setdefault("price", Decimal("10.00"))
        fields.setdefault("category", category)
        product = product_create(actor=system_actor, **fields)
        made[key] = product
        return product

    shirt = add("shirt", sku="TEE-1", name="Cotton T-shirt", description="Soft and light.")
    product_set_options(
        actor=system_actor,
        product_id=shirt.pk,
        options=[{"name": "Size", "values": ["S", "M"]}, {"name": "Colour", "values": ["Navy"]}],
    )
    variants = variants_generate(actor=system_actor, product_id=shirt.pk)
    made["shirt_m"] = next(v for v in variants if v.option_values["Size"] == "M")
    variant_update(
        actor=system_actor, variant_id=made["shirt_m"].pk, data={"price": Decimal("25.00")}
    )
    add("mug", sku="MUG-1", name="Stoneware Mug", price=Decimal("8.00"), category=other)
    add(
        "scarf",
        sku="SCARF-1",
        name="Wool Scarf",
        description="Goes with any t-shirt.",
        price=Decimal("30.00"),
    )
    add("draft", status="draft", sku="TEE-DRAFT", name="Draft T-shirt")
    for key in ("shirt", "mug", "scarf"):
        product_transition(actor=system_actor, product_id=made[key].pk, transition="publish")
    made["other"] = other
    return made


# --- matching and ranking -------------------------------------------------------------


@postgres
def test_a_name_hit_ranks_above_a_description_hit(storefront, shop):
    assert names(storefront.get(PRODUCTS, {"search": "t-shirt"})) == [
        "Cotton T-shirt",
        "Wool Scarf",
    ]


@postgres
@pytest.mark.parametrize("typed", ["tshirt", "t-shrt", "Tshirt", "cotton tshirt"])
def test_typos_find_the_name(storefront, shop, typed):
    assert names(storefront.get(PRODUCTS, {"search": typed}))[0] == "Cotton T-shirt"


@postgres
def test_the_last_word_is_a_prefix(storefront, shop):
    assert names(storefront.get(PRODUCTS, {"search": "stonew"})) == ["Stoneware Mug"]
    assert names(storefront.get(PRODUCTS, {"search": "cotton t-sh"})) == ["Cotton T-shirt"]


@postgres
def test_variant_skus_and_option_values_find_their_product(storefront, shop):
    sku = shop["shirt_m"].sku
    assert names(storefront.get(PRODUCTS, {"search": sku})) == ["Cotton T-shirt"]
    assert names(storefront.get(PRODUCTS, {"search": "navy"})) == ["Cotton T-shirt"]


@postgres
def test_storefront_search_never_shows_drafts_staff_search_does(storefront, admin_api, shop):
    assert "Draft T-shirt" not in names(storefront.get(PRODUCTS, {"search": "t-shirt"}))
    assert "Draft T-shirt" in names(admin_api.get(PRODUCTS, {"search": "t-shirt"}))


@postgres
def test_explicit_ordering_beats_the_rank(storefront, shop):
    found = names(storefront.get(PRODUCTS, {"search": "t-shirt", "ordering": "-price"}))
    assert found == ["Wool Scarf", "Cotton T-shirt"]


@postgres
def test_unrelated_words_find_nothing(storefront, shop):
    body = storefront.get(PRODUCTS, {"search": "bicycle"}).json()
    assert body["count"] == 0
    assert body["results"] == []


# --- bad input ------------------------------------------------------------------------


@postgres
def test_a_search_of_ten_thousand_characters_is_a_400(storefront, admin_api, shop):
    for client in (storefront, admin_api):
        for path in (PRODUCTS, FACETS):
            response = client.get(path, {"search": "shirt " * 1667})
            body = assert_problem(response, 400, "validation_error")
            assert "search" in body["errors"]


@postgres
@pytest.mark.parametrize("typed", ["!!!", "-- ; '", "%_%", "   "])
def test_punctuation_alone_is_an_empty_answer(storefront, shop, typed):
    body = storefront.get(PRODUCTS, {"search": typed}).json()
    if typed.strip():
        assert body == {"count": 0, "next": None, "previous": None, "results": []}
    else:  # an empty box: the whole list
        assert body["count"] == 3


@postgres
@pytest.mark.parametrize(
    "params",
    [
        {"search": "shirt\x00"},
        {"option": "Size"},
        {"option": ":M"},
        {"option": "Size:"},
        {"price_min": "cheap"},
        {"price_min": "-1"},
        {"price_max": "NaN"},
        {"price_max": "1e400"},
        {"in_stock": "yes"},
        {"category": "shirts"},
    ],
)
def test_bad_filters_are_a_400_naming_them(storefront, shop, params):
    for path in (PRODUCTS, FACETS):
        body = assert_problem(storefront.get(path, params), 400, "validation_error")
        assert set(body["errors"]) == set(params)


# --- filters ----------------------------------------------------------------------------


@postgres
def test_filter_by_option_value_price_and_stock(storefront, admin_api, shop, system_actor):
    assert names(storefront.get(PRODUCTS, {"option": "Size:M"})) == ["Cotton T-shirt"]
    assert names(storefront.get(PRODUCTS, {"option": ["Size:M", "Size:XL"]})) == ["Cotton T-shirt"]
    assert names(storefront.get(PRODUCTS, {"option": ["Size:XL"]})) == []
    # A variant's price counts, not the product's own.
    assert names(storefront.get(PRODUCTS, {"price_min": "20", "price_max": "26"})) == [
        "Cotton T-shirt"
    ]
    assert names(storefront.get(PRODUCTS, {"price_max": "9"})) == ["Stoneware Mug"]
    assert names(storefront.get(PRODUCTS, {"in_stock": "true"})) == []
    stocked_shirts = {"in_stock": "true", "search": "shirt"}
    assert admin_api.get(PRODUCTS, stocked_shirts).json()["count"] == 0

    stock_set_levels(
        actor=system_actor,
        targets={shop["shirt_m"].pk: 3, shop["mug"].pk: 1},
        kind=InventoryMovement.Kind.RECEIPT,
        reason="delivery",
    )

    # Stock changes replace no catalog version: the filtered list is read afresh.
    assert names(storefront.get(PRODUCTS, {"in_stock": "true"})) == [
        "Cotton T-shirt",
        "Stoneware Mug",
    ]
    assert names(storefront.get(PRODUCTS, {"in_stock": "false"})) == ["Wool Scarf"]
    # Counted afresh too (a search's count is otherwise remembered per catalog version).
    assert admin_api.get(PRODUCTS, stocked_shirts).json()["count"] == 1
    assert names(admin_api.get(PRODUCTS, stocked_shirts)) == ["Cotton T-shirt"]


# --- facets -----------------------------------------------------------------------------


@postgres
def test_facets_count_what_the_list_shows(storefront, shop, system_actor, category):
    stock_set_levels(
        actor=system_actor,
        targets={shop["mug"].pk: 2},
        kind=InventoryMovement.Kind.RECEIPT,
        reason="delivery",
    )

    body = storefront.get(FACETS).json()

    assert body == {
        "count": 3,  # the draft is not the storefront's
        "categories": [
            {"id": category.pk, "name": category.name, "count": 2},
            {"id": shop["other"].pk, "name": "Kitchenware", "count": 1},
        ],
        "options": [
            {"name": "Colour", "values": [{"value": "Navy", "count": 1}]},
            {"name": "Size", "values": [{"value": "M", "count": 1}, {"value": "S", "count": 1}]},
        ],
        "price": {"min": "8.00", "max": "30.00"},
        "in_stock": 1,
    }

    searched = storefront.get(FACETS, {"search": "t-shirt", "option": "Colour:Navy"}).json()
    assert searched["count"] == 1
    assert searched["categories"] == [{"id": category.pk, "name": category.name, "count": 1}]
    assert searched["price"] == {"min": "10.00", "max": "25.00"}
    assert searched["in_stock"] == 0


@postgres
def test_facets_of_nothing_are_empty_and_well_formed(storefront, shop):
    body = storefront.get(FACETS, {"search": "!!!"}).json()
    assert body == {
        "count": 0,
        "categories": [],
        "options": [],
        "price": {"min": None, "max": None},
        "in_stock": 0,
    }


@postgres
def test_the_plain_fallback_counts_as_the_index_does(shop):
    """The SQLite path (any database runs it), against the PostgreSQL one."""
    listed = selectors.product_list(include_unpublished=False)
    indexed = search.product_facets(listed)
    totals, options = search._plain_totals_and_options(listed.order_by())
    assert totals == {
        "count": indexed["count"],
        "in_stock": indexed["in_stock"],
        "low": Decimal(indexed["price"]["min"]),
        "high": Decimal(indexed["price"]["max"]),
    }
    assert search._grouped(options) == indexed["options"]

    plain = search.plain_match(listed, search.search_words("t-shirt"))
    assert sorted(p.name for p in plain) == ["Cotton T-shirt", "Wool Scarf"]
    by_variant = search.plain_match(listed, search.search_words(shop["shirt_m"].sku))
    assert [p.name for p in by_variant] == ["Cotton T-shirt"]
    assert list(search.plain_match(listed, ["bicycle"])) == []


# --- the search rows are written with the change, in its transaction ---------------------


@postgres
def test_every_write_path_keeps_the_search_rows_current(system_actor, category):
    with transaction.atomic():
        lamp = product_create(
            actor=system_actor,
            sku="LAMP-1",
            name="Desk Lamp",
            price=Decimal("5"),
            category=category,
        )
        assert "'desk':1A" in words_of(lamp)  # before commit: the same transaction

        product_update(actor=system_actor, product_id=lamp.pk, data={"name": "Reading Light"})
        assert "'reading':1A" in words_of(lamp)
        assert "desk" not in words_of(lamp)

        product_set_options(
            actor=system_actor,
            product_id=lamp.pk,
            options=[{"name": "Finish", "values": ["Brass"]}],
        )
        variant = variant_create(
            actor=system_actor,
            product_id=lamp.pk,
            options={"Finish": "Brass"},
            sku="LAMP-1-BRASS",
            barcode="4006381333931",
            price=Decimal("12.00"),
        )
        row = ProductSearch.objects.get(product=lamp)
        assert "'brass'" in row.document and "'4006381333931'" in row.document
        assert row.option_values == [{"name": "Finish", "value": "Brass"}]
        assert (row.min_price, row.max_price) == (Decimal("12.00"), Decimal("12.00"))
        assert not ProductSearch.objects.filter(product=variant).exists()  # products only

        variant_update(actor=system_actor, variant_id=variant.pk, data={"sku": "LAMP-1-GOLD"})
        assert "'gold'" in words_of(lamp)
        product_set_options(
            actor=system_actor,
            product_id=lamp.pk,
            options=[{"name": "Finish", "values": ["Brass", "Chrome"]}],
        )
        variant_create(
            actor=system_actor,
            product_id=lamp.pk,
            options={"Finish": "Chrome"},
            sku="LAMP-1-CHROME",
            price=Decimal("14.00"),
        )
        variant_delete(actor=system_actor, variant_id=variant.pk)
        row = ProductSearch.objects.get(product=lamp)
        assert "gold" not in row.document and "'chrome'" in row.document
        assert row.option_values == [{"name": "Finish", "value": "Chrome"}]

        product_bulk_create(
            actor=system_actor,
            products=[
                Product(sku=f"BULK-{n}", name=f"Bulk Kettle {n}", slug=f"bulk-{n}", currency="EUR")
                for n in range(3)
            ],
        )
        assert ProductSearch.objects.filter(name__startswith="Bulk Kettle").count() == 3

        report = product_import(
            actor=system_actor,
            source=io.BytesIO(csv_bytes([variant_row("TEE-S", "S"), variant_row("TEE-M", "M")])),
            create_categories=True,
        )
        assert report.created
        tee = Product.objects.get(sku="TEE")
        row = ProductSearch.objects.get(product=tee)
        assert "'tee':1A" in row.document and "'m'" in row.document
        assert {pair["value"] for pair in row.option_values} == {"S", "M"}


@postgres
def test_a_write_rolled_back_leaves_no_search_row(system_actor, category):
    with pytest.raises(RuntimeError), transaction.atomic():
        product_create(
            actor=system_actor, sku="GONE-1", name="Ghost", price=Decimal("5"), category=category
        )
        raise RuntimeError("rolled back")
    assert not ProductSearch.objects.filter(name="Ghost").exists()


@postgres
def test_the_demo_seed_is_searchable(system_actor):
    from django.core.management import call_command

    call_command("seed_database", "--products", "10", "--catalog-only", "--no-progress")
    listed = Product.objects.filter(parent__isnull=True)
    assert ProductSearch.objects.count() == listed.count() == 10
    with_variants = listed.filter(variants__isnull=False).distinct().first()
    row = ProductSearch.objects.get(product=with_variants)
    assert row.option_values
    assert all(v.sku.lower().split("-")[-1] in row.document for v in with_variants.variants.all())


@postgres
def test_a_cached_storefront_search_sees_a_rename(
    storefront, admin_api, shop, system_actor, django_capture_on_commit_callbacks
):
    assert names(storefront.get(PRODUCTS, {"search": "kettle"})) == []
    assert storefront.get(PRODUCTS, {"search": "kettle"})["X-Cache"] == "hit"
    assert admin_api.get(PRODUCTS, {"search": "kettle"}).json()["count"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        product_update(
            actor=system_actor, product_id=shop["mug"].pk, data={"name": "Stoneware Kettle"}
        )
    assert names(storefront.get(PRODUCTS, {"search": "kettle"})) == ["Stoneware Kettle"]
    # The count staff see is remembered per catalog version, which the rename replaced.
    assert admin_api.get(PRODUCTS, {"search": "kettle"}).json()["count"] == 1


# --- query counts -----------------------------------------------------------------------


@postgres
def test_search_and_facets_query_counts_do_not_grow_with_the_rows(
    admin_api, system_actor, category, django_capture_on_commit_callbacks
):
    def queries(path: str, params: dict, found: int) -> int:
        admin_api.get(path, params)  # warm up: key lookup and last-used stamp
        with CaptureQueriesContext(connection) as ctx:
            response = admin_api.get(path, params)
        assert response.status_code == 200, response.content
        # Counted over what was found: a search that found nothing would cost the same.
        assert response.json()["count"] == found, response.content
        return len(ctx.captured_queries)

    def make(n: int, start: int) -> None:
        # As committed: the catalog's version moves, and remembered counts with it.
        with django_capture_on_commit_callbacks(execute=True):
            _make(n, start)

    def _make(n: int, start: int) -> None:
        for i in range(start, start + n):
            product = product_create(
                actor=system_actor,
                sku=f"Q-{i}",
                name=f"Quilted Jacket {i}",
                price=Decimal("40"),
                category=category,
            )
            product_set_options(
                actor=system_actor,
                product_id=product.pk,
                options=[{"name": "Size", "values": ["S", "M"]}],
            )
            variants_generate(actor=system_actor, product_id=product.pk)

    list_params = {"search": "quilted jacket", "option": "Size:M", "price_max": "50"}
    facet_params = {**list_params, "in_stock": "false"}
    make(3, 0)
    small = queries(PRODUCTS, list_params, 3), queries(FACETS, facet_params, 3)
    make(30, 3)
    large = queries(PRODUCTS, list_params, 33), queries(FACETS, facet_params, 33)
    assert small == large, (small, large)
    # list: threshold, count, page (+ the key's); facets: threshold, totals, categories
    # with their names (2), options (+ the key's).
    assert large[0] <= 5
    assert large[1] <= 7


# --- the admin ----------------------------------------------------------------------------


@postgres
def test_the_admin_product_search_is_the_same_search(admin_client, shop):
    def listed(params) -> list[str]:
        response = admin_client.get("/admin/catalog/product/", params)
        assert response.status_code == 200
        return [p.name for p in response.context["cl"].result_list]

    # Ranked (the draft is staff's too), typos forgiven, variants' SKUs found.
    assert listed({"q": "t-shirt"})[-1] == "Wool Scarf"
    assert listed({"q": "tshirt"})[0] in ("Cotton T-shirt", "Draft T-shirt")
    assert listed({"q": shop["shirt_m"].sku}) == ["Cotton T-shirt"]
    # A column's sort beats the rank.
    assert listed({"q": "t-shirt", "o": "-4"})[0] == "Wool Scarf"
    assert listed({"q": "!!!"}) == []


# --- any database: the same answers from the index (PostgreSQL) or the plain match (SQLite)


def test_search_and_facets_answer_on_any_database(storefront, shop):
    assert sorted(names(storefront.get(PRODUCTS, {"search": "t-shirt"}))) == [
        "Cotton T-shirt",
        "Wool Scarf",
    ]
    assert names(storefront.get(PRODUCTS, {"search": shop["shirt_m"].sku})) == ["Cotton T-shirt"]
    assert names(storefront.get(PRODUCTS, {"search": "!!!"})) == []
    assert names(storefront.get(PRODUCTS, {"option": "Size:M", "price_min": "20"})) == [
        "Cotton T-shirt"
    ]
    body = storefront.get(FACETS, {"search": "t-shirt"}).json()
    assert body["count"] == 2
    assert body["price"] == {"min": "10.00", "max": "30.00"}
    assert body["options"][1] == {
        "name": "Size",
        "values": [{"value": "M", "count": 1}, {"value": "S", "count": 1}],
    }
    assert_problem(storefront.get(PRODUCTS, {"search": "x" * 10_000}), 400, "validation_error")


# --- two writers of one product ---------------------------------------------------------


@postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_of_one_product_both_reach_its_search_row(system_actor, category):
    """A rename and a variant's new SKU, committed by two transactions at once (plain
    UPDATEs, which lock no product row first): the search row has both."""
    lamp = product_create(
        actor=system_actor, sku="LAMP-1", name="Desk Lamp", price=Decimal("5"), category=category
    )
    product_set_options(
        actor=system_actor, product_id=lamp.pk, options=[{"name": "Finish", "values": ["Brass"]}]
    )
    variant = variant_create(
        actor=system_actor, product_id=lamp.pk, options={"Finish": "Brass"}, sku="LAMP-1-BRASS"
    )
    renamed = threading.Event()

    def rename() -> None:
        try:
            with transaction.atomic():
                Product.objects.filter(pk=lamp.pk).update(name="Reading Light")
                renamed.set()
                until_another_waits_for_my_locks()  # the other writer reached the search row
        finally:
            connection.close()

    def new_sku() -> None:
        try:
            assert renamed.wait(10)
            with transaction.atomic():
                Product.objects.filter(pk=variant.pk).update(sku="LAMP-1-GOLD")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(rename), pool.submit(new_sku)]:
            future.result(timeout=30)

    row = ProductSearch.objects.get(product=lamp)
    assert row.name == "Reading Light"
    assert "'reading':1A" in row.document
    assert "'gold'" in row.document
