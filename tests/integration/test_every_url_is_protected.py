"""Walk the URL resolver: every endpoint refuses missing, malformed, revoked, expired and
under-scoped credentials. A new endpoint without protection fails this test."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from rest_framework.test import APIClient

from audit.actors import Actor
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.scopes import ALL_SCOPES
from pms_backend.apikeys.services import api_key_revoke

pytestmark = pytest.mark.django_db

# Public on purpose: the root (a redirect to the docs), probes, the constant ceiling
# endpoint, the schema and its docs.
PUBLIC = {"/", "/health/live", "/health/ready", "/api/v1/ping/", "/api/schema/", "/api/docs/"}
# Scrapers only: callers from PMS_METRICS_ALLOWED_NETWORKS, or with the bearer token.
SCRAPERS_ONLY = {"/metrics"}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _concrete(pattern: str) -> str:
    path = pattern.replace("^", "").replace("$", "")
    path = re.sub(r"\(\?P<format>[^)]*\)", "", path)
    # A named group whose pattern starts with a literal prefix ("RMA-…", "TR-…") gets it.
    path = re.sub(r"\(\?P<\w+>([A-Z]+-)?[^)]*\)", lambda m: (m.group(1) or "") + "1", path)
    path = re.sub(r"<uuid:\w+>", str(uuid.uuid4()), path)
    path = re.sub(r"<(?:int:)?\w+>", "1", path)
    path = re.sub(r"<path:\w+>", "1", path)
    return "/" + path.replace("\\.", ".").replace("\\", "")


def api_endpoints() -> list[tuple[str, str, str]]:
    """Return ``(path, method, required scope)`` for every API endpoint and method."""
    found = []
    for pattern in _walk(get_resolver().url_patterns):
        path = _concrete(pattern)
        if not path.startswith("/api/v1/") or path in PUBLIC or "." in path.rsplit("/", 1)[-1]:
            continue
        func = resolve(path).func
        view = func.cls
        actions = getattr(func, "actions", None) or {
            m: m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)
        }
        for method, action in actions.items():
            scope = view.required_scopes.get(action) or view.required_scopes.get(method.upper())
            assert scope, f"{view.__name__}.{action} ({path}) declares no scope"
            found.append((path, method, scope))
    return found


ENDPOINTS = sorted(set(api_endpoints()))


def test_the_walk_finds_the_api():
    paths = {p for p, _, _ in ENDPOINTS}
    assert "/api/v1/products/" in paths and "/api/v1/orders/" in paths
    assert len(ENDPOINTS) > 20


def _call(client, path, method):
    return getattr(client, method)(path, {}, format="json")


@pytest.mark.parametrize(("path", "method", "scope"), ENDPOINTS)
def test_endpoint_refuses_bad_credentials(path, method, scope, make_key):
    anonymous = APIClient()
    assert _call(anonymous, path, method).status_code == 401

    malformed = APIClient(HTTP_AUTHORIZATION="Api-Key not-a-key")
    assert _call(malformed, path, method).status_code == 401

    revoked_raw = make_key("admin", name="revoked")
    api_key_revoke(prefix=revoked_raw.split("_")[1], actor=Actor.system("tests"))
    assert (
        _call(APIClient(HTTP_AUTHORIZATION=f"Api-Key {revoked_raw}"), path, method).status_code
        == 401
    )

    expired_raw = make_key("admin", name="expired")
    ApiKey.objects.filter(prefix=expired_raw.split("_")[1]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    cache.delete(f"apikey:{expired_raw.split('_')[1]}")
    assert (
        _call(APIClient(HTTP_AUTHORIZATION=f"Api-Key {expired_raw}"), path, method).status_code
        == 401
    )

    others = ",".join(s for s in ALL_SCOPES if s != scope)
    wrong = APIClient(HTTP_AUTHORIZATION=f"Api-Key {make_key(others, name='wrong scope')}")
    response = _call(wrong, path, method)
    assert response.status_code == 403, (path, method, response.status_code)
    assert response["Content-Type"] == "application/problem+json"


def test_admin_pages_need_a_staff_login():
    client = APIClient()
    for pattern in _walk(get_resolver().url_patterns):
        path = _concrete(pattern)
        if not path.startswith("/admin/") or path in ("/admin/login/", "/admin/logout/"):
            continue
        response = client.get(path)
        assert response.status_code in (302, 404), (path, response.status_code)
        if response.status_code == 302:
            assert "/admin/login/" in response["Location"], path


@pytest.mark.parametrize("path", sorted(SCRAPERS_ONLY))
def test_scraper_endpoints_refuse_outside_callers(path, settings, make_key):
    outsider = APIClient(REMOTE_ADDR="203.0.113.50")
    assert outsider.get(path).status_code == 403
    # An API key, even one holding every scope, is no scraper credential.
    assert outsider.get(path, HTTP_AUTHORIZATION=f"Api-Key {make_key('admin')}").status_code == 403

    settings.PMS_METRICS_TOKEN = "a-scrape-token-of-some-length"
    assert outsider.get(path).status_code == 401
    assert outsider.get(path, HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 401
    assert (
        outsider.get(path, HTTP_AUTHORIZATION="Bearer a-scrape-token-of-some-length").status_code
        == 200
    )


def test_every_url_is_classified():
    for pattern in _walk(get_resolver().url_patterns):
        path = _concrete(pattern)
        assert (
            path.startswith(("/admin/", "/api/v1/", "/static/"))
            or path in PUBLIC
            or path in SCRAPERS_ONLY
            or path.rstrip("/") + "/" in PUBLIC
        ), f"{path} is neither protected nor listed as public"


def test_options_describes_an_endpoint_to_any_valid_key_but_not_to_strangers(make_key):
    storefront = APIClient(HTTP_AUTHORIZATION=f"Api-Key {make_key('storefront')}")
    assert storefront.options("/api/v1/products/").status_code == 200
    assert APIClient().options("/api/v1/products/").status_code == 401
