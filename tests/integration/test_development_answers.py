"""Development answers like production: an unknown API route is a problem+json 404 (not
Django's HTML debug page), and the site's root and the admin's "View site" lead to the
API docs."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-route/", "/api/v1/", "/api/nothing-here", "/api/v1/products/x/y/"]
)
def test_an_unknown_api_route_is_a_problem_404(client, debug, path):
    response = client.get(path, HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
    assert "/api/docs/" in response.json()["detail"]  # where the banner's reader goes next
    assert b"<html" not in response.content.lower()


def test_a_route_missing_its_slash_keeps_the_problem_naming_the_right_path(client, debug):
    response = client.get("/api/schema")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert "/api/schema/" in response.json()["detail"]


def test_a_missing_api_object_keeps_its_own_problem(make_key, debug):
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {make_key('storefront')}")

    response = client.get("/api/v1/products/999999/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_the_root_leads_to_the_api_docs(client, debug):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/api/docs/"
    assert client.get(response["Location"]).status_code == 200


def test_view_site_in_the_admin_leads_to_the_api_docs(admin_client):
    page = admin_client.get("/admin/").content.decode()

    assert 'href="/api/docs/"' in page
    assert "View site" in page
