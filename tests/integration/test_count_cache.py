"""Large product lists remember their total count per catalog version, never longer."""

import pytest

from catalog import cache as catalog_cache

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"


@pytest.fixture
def low_threshold(monkeypatch):
    """Treat a list of 2 or more products as large (remembered)."""
    monkeypatch.setattr(catalog_cache, "COUNT_CACHE_MIN_ROWS", 2)
    monkeypatch.setattr(catalog_cache, "_counted_small", set())


def count(client, **params) -> int:
    response = client.get(PRODUCTS, params)
    assert response.status_code == 200, response.content
    return response.json()["count"]


def test_a_large_count_is_remembered_until_the_catalog_changes(
    admin_api, make_product, low_threshold, django_capture_on_commit_callbacks
):
    make_product("draft")
    make_product("draft")
    assert count(admin_api) == 2

    # Written inside the test's transaction, so no commit and no new catalog version:
    # the remembered count stands (which shows it is remembered).
    make_product("draft")
    assert count(admin_api) == 2

    # ...and a committed change through the services replaces the version: counted afresh.
    with django_capture_on_commit_callbacks(execute=True):
        make_product("draft")
    assert count(admin_api) == 4


def test_each_filter_has_its_own_count(admin_api, make_product, low_threshold):
    make_product("draft")
    make_product("published")
    make_product("published")

    assert count(admin_api) == 3
    assert count(admin_api, status="published") == 2
    assert count(admin_api, status="draft") == 1


def test_a_small_count_is_always_fresh(admin_api, make_product):
    make_product("draft")
    assert count(admin_api) == 1

    make_product("draft")  # inside the test transaction: the catalog version stays
    assert count(admin_api) == 2


def test_without_a_cache_version_the_count_is_exact(
    admin_api, make_product, low_threshold, monkeypatch
):
    monkeypatch.setattr(catalog_cache, "catalog_cache_version", lambda: None)
    make_product("draft")
    make_product("draft")
    assert count(admin_api) == 2
    make_product("draft")
    assert count(admin_api) == 3
