"""A staff session reaches through the API exactly what the admin shows it: every endpoint
that takes session authentication, for each ready-made staff group, asks the model
permission the admin asks for the same records."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from pms_backend.staff.roles import ROLES
from tests.integration.test_every_url_is_protected import ENDPOINTS

pytestmark = pytest.mark.django_db

# What each endpoint shows or does, as the admin's model permission for it
# (model, action): the admin's view of a model is also open to holders of "change".
ADMIN_EQUIVALENT = {
    ("/api/v1/products/", "get"): ("catalog.product", "view"),
    ("/api/v1/products/facets/", "get"): ("catalog.product", "view"),
    ("/api/v1/products/", "post"): ("catalog.product", "add"),
    ("/api/v1/products/1/", "get"): ("catalog.product", "view"),
    ("/api/v1/products/1/", "patch"): ("catalog.product", "change"),
    ("/api/v1/products/1/archive/", "post"): ("catalog.product", "change"),
    ("/api/v1/products/1/publish/", "post"): ("catalog.product", "change"),
    ("/api/v1/products/1/restore/", "post"): ("catalog.product", "change"),
    ("/api/v1/products/1/unpublish/", "post"): ("catalog.product", "change"),
    ("/api/v1/products/1/stock/", "get"): ("inventory.inventorymovement", "view"),
    ("/api/v1/products/1/options/", "put"): ("catalog.product", "change"),
    ("/api/v1/products/1/variants/", "get"): ("catalog.product", "view"),
    # A variant is a product row: making one is adding a product, deleting one deleting.
    ("/api/v1/products/1/variants/", "post"): ("catalog.product", "add"),
    ("/api/v1/products/1/variants/generate/", "post"): ("catalog.product", "add"),
    ("/api/v1/variants/1/", "get"): ("catalog.product", "view"),
    ("/api/v1/variants/1/", "patch"): ("catalog.product", "change"),
    ("/api/v1/variants/1/", "delete"): ("catalog.product", "delete"),
    ("/api/v1/stock/", "get"): ("inventory.inventorymovement", "view"),
    ("/api/v1/categories/", "get"): ("catalog.category", "view"),
    ("/api/v1/categories/", "post"): ("catalog.category", "add"),
    ("/api/v1/categories/1/", "get"): ("catalog.category", "view"),
    ("/api/v1/categories/1/", "patch"): ("catalog.category", "change"),
    ("/api/v1/categories/1/", "delete"): ("catalog.category", "delete"),
    ("/api/v1/inventory/movements/", "get"): ("inventory.inventorymovement", "view"),
    ("/api/v1/inventory/movements/", "post"): ("inventory.inventorymovement", "add"),
    ("/api/v1/inventory/movements/1/", "get"): ("inventory.inventorymovement", "view"),
    ("/api/v1/inventory/locations/", "get"): ("inventory.inventorymovement", "view"),
    ("/api/v1/inventory/locations/", "post"): ("inventory.location", "add"),
    ("/api/v1/inventory/locations/1/", "get"): ("inventory.inventorymovement", "view"),
    ("/api/v1/inventory/locations/1/", "patch"): ("inventory.location", "change"),
    ("/api/v1/inventory/locations/1/", "delete"): ("inventory.location", "delete"),
    ("/api/v1/inventory/locations/1/stocktake/", "post"): ("inventory.inventorymovement", "add"),
    ("/api/v1/inventory/transfers/", "get"): ("inventory.transfer", "view"),
    ("/api/v1/inventory/transfers/", "post"): ("inventory.transfer", "add"),
    ("/api/v1/inventory/transfers/TR-1/", "get"): ("inventory.transfer", "view"),
    ("/api/v1/inventory/transfers/TR-1/dispatch/", "post"): ("inventory.transfer", "change"),
    ("/api/v1/inventory/transfers/TR-1/receive/", "post"): ("inventory.transfer", "change"),
    ("/api/v1/inventory/transfers/TR-1/cancel/", "post"): ("inventory.transfer", "change"),
    ("/api/v1/orders/", "get"): ("orders.order", "view"),
    ("/api/v1/orders/", "post"): ("orders.order", "add"),
    ("/api/v1/orders/1/", "get"): ("orders.order", "view"),
    ("/api/v1/orders/1/process/", "post"): ("orders.order", "change"),
    ("/api/v1/orders/1/complete/", "post"): ("orders.order", "change"),
    ("/api/v1/orders/1/cancel/", "post"): ("orders.order", "change"),
    ("/api/v1/orders/1/refund/", "post"): ("orders.order", "change"),
    ("/api/v1/orders/1/fulfillments/", "get"): ("orders.order", "view"),
    ("/api/v1/orders/1/fulfillments/", "post"): ("orders.fulfillment", "add"),
    ("/api/v1/orders/1/fulfillments/1/", "get"): ("orders.order", "view"),
    ("/api/v1/orders/1/fulfillments/1/", "patch"): ("orders.fulfillment", "change"),
    # An order's refunds and returns are part of it (read with it); paying one back is
    # adding a refund, receiving or cancelling a return changing it.
    ("/api/v1/orders/1/refunds/", "get"): ("orders.order", "view"),
    ("/api/v1/orders/1/refunds/", "post"): ("orders.refund", "add"),
    ("/api/v1/orders/1/returns/", "get"): ("orders.order", "view"),
    ("/api/v1/orders/1/returns/", "post"): ("orders.return", "add"),
    ("/api/v1/orders/1/returns/RMA-1/", "get"): ("orders.order", "view"),
    ("/api/v1/orders/1/returns/RMA-1/receive/", "post"): ("orders.return", "change"),
    ("/api/v1/orders/1/returns/RMA-1/cancel/", "post"): ("orders.return", "change"),
    ("/api/v1/orders/1/returns/RMA-1/refund/", "post"): ("orders.refund", "add"),
    ("/api/v1/webhooks/endpoints/", "get"): ("webhooks.webhookendpoint", "view"),
    ("/api/v1/webhooks/endpoints/", "post"): ("webhooks.webhookendpoint", "add"),
    ("/api/v1/webhooks/endpoints/1/", "get"): ("webhooks.webhookendpoint", "view"),
    ("/api/v1/webhooks/endpoints/1/", "patch"): ("webhooks.webhookendpoint", "change"),
    ("/api/v1/webhooks/endpoints/1/", "delete"): ("webhooks.webhookendpoint", "delete"),
    ("/api/v1/webhooks/endpoints/1/rotate-secret/", "post"): (
        "webhooks.webhookendpoint",
        "change",
    ),
    ("/api/v1/webhooks/deliveries/", "get"): ("webhooks.webhookdelivery", "view"),
    ("/api/v1/webhooks/deliveries/1/", "get"): ("webhooks.webhookdelivery", "view"),
    ("/api/v1/webhooks/deliveries/1/redeliver/", "post"): ("webhooks.webhookdelivery", "view"),
    ("/api/v1/audit/", "get"): ("audit.auditlog", "view"),
    ("/api/v1/audit/1/", "get"): ("audit.auditlog", "view"),
    ("/api/v1/settings/", "get"): ("settings.setting", "view"),
    ("/api/v1/settings/", "put"): ("settings.setting", "change"),
    ("/api/v1/settings/1/", "get"): ("settings.setting", "view"),
    ("/api/v1/settings/1/", "put"): ("settings.setting", "change"),
}


def test_every_session_endpoint_has_its_admin_equivalent():
    assert {(path, method) for path, method, _ in ENDPOINTS} == set(ADMIN_EQUIVALENT)


def admin_allows(user, model: str, action: str) -> bool:
    app, name = model.split(".")
    if user.has_perm(f"{app}.{action}_{name}"):
        return True
    return action == "view" and user.has_perm(f"{app}.change_{name}")


def member_of(group: str):
    user = get_user_model().objects.create_user(
        username=group.lower().replace(" ", "-"), password="x" * 20, is_staff=True
    )
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.mark.parametrize("group", sorted(ROLES))
def test_a_group_reaches_through_the_api_what_the_admin_shows_it(group, category):
    user = member_of(group)
    client = APIClient()
    client.force_login(user)
    mismatches = []
    for path, method, _scope in ENDPOINTS:
        model, action = ADMIN_EQUIVALENT[(path, method)]
        response = getattr(client, method)(path, {}, format="json")
        refused = response.status_code == 403
        if refused == admin_allows(user, model, action):
            mismatches.append((method.upper(), path, response.status_code, f"admin {action}"))
    assert mismatches == []


def test_an_auditor_reads_neither_products_nor_stock(make_product):
    product = make_product("published")
    client = APIClient()
    client.force_login(member_of("Auditors"))
    for path in (
        "/api/v1/products/",
        f"/api/v1/products/{product.pk}/stock/",
        f"/api/v1/stock/?products={product.pk}",
        "/api/v1/categories/",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert response["Content-Type"] == "application/problem+json"
    assert client.get("/api/v1/audit/").status_code == 200
