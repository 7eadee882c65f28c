"""Confirmations in a real browser (Debian's Chromium driven by Playwright): cancelling an
order asks for a reason, archiving products in bulk asks first.

A module of its own, so its server starts on this module's database: a server that served
an earlier module's test keeps content-type ids that the flush between tests renumbered,
and the admin's change log (django_admin_log) would then point at none.
"""

from __future__ import annotations

import ssl
import uuid

import httpx
import pytest

from tests.e2e import test_admin_browser as admin_browser
from tests.e2e.test_admin_browser import PASSWORD, Session, _staff

# The same fixtures as the staff day's, each set up again for this module.
stack, browser, shots = admin_browser.stack, admin_browser.browser, admin_browser.shots

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_staff_confirm_a_cancel_with_a_reason_and_a_bulk_archive(
    stack, browser, make_product, receive, make_key, shots
):
    from catalog.models import Product
    from orders.models import Order
    from tests.conftest import order_body

    lamp = make_product("published", sku="CANCEL-LAMP")
    spare = make_product("published", sku="SPARE-LAMP")
    receive(lamp, 10)
    # Through the server: it encrypts the customer's data with its own key.
    with httpx.Client(
        base_url=stack["web"].base_url,
        headers={"Authorization": f"Api-Key {make_key('storefront', name='shop')}"},
        verify=ssl.create_default_context(cafile=str(stack["cert"])),
        timeout=15,
    ) as shop:
        placed = shop.post(
            "/api/v1/orders/",
            headers={"Idempotency-Key": uuid.uuid4().hex},
            json=order_body((lamp, 2)),
        )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    _staff("chief", superuser=True)
    tab = Session(browser, stack["web"].base_url, "confirm", shots)
    page = tab.page
    with tab:
        tab.login("chief", PASSWORD)

        # Cancel asks why on a page of its own; nothing changes until it is sent.
        tab.goto(f"/admin/orders/order/{order['id']}/change/")
        page.click("button[name=_fsm_transition_to][value=cancel]")
        page.wait_for_url(f"**/admin/orders/order/{order['id']}/cancel/")
        assert Order.objects.get(pk=order["id"]).status == "pending"
        crumbs = page.inner_text(".breadcrumbs")
        assert crumbs.split("\u203a")[-2].strip() == order["number"]
        page.fill("#id_reason", "The customer called to cancel")
        tab.shot("cancel-form")
        page.click("input[type=submit][value='Cancel the order']")
        page.wait_for_url(f"**/admin/orders/order/{order['id']}/change/")
        assert f"Order {order['number']} cancelled." in tab.messages()
        assert "reason: The customer called to cancel" in page.inner_text(".order-timeline")
        assert page.locator("input[name=_save]").count() == 0
        tab.shot("order-cancelled")

        # Archiving in bulk asks first, like Django's delete.
        tab.goto("/admin/catalog/product/")
        for product in (lamp, spare):
            page.check(f"input[name=_selected_action][value='{product.pk}']")
        page.select_option("select[name=action]", "archive_selected")
        page.click("button[name=index]")
        page.wait_for_selector("text=Archive 2 products?")
        assert Product.objects.get(pk=lamp.pk).status == "published"
        tab.shot("archive-confirmation")
        page.click("input[type=submit][value='Yes, archive']")
        assert "Archived 2 products." in tab.messages()
        assert set(
            Product.objects.filter(pk__in=[lamp.pk, spare.pk]).values_list("status", flat=True)
        ) == {"archived"}
        tab.shot("archived")
