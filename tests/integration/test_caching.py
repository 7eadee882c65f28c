"""Storefront reads: ETag / If-None-Match, and no stale page after a committed change."""

import pytest

from tests.integration.problem_json import assert_problem

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"


def names(response) -> list[str]:
    return [p["name"] for p in response.json()["results"]]


def test_storefront_get_has_an_etag_and_if_none_match_gives_304(storefront, make_product):
    make_product("published")

    first = storefront.get(PRODUCTS)
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = storefront.get(PRODUCTS, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag


def test_etag_is_stable_while_nothing_changes(storefront, make_product):
    product = make_product("published")

    for path in (PRODUCTS, f"{PRODUCTS}{product.pk}/"):
        first = storefront.get(path)
        second = storefront.get(path)
        assert first.status_code == second.status_code == 200
        assert first["ETag"] == second["ETag"]
        assert first.json() == second.json()
        assert storefront.get(path, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304


def test_a_stale_or_foreign_etag_gets_the_full_body(storefront, make_product):
    make_product("published")

    response = storefront.get(PRODUCTS, HTTP_IF_NONE_MATCH='"not-the-etag"')

    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_detail_etag_and_304(storefront, make_product):
    product = make_product("published")
    url = f"{PRODUCTS}{product.pk}/"

    etag = storefront.get(url)["ETag"]

    assert storefront.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_admin_reads_also_carry_an_etag(admin_api, make_product):
    make_product("draft")

    first = admin_api.get(PRODUCTS)

    assert first["ETag"]
    assert admin_api.get(PRODUCTS, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304


def test_committed_product_change_shows_at_once_with_a_new_etag(
    storefront, admin_api, make_product, django_capture_on_commit_callbacks
):
    product = make_product("published", name="Old name")
    before = storefront.get(PRODUCTS)
    assert names(before) == ["Old name"]
    etag = before["ETag"]
    assert storefront.get(PRODUCTS, HTTP_IF_NONE_MATCH=etag).status_code == 304  # cached

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.patch(f"{PRODUCTS}{product.pk}/", {"name": "New name"}, format="json")
    assert response.status_code == 200

    after = storefront.get(PRODUCTS, HTTP_IF_NONE_MATCH=etag)
    assert after.status_code == 200
    assert names(after) == ["New name"]
    assert after["ETag"] != etag
    detail = storefront.get(f"{PRODUCTS}{product.pk}/")
    assert detail.json()["name"] == "New name"


def test_newly_published_product_appears_at_once(
    storefront, admin_api, make_product, django_capture_on_commit_callbacks
):
    make_product("published", name="A first")
    draft = make_product("draft", name="B second")
    etag = storefront.get(PRODUCTS)["ETag"]

    with django_capture_on_commit_callbacks(execute=True):
        admin_api.post(f"{PRODUCTS}{draft.pk}/publish/")

    after = storefront.get(PRODUCTS)
    assert names(after) == ["A first", "B second"]
    assert after["ETag"] != etag


def test_archived_product_disappears_from_cached_detail(
    storefront, admin_api, make_product, django_capture_on_commit_callbacks
):
    product = make_product("published")
    url = f"{PRODUCTS}{product.pk}/"
    assert storefront.get(url).status_code == 200
    assert storefront.get(url).status_code == 200  # served from the cache now

    with django_capture_on_commit_callbacks(execute=True):
        admin_api.post(f"{url}archive/")

    assert_problem(storefront.get(url), 404)
    assert storefront.get(PRODUCTS).json()["count"] == 0


def test_product_created_through_the_service_also_refreshes_the_cache(
    storefront, make_product, django_capture_on_commit_callbacks
):
    make_product("published", name="One")
    assert storefront.get(PRODUCTS).json()["count"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        make_product("published", name="Two")

    assert names(storefront.get(PRODUCTS)) == ["One", "Two"]


def test_different_queries_are_cached_apart(storefront, make_product):
    make_product("published", name="Alpha", sku="A-1")
    make_product("published", name="Beta", sku="B-1")

    assert names(storefront.get(PRODUCTS, {"search": "alpha"})) == ["Alpha"]
    assert names(storefront.get(PRODUCTS, {"search": "beta"})) == ["Beta"]
    assert names(storefront.get(PRODUCTS, {"ordering": "-name"})) == ["Beta", "Alpha"]
    assert names(storefront.get(PRODUCTS)) == ["Alpha", "Beta"]


def test_cached_page_links_point_at_the_host_that_asked(storefront, make_product):
    for n in range(3):
        make_product("published", name=f"Item {n}")

    via_localhost = storefront.get(PRODUCTS, {"page_size": 1}, HTTP_HOST="localhost")
    via_testserver = storefront.get(PRODUCTS, {"page_size": 1})

    assert via_localhost.json()["next"].startswith("http://localhost/")
    assert via_testserver.json()["next"].startswith("http://testserver/")


def test_storefront_cache_never_leaks_drafts_seen_by_an_admin(storefront, admin_api, make_product):
    make_product("published", name="Public")
    make_product("draft", name="Secret")

    assert names(admin_api.get(PRODUCTS)) == ["Public", "Secret"]
    assert names(storefront.get(PRODUCTS)) == ["Public"]
    assert names(admin_api.get(PRODUCTS)) == ["Public", "Secret"]


def test_cached_reads_still_need_a_valid_key(storefront, make_product):
    from rest_framework.test import APIClient

    make_product("published")
    assert storefront.get(PRODUCTS).status_code == 200  # now cached

    assert_problem(APIClient().get(PRODUCTS), 401)


@pytest.mark.django_db(transaction=True)
def test_change_committed_for_real_refreshes_the_storefront(storefront, admin_api, make_product):
    product = make_product("published", name="Before commit")
    etag = storefront.get(PRODUCTS)["ETag"]

    admin_api.patch(f"{PRODUCTS}{product.pk}/", {"name": "After commit"}, format="json")

    after = storefront.get(PRODUCTS)
    assert names(after) == ["After commit"]
    assert after["ETag"] != etag
