import json

import pytest
from django.test import override_settings

from audit.models import AuditLog
from catalog.models import Product

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("steady_rate_windows")]


def limits(**overrides):
    from django.conf import settings

    return override_settings(PMS_RATE_LIMITS={**settings.PMS_RATE_LIMITS, **overrides})


def test_every_api_response_carries_ratelimit_headers(storefront):
    response = storefront.get("/api/v1/products/")
    assert int(response["RateLimit-Limit"]) > 0
    assert 0 <= int(response["RateLimit-Remaining"]) < int(response["RateLimit-Limit"])
    assert int(response["RateLimit-Reset"]) > 0


def test_a_key_over_its_limit_gets_429_with_retry_after(storefront):
    with limits(key="3/minute"):
        codes = [storefront.get("/api/v1/products/").status_code for _ in range(4)]
        refused = storefront.get("/api/v1/products/")
    assert codes == [200, 200, 200, 429]
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1
    assert refused["RateLimit-Remaining"] == "0"


def test_order_placement_has_its_own_stricter_budget(storefront, make_product, receive):
    from tests.conftest import order_body

    product = make_product("published")
    receive(product, 50)
    with limits(orders="2/minute"):
        codes = [
            storefront.post(
                "/api/v1/orders/",
                order_body((product, 1)),
                format="json",
                HTTP_IDEMPOTENCY_KEY=f"k{i}",
            ).status_code
            for i in range(3)
        ]
        # Reading is still allowed: only placement is limited this tightly.
        read = storefront.get("/api/v1/products/")
    assert codes == [201, 201, 429]
    assert read.status_code == 200


def test_spoofed_forwarded_for_does_not_dodge_the_ip_limit(client):
    with limits(ip="3/minute"):
        codes = [
            client.get("/api/v1/ping/", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code
            for i in range(4)
        ]
    assert codes == [200, 200, 200, 429]


def test_key_guessing_is_locked_out_and_audited(client, make_key):
    good = make_key("storefront")
    with limits(auth_failures="3/10m"):
        guesses = [
            client.get("/api/v1/products/", HTTP_AUTHORIZATION=f"Api-Key pms_abcdefgh_{'x' * 43}")
            for _ in range(4)
        ]
        # Past the limit guesses are refused, but the right key is still served.
        served = client.get("/api/v1/products/", HTTP_AUTHORIZATION=f"Api-Key {good}")
    assert [g.status_code for g in guesses] == [401, 401, 401, 429]
    assert served.status_code == 200
    actions = list(
        AuditLog.objects.filter(action__startswith="auth.").values_list("action", flat=True)
    )
    assert sorted(actions) == ["auth.failed", "auth.locked_out"]


def test_an_oversized_body_is_refused_with_413(admin_api, category, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = {"sku": "BIG-1", "name": "x", "price": "1.00", "description": "y" * 20_000}
    response = admin_api.post("/api/v1/products/", body, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not Product.objects.filter(sku="BIG-1").exists()


def test_json_nested_too_deep_is_a_400_not_a_500(admin_api):
    body = "[" * 100_000 + "]" * 100_000
    response = admin_api.post("/api/v1/products/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


@override_settings(CORS_ALLOWED_ORIGINS=["https://shop.example"])
def test_cors_preflight_answers_the_storefront_origin_only(client):
    preflight = client.options(
        "/api/v1/products/",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )
    assert preflight["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "authorization" in preflight["Access-Control-Allow-Headers"]
    other = client.options(
        "/api/v1/products/",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )
    assert "Access-Control-Allow-Origin" not in other


@override_settings(CORS_ALLOWED_ORIGINS=["https://shop.example"])
def test_cors_exposes_ratelimit_and_etag_headers(storefront):
    response = storefront.get("/api/v1/products/", HTTP_ORIGIN="https://shop.example")
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"etag", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= exposed
    assert (
        response.get("Access-Control-Allow-Credentials") != "true"
        or response["Access-Control-Allow-Origin"] != "*"
    )


def test_problem_bodies_never_echo_the_presented_key(client):
    secret = "pms_abcdefgh_" + "s3cr3t" * 8
    response = client.get("/api/v1/products/", HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert response.status_code == 401
    assert "s3cr3t" not in json.dumps(response.json())
