"""Shipping from the order page: the Ship form (what is left of each line, where from,
tracking) goes through the fulfilment service; the page lists the shipments and prints
their packing lists; staff without the permission cannot ship."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from inventory.integrity import inventory_drift
from orders.models import Fulfillment, Order
from orders.services import order_transition
from tests.integration.test_fulfilments import mug, places, shirt  # noqa: F401  # fixtures
from tests.integration.test_locations_allocation import STAFF, buy, levels

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def member_of(django_user_model, group: str):
    user = django_user_model.objects.create_user(
        username=group.split()[0].lower(), password="pw-for-tests-only", is_staff=True
    )
    user.groups.add(Group.objects.get(name=group))
    return user


def processing(*lines) -> Order:
    order = buy(*lines)
    order_transition(actor=STAFF, order_id=order.pk, transition="process")
    return order


def test_warehouse_staff_ship_part_of_an_order_from_its_page(django_user_model, shirt, mug):  # noqa: F811
    order = processing((shirt, 3), (mug, 2))
    client = Client()
    client.force_login(member_of(django_user_model, "Warehouse staff"))
    page = client.get(f"/admin/orders/order/{order.pk}/change/")
    assert page.status_code == 200
    assert "Ship items" in page.content.decode()
    items = {item.product_id: item.pk for item in order.items.all()}

    form = client.get(f"/admin/orders/order/{order.pk}/ship/")
    assert form.status_code == 200
    assert form.context["form"].fields["location"].initial == "store"
    shipped = client.post(
        f"/admin/orders/order/{order.pk}/ship/",
        {
            f"line_{items[shirt.pk]}": "2",
            f"line_{items[mug.pk]}": "0",
            "location": "warehouse",
            "carrier": "DHL",
            "tracking_number": "JD1",
            "tracking_url": "https://dhl.example/JD1",
        },
        follow=True,
    )

    assert [str(m) for m in shipped.context["messages"]] == [
        f"Shipped {order.number}-1 from Warehouse."
    ]
    made = Fulfillment.objects.get(order=order)
    assert (made.location.code, made.carrier, made.tracking_number) == ("warehouse", "DHL", "JD1")
    html = shipped.content.decode()
    assert f'data-number="{order.number}-1"' in html
    assert "2 of 3 (partial)" in html
    assert levels(shirt) == {"store": (5, 1), "warehouse": (8, 0)}

    packing = client.get(f"/admin/orders/order/{order.pk}/packing-list/?fulfillment=1")
    text = packing.content.decode()
    assert packing.status_code == 200
    assert order.number in text and "1 Analytical Way" in text and "SHIRT" in text
    left = client.get(f"/admin/orders/order/{order.pk}/packing-list/").content.decode()
    assert "MUG" in left and "1 at Store" in left  # one shirt and both mugs left, at the store
    assert inventory_drift() == []


def test_a_refusal_shows_on_the_form_and_ships_nothing(staff_user, shirt, mug):  # noqa: F811
    order = processing((mug, 2))
    client = Client()
    client.force_login(staff_user)
    item = order.items.get()

    refused = client.post(
        f"/admin/orders/order/{order.pk}/ship/",
        {f"line_{item.pk}": "2", "location": "warehouse"},  # no mugs at the warehouse
    )

    assert refused.status_code == 200
    assert "warehouse has not enough to ship" in refused.content.decode()
    assert Fulfillment.objects.count() == 0


def test_auditors_cannot_ship(django_user_model, shirt):  # noqa: F811
    order = processing((shirt, 1))
    client = Client()
    client.force_login(member_of(django_user_model, "Auditors"))

    assert client.get(f"/admin/orders/order/{order.pk}/ship/").status_code == 403
    assert Fulfillment.objects.count() == 0
