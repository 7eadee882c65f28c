"""Staff screens for API keys and the audit log."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core import serializers
from django.db import connection
from rest_framework.test import APIClient

from audit.models import AuditLog
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.services import hash_key

pytestmark = pytest.mark.django_db

KEYS = "/admin/apikeys/apikey/"
AUDIT = "/admin/audit/auditlog/"
RAW_KEY = re.compile(r"pms_([a-z2-7]{8})_([A-Za-z0-9_-]{43})")


def api(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def create_key_in_admin(client, name="Storefront EU", scopes=("storefront",), days=""):
    created = client.post(
        f"{KEYS}add/", {"name": name, "scope_choices": list(scopes), "expires_in_days": days}
    )
    # POST-redirect-GET: the key is shown by the page the creation redirects to.
    assert created.status_code == 302, created.content[:2000]
    assert "/created/" in created["Location"]
    response = client.get(created["Location"])
    assert response.status_code == 200, response.content[:2000]
    found = RAW_KEY.findall(response.content.decode())
    assert len(found) == 1, "the result page shows the new key exactly once"
    prefix, secret = found[0]
    return response, f"pms_{prefix}_{secret}", prefix, secret


def everything_stored() -> str:
    """Return every row of every table as text, sessions decoded, to search for secrets."""
    tables = set(connection.introspection.table_names())
    dumps = [
        serializers.serialize("json", model._default_manager.all())
        for model in apps.get_models()
        if model._meta.db_table in tables
    ]
    dumps += [str(s.get_decoded()) for s in Session.objects.all()]
    return "\n".join(dumps)


# --- API keys ---------------------------------------------------------------------------


def test_creating_a_key_shows_it_once_and_stores_only_its_hash(admin_client, staff_user):
    response, raw, prefix, secret = create_key_in_admin(admin_client)

    assert "shown only this once" in response.content.decode()
    key = ApiKey.objects.get(prefix=prefix)
    assert key.name == "Storefront EU"
    assert key.scopes == sorted(["catalog:read", "inventory:read", "orders:read", "orders:write"])
    assert key.created_by == staff_user
    assert key.key_hash == hash_key(raw)
    stored = everything_stored()
    assert secret not in stored
    assert raw not in stored
    assert all(secret not in morsel.value for morsel in response.cookies.values())

    # Nowhere to see it again: the key's own page shows the prefix, never the secret.
    page = admin_client.get(f"{KEYS}{key.pk}/change/")
    assert page.status_code == 200
    assert prefix in page.content.decode()
    assert secret not in page.content.decode()
    assert secret not in admin_client.get(KEYS).content.decode()


def test_creating_a_key_is_audited_as_the_staff_user(admin_client, staff_user):
    _, _, prefix, secret = create_key_in_admin(admin_client, scopes=("catalog:read",))

    entry = AuditLog.objects.get(
        action="api_key.created", object_id=str(ApiKey.objects.get(prefix=prefix).pk)
    )
    assert entry.actor_type == "user"
    assert entry.actor_id == str(staff_user.pk)
    assert entry.changes["scopes"]["after"] == ["catalog:read"]
    assert secret not in str(entry.changes)


def test_a_key_made_in_the_admin_works_until_revoked(admin_client, make_product):
    make_product("published")
    _, raw, prefix, _ = create_key_in_admin(admin_client)

    ok = api(raw).get("/api/v1/products/")
    assert ok.status_code == 200
    assert ok.json()["count"] == 1

    key = ApiKey.objects.get(prefix=prefix)
    response = admin_client.post(
        KEYS,
        {"action": "revoke_selected", "_selected_action": [key.pk], "post": "yes"},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == ["Revoked 1 API key."]

    refused = api(raw).get("/api/v1/products/")
    assert refused.status_code == 401
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert not key.is_active
    entry = AuditLog.objects.get(action="api_key.revoked", object_id=str(key.pk))
    assert entry.actor_type == "user"


def test_revoking_touches_only_the_selected_keys(admin_client, make_key):
    keep = make_key("storefront", name="keep")
    _, raw, prefix, _ = create_key_in_admin(admin_client, name="drop")

    admin_client.post(
        KEYS,
        {
            "action": "revoke_selected",
            "_selected_action": [ApiKey.objects.get(prefix=prefix).pk],
            "post": "yes",
        },
    )

    assert api(raw).get("/api/v1/products/").status_code == 401
    assert api(keep).get("/api/v1/products/").status_code == 200


def test_an_expiring_key_records_its_expiry(admin_client):
    _, _, prefix, _ = create_key_in_admin(admin_client, days="30")

    key = ApiKey.objects.get(prefix=prefix)
    assert key.expires_at is not None
    assert 29 <= (key.expires_at - key.created_at).days <= 30


def test_a_key_without_scopes_is_refused_by_the_form(admin_client):
    response = admin_client.post(f"{KEYS}add/", {"name": "nothing", "scope_choices": []})

    assert response.status_code == 200
    assert "scope_choices" in response.context["adminform"].form.errors
    assert not ApiKey.objects.exists()


def test_keys_cannot_be_edited_or_deleted(admin_client, make_key):
    make_key("storefront", name="fixed")
    key = ApiKey.objects.get(name="fixed")

    response = admin_client.post(
        f"{KEYS}{key.pk}/change/", {"name": "renamed", "scopes": '["audit:read"]'}
    )
    assert response.status_code == 403
    assert admin_client.get(f"{KEYS}{key.pk}/delete/").status_code == 403
    key.refresh_from_db()
    assert key.name == "fixed"
    assert key.scopes != ["audit:read"]


def test_a_view_only_clerk_can_neither_create_nor_revoke_keys(make_staff, make_key):
    raw = make_key("storefront", name="live")
    key = ApiKey.objects.get(name="live")
    clerk = make_staff("apikeys.view_apikey")

    assert clerk.get(KEYS).status_code == 200
    assert "revoke_selected" not in clerk.get(KEYS).content.decode()
    assert clerk.get(f"{KEYS}add/").status_code == 403
    clerk.post(KEYS, {"action": "revoke_selected", "_selected_action": [key.pk], "post": "yes"})
    assert clerk.get(f"{KEYS}{key.pk}/revoke/").status_code == 403
    assert clerk.post(f"{KEYS}{key.pk}/revoke/", {"post": "yes"}).status_code == 403
    assert "/revoke/" not in clerk.get(f"{KEYS}{key.pk}/change/").content.decode()

    key.refresh_from_db()
    assert key.revoked_at is None
    assert api(raw).get("/api/v1/products/").status_code == 200


def test_staff_without_key_permissions_cannot_see_keys(make_staff):
    outsider = make_staff("catalog.view_product")

    assert outsider.get(KEYS).status_code == 403
    assert outsider.get(f"{KEYS}add/").status_code == 403


def test_reloading_the_created_page_shows_no_secret_and_creates_no_key(admin_client):
    created = admin_client.post(
        f"{KEYS}add/", {"name": "once", "scope_choices": ["storefront"], "expires_in_days": ""}
    )
    first = admin_client.get(created["Location"])
    assert len(RAW_KEY.findall(first.content.decode())) == 1

    reload = admin_client.get(created["Location"])

    assert reload.status_code == 200
    assert RAW_KEY.findall(reload.content.decode()) == []
    assert "cannot be shown again" in reload.content.decode()
    assert ApiKey.objects.filter(name="once").count() == 1


def test_between_the_post_and_its_page_the_secret_is_nowhere_readable(admin_client):
    created = admin_client.post(
        f"{KEYS}add/", {"name": "waiting", "scope_choices": ["storefront"], "expires_in_days": ""}
    )
    key = ApiKey.objects.get(name="waiting")

    # Not in the redirect, its cookies, the database or the decoded session: the session
    # holds it encrypted until the one page that shows it.
    assert key.prefix not in created["Location"]
    stored_meanwhile = everything_stored()
    page = admin_client.get(created["Location"]).content.decode()
    prefix, secret = RAW_KEY.findall(page)[0]
    assert prefix == key.prefix
    assert secret not in stored_meanwhile
    assert secret not in everything_stored()
    assert all(secret not in morsel.value for morsel in created.cookies.values())
    assert secret not in created["Location"]


def test_the_secret_waits_only_for_its_own_page(admin_client, make_key):
    make_key("storefront", name="older")
    older = ApiKey.objects.get(name="older")
    created = admin_client.post(
        f"{KEYS}add/", {"name": "newer", "scope_choices": ["storefront"], "expires_in_days": ""}
    )

    other = admin_client.get(f"{KEYS}{older.pk}/created/")
    assert RAW_KEY.findall(other.content.decode()) == []
    assert len(RAW_KEY.findall(admin_client.get(created["Location"]).content.decode())) == 1


def test_revoking_from_the_keys_page_asks_first(admin_client, make_key):
    raw = make_key("storefront", name="Shop EU")
    key = ApiKey.objects.get(name="Shop EU")
    change = f"{KEYS}{key.pk}/change/"
    page = admin_client.get(change).content.decode()
    assert f'href="{KEYS}{key.pk}/revoke/"' in page

    confirm = admin_client.get(f"{KEYS}{key.pk}/revoke/")

    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Revoke this API key?" in html
    for shown in ("Shop EU", f"pms_{key.prefix}_", "catalog:read, inventory:read"):
        assert shown in html
    assert f'href="{change}"' in html  # the cancel link leads back to the key
    key.refresh_from_db()
    assert key.revoked_at is None
    assert api(raw).get("/api/v1/products/").status_code == 200

    done = admin_client.post(f"{KEYS}{key.pk}/revoke/", {"post": "yes"})

    assert done.status_code == 302
    assert done["Location"] == change
    after = admin_client.get(change)
    assert [str(m) for m in after.context["messages"]] == [
        "Revoked the API key “Shop EU”: requests presenting it are refused from now on."
    ]
    assert "/revoke/" not in after.content.decode()
    assert api(raw).get("/api/v1/products/").status_code == 401
    assert AuditLog.objects.filter(action="api_key.revoked", object_id=str(key.pk)).count() == 1


def test_a_revoke_link_without_confirmation_revokes_nothing(admin_client, make_key):
    make_key("storefront", name="kept")
    key = ApiKey.objects.get(name="kept")

    admin_client.post(f"{KEYS}{key.pk}/revoke/", {})

    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_bulk_revoke_asks_first_and_counts_in_plain_words(admin_client, make_key):
    for name in ("one", "two", "gone"):
        make_key("storefront", name=name)
    gone = ApiKey.objects.get(name="gone")
    admin_client.post(f"{KEYS}{gone.pk}/revoke/", {"post": "yes"})
    pks = list(ApiKey.objects.values_list("pk", flat=True))

    confirm = admin_client.post(KEYS, {"action": "revoke_selected", "_selected_action": pks})

    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Revoke these API keys?" in html
    assert "Revoking these 2 API keys" in html
    assert "(already revoked)" in html
    assert f'href="{KEYS}"' in html
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 2

    done = admin_client.post(
        KEYS, {"action": "revoke_selected", "_selected_action": pks, "post": "yes"}, follow=True
    )

    assert [str(m) for m in done.context["messages"]] == [
        "Revoked 2 API keys. 1 was already revoked."
    ]
    assert not ApiKey.objects.filter(revoked_at__isnull=True).exists()


# --- Audit log ------------------------------------------------------------------------------


def test_the_audit_log_cannot_be_added_to(admin_client):
    assert admin_client.get(f"{AUDIT}add/").status_code == 403
    assert admin_client.post(f"{AUDIT}add/", {"action": "forged"}).status_code == 403
    assert not AuditLog.objects.filter(action="forged").exists()


def test_an_audit_entry_is_shown_read_only(admin_client, make_product):
    product = make_product()
    entry = AuditLog.objects.get(action="product.created", object_id=str(product.pk))

    page = admin_client.get(f"{AUDIT}{entry.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "product.created" in html
    assert product.sku in html  # the changes, pretty-printed
    assert 'name="_save"' not in html
    for field in ("action", "actor_label", "object_id", "changes", "ip"):
        assert f'name="{field}"' not in html
    assert page.context["adminform"].form.fields == {}

    response = admin_client.post(
        f"{AUDIT}{entry.pk}/change/", {"action": "forged", "actor_label": "nobody"}
    )
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.action == "product.created"


def test_the_audit_log_cannot_be_deleted(admin_client, make_product):
    product = make_product()
    entry = AuditLog.objects.get(action="product.created", object_id=str(product.pk))
    count = AuditLog.objects.count()

    assert admin_client.get(f"{AUDIT}{entry.pk}/delete/").status_code == 403
    assert admin_client.post(f"{AUDIT}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert "delete_selected" not in admin_client.get(AUDIT).content.decode()
    admin_client.post(
        AUDIT, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    )

    assert AuditLog.objects.count() == count


def test_the_audit_log_filters_by_action_and_actor_type(admin_client, make_product):
    make_product("published")

    published = admin_client.get(AUDIT, {"action": "product.published"})
    system = admin_client.get(AUDIT, {"actor_type__exact": "system"})

    assert {e.action for e in published.context["cl"].result_list} == {"product.published"}
    assert {e.actor_type for e in system.context["cl"].result_list} == {"system"}
    # Counted in words staff say: "1 audit log entry", "3 audit log entries" (not "3 audit log").
    count = len(published.context["cl"].result_list)
    assert count == 1 and "1 audit log entry" in published.content.decode()
    assert f"{system.context['cl'].result_count} audit log entries" in system.content.decode()


def test_a_keys_history_link_shows_its_audit_entries(admin_client):
    _, _, prefix, _ = create_key_in_admin(admin_client)
    key = ApiKey.objects.get(prefix=prefix)
    admin_client.post(
        KEYS, {"action": "revoke_selected", "_selected_action": [key.pk], "post": "yes"}
    )

    response = admin_client.get(f"{KEYS}{key.pk}/history/", follow=True)

    assert response.status_code == 200
    actions = [e.action for e in response.context["cl"].result_list]
    assert sorted(actions) == ["api_key.created", "api_key.revoked"]


def test_a_clerk_with_audit_view_permission_reads_but_cannot_change(make_staff, make_product):
    product = make_product()
    entry = AuditLog.objects.get(action="product.created", object_id=str(product.pk))
    auditor = make_staff("audit.view_auditlog")

    assert auditor.get(AUDIT).status_code == 200
    assert auditor.get(f"{AUDIT}{entry.pk}/change/").status_code == 200
    assert auditor.post(f"{AUDIT}{entry.pk}/change/", {"action": "x"}).status_code == 403
    assert auditor.get(f"{AUDIT}{entry.pk}/delete/").status_code == 403


def test_staff_without_audit_permission_cannot_read_the_log(make_staff):
    outsider = make_staff("catalog.view_product")

    assert outsider.get(AUDIT).status_code == 403


@pytest.mark.parametrize("page", ["revoke", "created"])
def test_a_key_page_with_a_malformed_id_is_not_an_error(admin_client, page):
    # Ids come from the address bar: a non-number must not reach the database (a 500).
    for bad in ("abc", "1.5", "-1x"):
        response = admin_client.get(f"{KEYS}{bad}/{page}/", follow=True)
        assert response.status_code == 200  # Django's "does not exist" page, no server error
        assert ApiKey.objects.count() == 0
    assert admin_client.get(f"{KEYS}999999/{page}/").status_code == 404
