"""Shipping part of an order from its page, in a real browser (Debian's Chromium driven by
Playwright) against the production web tier, a Celery worker and a private Redis.

An Order-managers member (not a superuser: the role holds every step) processes a
storefront's order of three lamps, ships two from the order's page (Ship items…: the
line's units, the location, carrier and tracking), sees the shipment listed and the line
partly shipped, and opens its printable packing list with the ship-to address. Then
``manage.py check_inventory`` on the server's database finds nothing out of line.

A module of its own, so its server starts on this module's database (see
``test_admin_confirmations_browser``).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e import test_admin_browser as admin_browser
from tests.e2e.test_admin_browser import PASSWORD, Session, _staff
from tests.e2e.test_admin_locations_browser import _check_inventory, _place

stack, browser, shots = admin_browser.stack, admin_browser.browser, admin_browser.shots

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_order_manager_ships_part_of_an_order_and_prints_the_packing_list(
    stack, browser, make_product, make_key, receive, shots
):
    from inventory.models import Location

    Location.objects.get_or_create(
        code="main", defaults={"name": "Main warehouse", "priority": 100}
    )
    lamp = make_product("published", sku="LMP-ARC", name="Arc lamp", price=Decimal("89.00"))
    receive(lamp, 5)
    storefront = make_key("storefront", name="Storefront")
    _staff("otto", group="Order managers")
    order = _place(stack, storefront, (lamp, 3))

    tab = Session(browser, stack["web"].base_url, "shipping", shots)
    tab.page.set_viewport_size({"width": 1366, "height": 768})
    page = tab.page
    with tab:
        tab.login("otto", PASSWORD)
        tab.goto(f"/admin/orders/order/{order['id']}/change/")
        page.click("button[name=_fsm_transition_to][value=process]")
        assert f"Order {order['number']} processed." in tab.messages()
        assert "Nothing shipped yet." in page.inner_text(".field-shipments")

        # Ship items…: two of the three lamps, from the main warehouse, tracked.
        page.click("a.ship-link")
        page.wait_for_url(f"**/admin/orders/order/{order['id']}/ship/")
        quantity = page.locator("input[name^=line_]")
        assert quantity.input_value() == "3"  # what is left, to start with
        quantity.fill("2")
        assert page.locator("#id_location").input_value() == "main"
        page.fill("#id_carrier", "DHL")
        page.fill("#id_tracking_number", "JD0002")
        page.fill("#id_tracking_url", "https://tracking.example/JD0002")
        tab.shot("ship-form")
        page.click("input[type=submit][value=Ship]")
        page.wait_for_url(f"**/admin/orders/order/{order['id']}/change/")
        assert f"Shipped {order['number']}-1 from Main warehouse." in tab.messages()
        row = page.locator(f"tr.fulfillment[data-number='{order['number']}-1']")
        assert "2 x LMP-ARC" in row.inner_text() and "DHL JD0002" in row.inner_text()
        assert page.inner_text(".field-shipped").strip() == "2 of 3 (partial)"
        assert "Processing order" in page.inner_text("#content h1")
        tab.shot("order-partly-shipped")

        # The packing list of that shipment: order, address, the lines, where from.
        tab.goto(row.locator("a:text-is('Packing list')").get_attribute("href"))
        text = page.inner_text("body")
        assert f"Packing list {order['number']}-1" in text
        assert "1 Analytical Way" in text and "Ada Lovelace" in text
        cells = page.locator("table.packing-lines tbody tr td").all_inner_texts()
        assert cells == ["LMP-ARC", "Arc lamp", "2", "Main warehouse"], cells
        tab.shot("packing-list")

    checked = _check_inventory()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Inventory OK" in checked.stdout
