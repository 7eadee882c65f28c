"""Who may call the API: API keys (two headers), scopes, and staff sessions with CSRF."""

from datetime import timedelta

import pytest
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditLog
from catalog.models import Product
from pms_backend.apikeys.models import ApiKey
from tests.integration.problem_json import assert_problem, leaves_no_trace

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
AUDIT = "/api/v1/audit/"


def prefix_of(raw_key: str) -> str:
    return raw_key.split("_")[1]


def with_header(**headers) -> APIClient:
    client = APIClient()
    client.credentials(**headers)
    return client


# --- Missing and bad credentials --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", PRODUCTS), ("post", PRODUCTS), ("get", "/api/v1/categories/"), ("get", AUDIT)],
)
def test_no_credentials_is_401_with_www_authenticate(method, path, make_product):
    make_product("published")

    with leaves_no_trace():
        response = getattr(APIClient(), method)(path, {}, format="json")

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Api-Key")


@pytest.mark.parametrize(
    "header",
    [
        "Api-Key nonsense",
        "Api-Key pms_short_secret",
        "Api-Key ",
        "Api-Key pms__" + "a" * 43,
        "Api-Key " + "pms_abcdefgh_" + "a" * 200,
    ],
    ids=["garbage", "short-secret", "empty", "empty-prefix", "too-long"],
)
def test_malformed_key_is_401(header, make_product):
    make_product("published")

    response = with_header(HTTP_AUTHORIZATION=header).get(PRODUCTS)

    assert_problem(response, 401, "authentication_failed")
    assert "WWW-Authenticate" in response


def test_unknown_but_well_formed_key_is_401(db):
    raw = "pms_zzzzzzzz_" + "A" * 43

    response = with_header(HTTP_AUTHORIZATION=f"Api-Key {raw}").get(PRODUCTS)

    assert_problem(response, 401, "authentication_failed")


def test_known_prefix_with_a_wrong_secret_is_401(make_key):
    raw = make_key("admin")
    forged = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")

    response = with_header(HTTP_AUTHORIZATION=f"Api-Key {forged}").get(PRODUCTS)

    assert_problem(response, 401, "authentication_failed")


def test_a_valid_key_under_another_scheme_is_not_accepted(make_key):
    raw = make_key("admin")

    response = with_header(HTTP_AUTHORIZATION=f"Bearer {raw}").get(PRODUCTS)

    assert_problem(response, 401)


