"""The webhook endpoint admin: a new or rotated signing secret is shown once, on the page the
POST redirects to; a reload of that page creates, rotates and shows nothing (issue 15)."""

from __future__ import annotations

import re
import uuid

import pytest

from audit.actors import Actor
from audit.models import AuditLog
from tests.integration.test_admin_apikeys_audit import everything_stored
from webhooks import services
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/webhooks/webhookendpoint/"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")
FORM = {"url": "https://shop.example/hooks", "description": "Shop EU", "is_active": "on"}


def secrets_on(response) -> list[str]:
    assert response.status_code == 200, response.content[:2000]
    return SECRET.findall(response.content.decode())


def test_a_new_endpoints_secret_is_shown_once_after_a_redirect(admin_client):
    created = admin_client.post(f"{ENDPOINTS}add/", FORM)

    endpoint = WebhookEndpoint.objects.get()
    assert created.status_code == 302
    assert created["Location"] == f"{ENDPOINTS}{endpoint.pk}/secret/"
    # Nowhere but in the session, encrypted, until its page is read.
    assert endpoint.secret not in created["Location"]
    assert all(endpoint.secret not in morsel.value for morsel in created.cookies.values())
    assert endpoint.secret not in everything_stored()

    first = admin_client.get(created["Location"])
    reload = admin_client.get(created["Location"])

    assert secrets_on(first) == [endpoint.secret]
    assert "shown only this once" in first.content.decode()
    assert secrets_on(reload) == []
    assert 'id="secret-already-shown"' in reload.content.decode()
    assert "is not shown again" in reload.content.decode()
    assert WebhookEndpoint.objects.count() == 1
    assert AuditLog.objects.filter(action="webhook_endpoint.created").count() == 1


def test_a_rotated_secret_is_shown_once_and_a_reload_rotates_nothing(admin_client):
    endpoint, old = services.endpoint_create(actor=Actor.system("tests"), url=FORM["url"])

    rotated = admin_client.post(
        ENDPOINTS, {"action": "rotate_secret", "_selected_action": [endpoint.pk]}
    )

    assert rotated.status_code == 302
    assert rotated["Location"] == f"{ENDPOINTS}{endpoint.pk}/secret/"
    first = admin_client.get(rotated["Location"])
    reload = admin_client.get(rotated["Location"])
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert secrets_on(first) == [endpoint.secret]
    assert secrets_on(reload) == []
    assert "is not shown again" in reload.content.decode()
    assert AuditLog.objects.filter(action="webhook_endpoint.secret_rotated").count() == 1
    after_reload = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert after_reload.secret == endpoint.secret


def test_the_secret_waits_only_for_its_own_endpoints_page(admin_client):
    other, _ = services.endpoint_create(actor=Actor.system("tests"), url="https://b.example/h")
    created = admin_client.post(f"{ENDPOINTS}add/", FORM)

    assert secrets_on(admin_client.get(f"{ENDPOINTS}{other.pk}/secret/")) == []
    assert len(secrets_on(admin_client.get(created["Location"]))) == 1


def test_a_view_only_clerk_cannot_open_a_secret_page(make_staff):
    endpoint, _ = services.endpoint_create(actor=Actor.system("tests"), url=FORM["url"])
    clerk = make_staff("webhooks.view_webhookendpoint")

    assert clerk.get(f"{ENDPOINTS}{endpoint.pk}/secret/").status_code == 403


def test_who_may_only_add_endpoints_sees_no_other_endpoints_page(make_staff):
    """Its URL may carry a token: someone who may add endpoints, and not view them, sees
    only the secret of the one they just made."""
    theirs, _ = services.endpoint_create(
        actor=Actor.system("tests"), url="https://hooks.example.com/in?token=s3cret"
    )
    adder = make_staff("webhooks.add_webhookendpoint")

    page = adder.get(f"{ENDPOINTS}{theirs.pk}/secret/")

    assert page.status_code == 403 and b"s3cret" not in page.content


@pytest.mark.parametrize("bad", ["abc", "1", str(uuid.uuid4())])
def test_a_secret_page_of_no_endpoint_is_not_an_error(admin_client, bad):
    response = admin_client.get(f"{ENDPOINTS}{bad}/secret/", follow=True)

    assert response.status_code in (200, 404)


def test_sending_deliveries_again_counts_them_in_plain_words(
    admin_client, make_product, django_capture_on_commit_callbacks
):
    from webhooks.models import WebhookDelivery

    services.endpoint_create(actor=Actor.system("tests"), url=FORM["url"])
    with django_capture_on_commit_callbacks(execute=True):
        make_product("published", sku="HOOK-1")
        make_product("published", sku="HOOK-2")
    deliveries = list(WebhookDelivery.objects.values_list("pk", flat=True))
    assert len(deliveries) >= 2

    def redeliver(ids):
        response = admin_client.post(
            "/admin/webhooks/webhookdelivery/",
            {"action": "redeliver", "_selected_action": ids},
            follow=True,
        )
        return [str(m) for m in response.context["messages"]]

    assert redeliver(deliveries[:1]) == ["1 delivery queued again."]
    assert redeliver(deliveries[:2]) == ["2 deliveries queued again."]
