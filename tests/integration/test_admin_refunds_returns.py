"""Refunds and returns from the order page: the section listing them, and the forms that
pay part of an order back, request a return, receive it (restock or write off) and refund
it; who may do which."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from audit.actors import Actor
from inventory.locations import location_create
from inventory.models import StockLevel
from inventory.services import default_location
from orders.models import Order, Refund, Return
from tests.conftest import order_body
from tests.integration.order_support import move_order, place, writes_nothing

pytestmark = pytest.mark.django_db
ORDERS = "/admin/orders/order/"


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def order(storefront, make_product, receive):
    """A completed order of 2 x a (12.00 each) and 1 x b (3.50), and a second location."""
    default_location()
    a = make_product("published", price=Decimal("12.00"))
    b = make_product("published", price=Decimal("3.50"))
    receive(a, 5)
    receive(b, 5)
    location_create(actor=Actor.system("tests"), code="backroom", name="Back room", priority=300)
    order_id = place(storefront, order_body((a, 2), (b, 1))).json()["id"]
    move_order(order_id, "process", "complete")
    return Order.objects.get(pk=order_id), a, b


def member_of(group: str) -> Client:
    user = get_user_model().objects.create_user(
        username=group.replace(" ", "-"), password="correct horse battery", is_staff=True
    )
    user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


def test_the_order_page_lists_refunds_and_returns_with_their_buttons(admin_client, order):
    placed, _, _ = order
    page = admin_client.get(f"{ORDERS}{placed.pk}/change/").content.decode()
    assert 'id="refunds-and-returns"' in page
    assert "Refunded 0.00 EUR of 27.50 EUR" in page
    assert f"{ORDERS}{placed.pk}/refunds/add/" in page
    assert f"{ORDERS}{placed.pk}/returns/add/" in page


def test_refunding_part_of_an_order_from_its_page(admin_client, order):
    placed, a, b = order
    form = admin_client.get(f"{ORDERS}{placed.pk}/refunds/add/")
    assert form.status_code == 200
    assert f'name="units_{a.pk}"' in form.content.decode()

    done = admin_client.post(
        f"{ORDERS}{placed.pk}/refunds/add/",
        {f"units_{a.pk}": "1", f"units_{b.pk}": "0", "amount": "", "reason": "scratched"},
        follow=True,
    )

    assert "refund paid" in " ".join(messages_of(done))
    refund = Refund.objects.get(order=placed)
    assert (refund.amount, refund.reason) == (Decimal("12.00"), "scratched")
    placed.refresh_from_db()
    assert (placed.status, placed.refunded_amount) == ("completed", Decimal("12.00"))
    page = done.content.decode()
    assert f'data-number="{refund.number}"' in page
    assert "Refunded 12.00 EUR of 27.50 EUR" in page


def test_a_refused_refund_is_shown_on_the_form_and_nothing_is_written(admin_client, order):
    placed, _, _ = order
    with writes_nothing():
        shown = admin_client.post(
            f"{ORDERS}{placed.pk}/refunds/add/", {"amount": "27.51", "reason": ""}
        )
    assert shown.status_code == 200
    assert "at most 27.50 can be refunded" in shown.content.decode()
    assert not Refund.objects.exists()


def test_a_return_walked_from_the_order_page(admin_client, order):
    placed, a, b = order
    requested = admin_client.post(
        f"{ORDERS}{placed.pk}/returns/add/",
        {f"units_{a.pk}": "2", f"units_{b.pk}": "", "reason": "wrong size"},
        follow=True,
    )
    assert "return requested" in " ".join(messages_of(requested))
    rma = Return.objects.get(order=placed)
    assert f"{ORDERS}{placed.pk}/returns/{rma.number}/receive/" in requested.content.decode()

    receive_form = admin_client.get(f"{ORDERS}{placed.pk}/returns/{rma.number}/receive/")
    assert f'name="location_{a.pk}"' in receive_form.content.decode()
    received = admin_client.post(
        f"{ORDERS}{placed.pk}/returns/{rma.number}/receive/",
        {f"restocked_{a.pk}": "1", f"location_{a.pk}": "backroom", f"damaged_{a.pk}": "1"},
        follow=True,
    )
    assert f"Return {rma.number} received." in messages_of(received)
    assert StockLevel.objects.get(product=a, location__code="backroom").on_hand == 1

    refund_form = admin_client.get(f"{ORDERS}{placed.pk}/returns/{rma.number}/refund/")
    assert 'value="24.00"' in refund_form.content.decode()
    refunded = admin_client.post(
        f"{ORDERS}{placed.pk}/returns/{rma.number}/refund/",
        {"amount": "20.00", "reason": "one damaged in transit"},
        follow=True,
    )
    assert f"Return {rma.number} refunded." in messages_of(refunded)
    rma.refresh_from_db()
    assert (rma.status, rma.refund.amount) == ("refunded", Decimal("20.00"))
    timeline = refunded.content.decode()
    assert "Return received" in timeline and "Return refunded" in timeline


def test_warehouse_staff_receive_returns_but_pay_no_refunds(order):
    placed, a, _ = order
    rma_number = member_of("Order managers").post(
        f"{ORDERS}{placed.pk}/returns/add/", {f"units_{a.pk}": "1"}
    )
    rma = Return.objects.get(order=placed)
    assert rma_number.status_code == 302
    warehouse = member_of("Warehouse staff")

    page = warehouse.get(f"{ORDERS}{placed.pk}/change/").content.decode()
    assert f"/returns/{rma.number}/receive/" in page
    assert "/refunds/add/" not in page
    assert warehouse.get(f"{ORDERS}{placed.pk}/refunds/add/").status_code == 403
    received = warehouse.post(
        f"{ORDERS}{placed.pk}/returns/{rma.number}/receive/",
        {f"restocked_{a.pk}": "1", f"location_{a.pk}": "main"},
    )
    assert received.status_code == 302
    assert (
        warehouse.post(f"{ORDERS}{placed.pk}/returns/{rma.number}/refund/", {}).status_code == 403
    )
    assert member_of("Auditors").get(f"{ORDERS}{placed.pk}/returns/add/").status_code == 403


def test_the_refund_button_pays_the_rest_and_says_so(admin_client, order):
    placed, a, _ = order
    admin_client.post(f"{ORDERS}{placed.pk}/refunds/add/", {f"units_{a.pk}": "1"})

    page = admin_client.get(f"{ORDERS}{placed.pk}/refund/").content.decode()
    assert "12.00 EUR was refunded already: the rest, 15.50 EUR, is paid back now." in page
    admin_client.post(f"{ORDERS}{placed.pk}/refund/", {})

    placed.refresh_from_db()
    assert (placed.status, placed.refunded_amount) == ("refunded", Decimal("27.50"))
    assert sorted(r.amount for r in Refund.objects.filter(order=placed)) == [
        Decimal("12.00"),
        Decimal("15.50"),
    ]


def test_the_warehouse_finds_returns_coming_back_in_a_list_of_their_own(admin_client, order):
    placed, a, _ = order
    admin_client.post(f"{ORDERS}{placed.pk}/returns/add/", {f"units_{a.pk}": "2"})
    rma = Return.objects.get()
    warehouse = member_of("Warehouse staff")

    listing = warehouse.get("/admin/orders/return/", {"status__exact": "requested"})

    assert listing.status_code == 200
    page = listing.content.decode()
    assert rma.number in page and f"2 x {a.sku}" in page
    assert f"{ORDERS}{placed.pk}/change/#refunds-and-returns" in page
    opened = warehouse.get(f"/admin/orders/return/{rma.pk}/change/")
    assert opened["Location"] == f"{ORDERS}{placed.pk}/change/#refunds-and-returns"
    assert (
        rma.number
        not in warehouse.get(
            "/admin/orders/return/", {"status__exact": "received"}
        ).content.decode()
    )
    assert member_of("Auditors").get("/admin/orders/return/").status_code == 403