def test_revoked_key_is_refused_on_the_very_next_request(make_key, system_actor):
    from pms_backend.apikeys.services import api_key_revoke

    raw = make_key("storefront")
    client = with_header(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.get(PRODUCTS).status_code == 200  # the key is now cached

    api_key_revoke(prefix=prefix_of(raw), actor=system_actor)

    assert_problem(client.get(PRODUCTS), 401, "authentication_failed")
    assert AuditLog.objects.filter(action="api_key.revoked").count() == 1


def test_revoked_key_is_refused_after_commit_too(
    make_key, system_actor, django_capture_on_commit_callbacks
):
    from pms_backend.apikeys.services import api_key_revoke

    raw = make_key("storefront")
    client = with_header(HTTP_X_API_KEY=raw)
    assert client.get(PRODUCTS).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(prefix=prefix_of(raw), actor=system_actor)

    for _ in range(3):
        assert_problem(client.get(PRODUCTS), 401)


def test_key_is_refused_once_its_expiry_passes(make_key, monkeypatch):
    raw = make_key("storefront", expires_at=timezone.now() + timedelta(hours=1))
    client = with_header(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.get(PRODUCTS).status_code == 200  # the key is now cached

    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(hours=1, seconds=1))

    assert_problem(client.get(PRODUCTS), 401, "authentication_failed")


def test_key_expired_before_its_first_use_is_401(make_key):
    raw = make_key("storefront", expires_at=timezone.now() + timedelta(days=1))
    ApiKey.objects.filter(prefix=prefix_of(raw)).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    response = with_header(HTTP_AUTHORIZATION=f"Api-Key {raw}").get(PRODUCTS)

    assert_problem(response, 401)


def test_key_with_future_expiry_works(make_key):
    raw = make_key("storefront", expires_at=timezone.now() + timedelta(hours=1))

    assert with_header(HTTP_AUTHORIZATION=f"Api-Key {raw}").get(PRODUCTS).status_code == 200


def test_x_api_key_header_works_for_reads_and_writes(make_key, category):
    raw = make_key("admin")
    client = with_header(HTTP_X_API_KEY=raw)

    assert client.get(PRODUCTS).status_code == 200
    response = client.post(
        PRODUCTS, {"sku": "XK-1", "name": "Via X-API-Key", "price": "1.00"}, format="json"
    )
    assert response.status_code == 201
    entry = AuditLog.objects.get(action="product.created", object_id=str(response.json()["id"]))
    assert entry.actor_id == prefix_of(raw)


def test_authorization_scheme_is_case_insensitive(make_key):
    raw = make_key("storefront")

    assert with_header(HTTP_AUTHORIZATION=f"api-key {raw}").get(PRODUCTS).status_code == 200


# --- Scopes -----------------------------------------------------------------------------


def test_storefront_key_cannot_create_products(storefront, category):
    with leaves_no_trace():
        response = storefront.post(
            PRODUCTS, {"sku": "NOPE-1", "name": "Nope", "price": "1.00"}, format="json"
        )

    body = assert_problem(response, 403, "permission_denied")
    assert "catalog:write" in body["detail"]
    assert not Product.objects.filter(sku="NOPE-1").exists()


def test_storefront_key_cannot_patch_products(storefront, make_product):
    product = make_product("published", name="Original")

    with leaves_no_trace():
        response = storefront.patch(f"{PRODUCTS}{product.pk}/", {"name": "Hacked"}, format="json")

    assert_problem(response, 403)
    product.refresh_from_db()
    assert product.name == "Original"


def test_storefront_key_cannot_read_the_audit_log(storefront):
    body = assert_problem(storefront.get(AUDIT), 403, "permission_denied")

    assert "audit:read" in body["detail"]


def test_audit_read_scope_alone_reads_the_audit_log_but_not_the_catalog(client_for):
    auditor = client_for("audit:read")

    assert auditor.get(AUDIT).status_code == 200
    assert_problem(auditor.get(PRODUCTS), 403)


def test_catalog_write_without_catalog_read_can_write(client_for):
    writer = client_for("catalog:write")

    response = writer.post(
        PRODUCTS, {"sku": "W-1", "name": "Written", "price": "2.00"}, format="json"
    )

    assert response.status_code == 201


def test_scope_is_checked_before_the_object_is_looked_up(storefront, make_product):
    product = make_product("draft")

    # 403 for both: a caller without the scope learns nothing about which ids exist.
    assert_problem(storefront.post(f"{PRODUCTS}{product.pk}/publish/"), 403)
    assert_problem(storefront.post(f"{PRODUCTS}999999/publish/"), 403)


# --- Staff sessions ---------------------------------------------------------------------


@pytest.fixture
def staff_session(staff_user):
    client = APIClient(enforce_csrf_checks=True)
    # A password sign-in passes django-axes' lockout check, which needs a request.
    assert client.login(request=HttpRequest(), username="boss", password="correct horse battery")
    return client


def _csrf_token(client: APIClient) -> str:
    """Fetch a page that embeds a CSRF token, as the admin's own pages would."""
    response = client.get("/admin/")
    assert response.status_code == 200
    return client.cookies["csrftoken"].value


def test_staff_session_reads_everything(staff_session, make_product):
    make_product("draft")
    make_product("published")

    response = staff_session.get(PRODUCTS)

    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_staff_session_post_without_csrf_token_is_403(staff_session, category):
    with leaves_no_trace():
        response = staff_session.post(
            PRODUCTS, {"sku": "CSRF-1", "name": "Forged", "price": "1.00"}, format="json"
        )

    body = assert_problem(response, 403, "permission_denied")
    assert "CSRF" in body["detail"]


def test_staff_session_transition_without_csrf_token_is_403(staff_session, make_product):
    product = make_product("draft")

    with leaves_no_trace():
        assert_problem(staff_session.post(f"{PRODUCTS}{product.pk}/publish/"), 403)

    product.refresh_from_db()
    assert product.status == "draft"


def test_staff_session_post_with_csrf_token_succeeds_and_is_audited_as_the_user(
    staff_session, staff_user, category
):
    token = _csrf_token(staff_session)

    response = staff_session.post(
        PRODUCTS,
        {"sku": "STAFF-1", "name": "By staff", "price": "1.00"},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 201, response.content
    entry = AuditLog.objects.get(action="product.created", object_id=str(response.json()["id"]))
    assert entry.actor_type == "user"
    assert entry.actor_id == str(staff_user.pk)


def test_non_staff_session_is_not_accepted(db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(username="shopper", password="another long secret")
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(request=HttpRequest(), username="shopper", password="another long secret")

    assert_problem(client.get(PRODUCTS), 401)


def test_staff_without_catalog_permission_cannot_write(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    intern = get_user_model().objects.create_user(
        username="intern", password="yet another secret", is_staff=True
    )
    client = APIClient()
    assert client.login(request=HttpRequest(), username="intern", password="yet another secret")
    assert_problem(client.get(PRODUCTS), 403)  # the admin would not show products either

    intern.user_permissions.add(Permission.objects.get(codename="view_product"))
    assert client.get(PRODUCTS).status_code == 200  # catalog:read: the admin's view permission
    with leaves_no_trace():
        response = client.post(
            PRODUCTS, {"sku": "INT-1", "name": "x", "price": "1.00"}, format="json"
        )
    assert_problem(response, 403)
    assert_problem(client.get(AUDIT), 403)
