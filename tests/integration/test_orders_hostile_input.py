"""What a hostile or careless caller meets on the order pages and endpoints of shipping,
refunds and returns: odd path segments are 404s (never a 500), a refused cancel says the
status the order still has, and moves that pay money back or ship goods ask the same
permissions as the pages that do those."""

from __future__ import annotations

import pytest
from django.urls import reverse

from catalog.models import Category
from orders.fulfilments import fulfillment_create
from orders.models import Order
from tests.integration.test_fulfilments import processing
from tests.integration.test_locations_allocation import STAFF, receive_at

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def shipped_in_part(make_product):
    """A Processing order of 3 units of which 1 has shipped."""
    product = make_product("published", sku="LAMP")
    receive_at(product, "main", 10)
    order = processing((product, 3))
    fulfillment_create(actor=STAFF, order_id=order.pk, lines={product.pk: 1}, location="main")
    return order


@pytest.mark.parametrize("segment", ["%00", "RMA-%00", "x" * 300, "RMA-" + "A" * 40])
def test_an_odd_return_number_is_404_not_500(admin_api, admin_client, shipped_in_part, segment):
    order = shipped_in_part.pk
    assert admin_api.get(f"/api/v1/orders/{order}/returns/{segment}/").status_code == 404
    answer = admin_api.post(f"/api/v1/orders/{order}/returns/{segment}/receive/", {}, format="json")
    assert answer.status_code == 404
    page = admin_client.get(f"/admin/orders/order/{order}/returns/{segment}/receive/")
    assert page.status_code == 404


def test_an_odd_transfer_number_is_404_not_500(admin_api):
    assert admin_api.get("/api/v1/inventory/transfers/%00/").status_code == 404


def test_the_return_admin_answers_404_for_a_malformed_id_and_403_without_the_permission(
    admin_client, make_staff
):
    assert admin_client.get("/admin/orders/return/abc/change/").status_code == 404
    assert admin_client.get("/admin/orders/return/999999/change/").status_code == 404
    auditor = make_staff("audit.view_auditlog", username="auditor")
    assert auditor.get("/admin/orders/return/abc/change/").status_code == 403


@pytest.mark.parametrize("sequence", ["%C2%B2", "%D9%A3", "1" * 30, "-1"])
def test_a_packing_list_of_an_odd_shipment_number_is_404(admin_client, shipped_in_part, sequence):
    url = reverse("admin:orders_order_packing_list", args=[shipped_in_part.pk])
    assert admin_client.get(f"{url}?fulfillment={sequence}").status_code == 404
    assert admin_client.get(f"{url}?fulfillment=1").status_code == 200


def test_a_refused_cancel_names_the_status_the_order_still_has(admin_api, shipped_in_part):
    answer = admin_api.post(f"/api/v1/orders/{shipped_in_part.pk}/cancel/", {}, format="json")

    assert answer.status_code == 409
    assert answer.json()["code"] == "order_partly_fulfilled"
    assert answer.json()["current_status"] == "processing"
    assert Order.objects.get(pk=shipped_in_part.pk).status == "processing"


def test_refunding_or_completing_asks_the_refund_and_shipping_permissions(
    make_staff, shipped_in_part
):
    order = shipped_in_part
    clerk = make_staff("orders.view_order", "orders.change_order", username="clerk")

    complete = f"/api/v1/orders/{order.pk}/complete/"
    assert clerk.post(complete, {}, "application/json").status_code == 403
    refund_page = reverse("admin:orders_order_refund", args=[order.pk])
    assert clerk.get(refund_page).status_code == 403
    assert Order.objects.get(pk=order.pk).status == "processing"  # nothing moved

    shipper = make_staff(
        "orders.view_order", "orders.change_order", "orders.add_fulfillment", username="shipper"
    )
    assert shipper.post(complete, {}, "application/json").status_code == 200
    refund = f"/api/v1/orders/{order.pk}/refund/"
    assert clerk.post(refund, {}, "application/json").status_code == 403
    payer = make_staff(
        "orders.view_order", "orders.change_order", "orders.add_refund", username="payer"
    )
    assert payer.get(refund_page).status_code == 200
    paid = payer.post(refund, {}, "application/json")
    assert paid.status_code == 200, paid.json()
    assert paid.json()["status"] == "refunded"


def test_facets_count_a_deactivated_category_without_naming_it(storefront, make_product, category):
    make_product("published", sku="HIDDEN-1")
    Category.objects.filter(pk=category.pk).update(is_active=False)

    facets = storefront.get("/api/v1/products/facets/").json()

    shown = [c for c in facets["categories"] if c["id"] == category.pk]
    assert shown == [{"id": category.pk, "name": None, "count": 1}]
