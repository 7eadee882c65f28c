"""The production web process, for real: ``scripts/start.sh`` (uvicorn, production
settings) serving the storefront over HTTP from the test database."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

PROBLEM = "application/problem+json"


@pytest.fixture
def catalog(transactional_db, make_product, make_key):
    """A published and a draft product in one category, and a storefront key (committed)."""
    published = make_product("published", sku="E2E-PUB-1", name="Enamel Mug")
    draft = make_product("draft", sku="E2E-DRAFT-1", name="Secret Mug")
    return {"published": published, "draft": draft, "key": make_key("storefront")}


def test_storefront_reads_products_over_http(server_process, catalog):
    published = catalog["published"]
    with server_process.client(catalog["key"]) as http:
        listing = http.get("/api/v1/products/", params={"page_size": 20})
        assert listing.status_code == 200, listing.text
        assert listing.headers["content-type"].startswith("application/json")
        body = listing.json()
        assert body["count"] == 1
        assert body["previous"] is None
        assert body["next"] is None
        [item] = body["results"]
        assert item["id"] == published.pk
        assert item["sku"] == "E2E-PUB-1"
        assert item["name"] == "Enamel Mug"
        assert item["status"] == "published"
        assert item["price"] == "19.90"
        assert item["category"] == published.category_id

        detail = http.get(f"/api/v1/products/{published.pk}/")
        assert detail.status_code == 200, detail.text
        # The page is the list's entry plus the product's variants: a product without
        # variants lists itself, with what is available of it.
        page = detail.json()
        [itself] = page.pop("variants")
        assert page == item
        assert (itself["id"], itself["sku"], itself["available"]) == (published.pk, "E2E-PUB-1", 0)
        etag = detail.headers.get("ETag")
        assert etag, "the detail carries an ETag"

        again = http.get(f"/api/v1/products/{published.pk}/", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""

        listing_etag = listing.headers.get("ETag")
        assert listing_etag
        unchanged = http.get(
            "/api/v1/products/",
            params={"page_size": 20},
            headers={"If-None-Match": listing_etag},
        )
        assert unchanged.status_code == 304

        hidden = http.get(f"/api/v1/products/{catalog['draft'].pk}/")
        assert hidden.status_code == 404
        assert hidden.headers["content-type"].startswith(PROBLEM)
        assert hidden.json()["status"] == 404


def test_no_key_is_401_problem_json(server_process, catalog):
    with server_process.client() as http:
        response = http.get("/api/v1/products/")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == 401
    assert problem["code"] == "not_authenticated"
    assert {"type", "title", "detail"} <= problem.keys()


def test_probes_answer(server_process, transactional_db):
    with server_process.client() as http:
        live = http.get("/health/live")
        ready = http.get("/health/ready")
    assert live.status_code == 200
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
    }
    assert ready.json()["backends"]["database"] == "postgresql"
