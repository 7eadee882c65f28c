"""Subscribing a webhook endpoint to events needs the scope that reads them: an endpoint
receives every event of its types, customer data included (docs/api.md, Webhooks)."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from audit.actors import Actor
from webhooks import services
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhooks/endpoints/"


def test_webhooks_manage_alone_cannot_subscribe_to_orders(client_for):
    manager = client_for("webhooks:manage")
    response = manager.post(
        ENDPOINTS,
        {"url": "https://example.com/h", "event_types": ["order.created"]},
        format="json",
    )
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "scope_for_event_type_missing"
    assert "orders:read" in body["detail"] and "order.created" in body["detail"]
    assert body["missing_scopes"] == ["orders:read"]
    assert not WebhookEndpoint.objects.exists()


def test_no_event_types_means_every_type_and_needs_every_reading_scope(client_for):
    response = client_for("webhooks:manage,catalog:read").post(
        ENDPOINTS, {"url": "https://example.com/h"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["missing_scopes"] == ["inventory:read", "orders:read", "settings:manage"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("scopes", "event_type"),
    [
        ("webhooks:manage,catalog:read", "product.published"),
        ("webhooks:manage,inventory:read", "stock.low"),
        ("webhooks:manage,orders:read", "order.status_changed"),
        ("webhooks:manage,settings:manage", "settings.updated"),
    ],
)
def test_the_reading_scope_lets_a_key_subscribe(client_for, scopes, event_type):
    response = client_for(scopes).post(
        ENDPOINTS, {"url": "https://example.com/h", "event_types": [event_type]}, format="json"
    )
    assert response.status_code == 201, response.json()


def test_subscribing_to_the_audit_anchor_needs_audit_read(client_for):
    subscription = {"url": "https://anchors.example/h", "event_types": ["audit.sealed"]}

    refused = client_for("webhooks:manage").post(ENDPOINTS, subscription, format="json")
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    body = refused.json()
    assert body["code"] == "scope_for_event_type_missing"
    assert body["missing_scopes"] == ["audit:read"]
    assert "audit.sealed" in body["detail"]
    assert not WebhookEndpoint.objects.exists()

    taken = client_for("webhooks:manage,audit:read").post(ENDPOINTS, subscription, format="json")
    assert taken.status_code == 201, taken.json()
    assert taken.json()["event_types"] == ["audit.sealed"]
    assert WebhookEndpoint.objects.get().event_types == ["audit.sealed"]


def test_a_key_cannot_redirect_or_widen_an_endpoint_it_could_not_have_made(
    client_for, system_actor
):
    endpoint, _ = services.endpoint_create(
        actor=system_actor, url="https://shop.example/orders", event_types=["order.created"]
    )
    catalog = client_for("webhooks:manage,catalog:read")
    redirect = catalog.patch(
        f"{ENDPOINTS}{endpoint.pk}/", {"url": "https://evil.example/h"}, format="json"
    )
    assert redirect.status_code == 403
    assert "orders:read" in redirect.json()["detail"]
    rotate = catalog.post(f"{ENDPOINTS}{endpoint.pk}/rotate-secret/")
    assert rotate.status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.url == "https://shop.example/orders"

    own = catalog.post(
        ENDPOINTS,
        {"url": "https://shop.example/p", "event_types": ["product.updated"]},
        format="json",
    ).json()
    widen = catalog.patch(
        f"{ENDPOINTS}{own['id']}/",
        {"event_types": ["product.updated", "stock.updated"]},
        format="json",
    )
    assert widen.status_code == 403
    assert widen.json()["missing_scopes"] == ["inventory:read"]
    assert WebhookEndpoint.objects.get(pk=own["id"]).event_types == ["product.updated"]


def _staff_in(*groups: str, username: str):
    user = get_user_model().objects.create_user(
        username=username, password="correct horse battery", is_staff=True
    )
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return user


def test_staff_subscribe_only_to_what_their_groups_may_view(client, make_staff):
    from django.contrib.auth.models import Permission

    # A catalog manager who was also given the webhook screens: products yes, orders no.
    user = _staff_in("Catalog managers", username="cm")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="webhooks", codename__endswith="webhookendpoint"
        )
    )
    client.force_login(user)
    form = {"url": "https://example.com/h", "description": "", "is_active": "on"}

    refused = client.post(
        "/admin/webhooks/webhookendpoint/add/", {**form, "event_types": ["order.created"]}
    )
    assert refused.status_code == 200  # the form again, with the error
    assert "You may not view the data of: order.created" in refused.content.decode()
    assert not WebhookEndpoint.objects.exists()

    everything = client.post("/admin/webhooks/webhookendpoint/add/", form)
    assert "every event" in everything.content.decode()
    assert not WebhookEndpoint.objects.exists()

    allowed = client.post(
        "/admin/webhooks/webhookendpoint/add/", {**form, "event_types": ["product.published"]}
    )
    assert allowed.status_code == 302  # to the page that shows the secret once
    assert "whsec_" in client.get(allowed["Location"]).content.decode()
    assert WebhookEndpoint.objects.get().event_types == ["product.published"]


def test_staff_cannot_change_an_endpoint_carrying_data_they_may_not_view(client):
    from django.contrib.auth.models import Permission

    endpoint, _ = services.endpoint_create(
        actor=Actor.system("tests"), url="https://shop.example/o", event_types=["order.created"]
    )
    user = _staff_in("Catalog managers", username="cm")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="webhooks", codename__endswith="webhookendpoint"
        )
    )
    client.force_login(user)
    client.post(
        f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/",
        {
            "url": "https://evil.example/o",
            "description": "",
            "event_types": ["order.created"],
            "is_active": "on",
        },
    )
    endpoint.refresh_from_db()
    assert endpoint.url == "https://shop.example/o"


def test_transfers_reach_only_endpoints_that_name_them(client_for):
    # An endpoint for "every event" never gets transfer.* (quantities per location): its
    # maker was never asked for inventory:write. One that names them needs that scope.
    every = client_for("webhooks:manage,catalog:read,inventory:read,orders:read,settings:manage")
    assert (
        every.post(ENDPOINTS, {"url": "https://example.com/all"}, format="json").status_code == 201
    )
    endpoint = WebhookEndpoint.objects.get(url="https://example.com/all")
    assert not endpoint.wants("transfer.dispatched")
    assert endpoint.wants("stock.updated")

    named = {"url": "https://example.com/t", "event_types": ["transfer.dispatched"]}
    refused = every.post(ENDPOINTS, named, format="json")
    assert refused.status_code == 403
    assert refused.json()["missing_scopes"] == ["inventory:write"]
    allowed = client_for("webhooks:manage,inventory:write").post(ENDPOINTS, named, format="json")
    assert allowed.status_code == 201
