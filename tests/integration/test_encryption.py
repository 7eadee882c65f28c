import base64
import os

import pytest
from django.core.management import call_command
from django.db import connection

from orders.models import Order
from orders.services import order_place
from pms_backend.encryption import keyring
from pms_backend.encryption.ciphers import DecryptionError, token_key_id
from tests.conftest import ORDER_ADDRESS

pytestmark = pytest.mark.django_db


@pytest.fixture
def place_order(system_actor, make_product, receive):
    product = make_product("published")
    receive(product, 100)

    def place(email="grace@example.com", name="Grace Hopper"):
        return order_place(
            actor=system_actor,
            items=[{"product": product.pk, "quantity": 1}],
            customer={"email": email, "name": name},
            shipping_address=ORDER_ADDRESS,
        )

    return place


def _raw(order, column):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM orders_order WHERE id = %s",  # noqa: S608 -- fixed names
            [order.pk.hex if connection.vendor == "sqlite" else order.pk],
        )
        return cursor.fetchone()[0]


def test_customer_data_is_ciphertext_in_the_database(place_order):
    order = place_order()

    for column in ("customer_email", "customer_name", "shipping_address"):
        stored = _raw(order, column)
        assert stored.startswith("pms1.")
        assert "grace" not in stored.lower() and "London" not in stored
    fresh = Order.objects.get(pk=order.pk)
    assert fresh.customer_email == "grace@example.com"
    assert fresh.customer_name == "Grace Hopper"
    assert fresh.shipping_address["city"] == "London"


def test_a_ciphertext_moved_to_another_row_does_not_decrypt(place_order):
    a = place_order(email="a@example.com")
    b = place_order(email="b@example.com")
    Order.objects.filter(pk=b.pk).update(customer_email_ct=a.customer_email_ct)

    with pytest.raises(DecryptionError):
        Order.objects.get(pk=b.pk).customer_email  # noqa: B018


def test_orders_are_found_by_email_through_the_blind_index(place_order, admin_api):
    wanted = place_order(email="Find.Me@Example.com")
    place_order(email="someone@example.com")

    response = admin_api.get("/api/v1/orders/", {"customer_email": "find.me@example.com"})

    assert [o["id"] for o in response.json()["results"]] == [str(wanted.pk)]


def test_rotation_reencrypts_everything_under_the_newest_key(place_order, settings):
    orders = [place_order(email=f"c{i}@example.com") for i in range(5)]
    old = settings.PMS_ENCRYPTION_KEYS
    new = base64.b64encode(os.urandom(32)).decode()
    settings.PMS_ENCRYPTION_KEYS = f"{new},{old}"
    keyring.reset_caches()
    try:
        new_kid = keyring.current_key().kid
        call_command("rotate_encryption_key", "--batch-size", "2", "--no-progress")

        for order in orders:
            fresh = Order.objects.get(pk=order.pk)
            assert token_key_id(fresh.customer_email_ct) == new_kid
            assert token_key_id(fresh.shipping_address_ct) == new_kid
        # The old key can now leave the ring: everything still opens.
        settings.PMS_ENCRYPTION_KEYS = new
        keyring.reset_caches()
        assert [Order.objects.get(pk=o.pk).customer_email for o in orders] == [
            f"c{i}@example.com" for i in range(5)
        ]
    finally:
        settings.PMS_ENCRYPTION_KEYS = old
        keyring.reset_caches()
