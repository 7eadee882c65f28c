from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from audit.models import AuditLog
from inventory.models import Stock
from pms_backend.staff.roles import ROLES

pytestmark = pytest.mark.django_db
PASSWORD = "a long enough passphrase 42"


def member_of(group_name: str, username: str = "member"):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def test_the_four_roles_exist_with_their_permissions():
    for name, codes in ROLES.items():
        group = Group.objects.get(name=name)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert held == set(codes)


def test_warehouse_staff_receive_stock_but_cannot_change_prices(client, make_product):
    product = make_product("published", price=Decimal("10.00"))
    client.force_login(member_of("Warehouse staff"))

    received = client.post(
        f"/admin/catalog/product/{product.pk}/stock/",
        {"kind": "receipt", "quantity": "12", "reason": "delivery"},
    )
    assert received.status_code == 302
    assert Stock.objects.get(product=product).on_hand == 12

    form = {
        "sku": product.sku,
        "name": product.name,
        "slug": product.slug,
        "price": "1.00",
        "currency": "EUR",
        "category": product.category_id,
        "attributes": "{}",
    }
    refused = client.post(f"/admin/catalog/product/{product.pk}/change/", form)
    assert refused.status_code == 403
    product.refresh_from_db()
    assert product.price == Decimal("10.00")


def test_auditors_read_the_audit_log_and_nothing_else(client, make_product):
    make_product()
    client.force_login(member_of("Auditors"))

    assert client.get("/admin/audit/auditlog/").status_code == 200
    assert client.get("/admin/catalog/product/").status_code == 403
    assert client.get("/admin/orders/order/").status_code == 403
    index = client.get("/admin/").content.decode()
    assert "Audit log" in index and "Products" not in index


def test_logins_and_failed_logins_are_audited(client):
    user = member_of("Auditors", username="ana")

    client.post("/admin/login/", {"username": "ana", "password": "wrong"})
    client.post("/admin/login/", {"username": "ana", "password": PASSWORD})

    failed = AuditLog.objects.get(action="auth.login_failed")
    assert failed.object_id == str(user.pk) and failed.object_repr == "ana"
    assert failed.actor_type == "anonymous"
    assert "wrong" not in str(failed.changes)
    login = AuditLog.objects.get(action="auth.login")
    assert login.actor_id == str(user.pk)


def test_a_group_change_is_audited_with_the_admin_who_made_it(client, staff_user):
    user = member_of("Auditors", username="bo")
    client.force_login(staff_user)

    response = client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": "bo",
            "is_active": "on",
            "is_staff": "on",
            "groups": [Group.objects.get(name="Order managers").pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    assert response.status_code == 302
    entries = AuditLog.objects.filter(object_type="auth.user", object_id=str(user.pk))
    made_here = [
        e
        for e in entries.filter(action="user.groups_changed")
        if "Order managers" in str(e.changes)
    ]
    assert made_here
    assert all(e.actor_type == "user" and e.actor_id == str(staff_user.pk) for e in made_here)
