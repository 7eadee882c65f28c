"""Refunds and a return from the order's page in a real browser (Debian's Chromium driven
by Playwright) against the production web tier, a Celery worker and a private Redis.

An Order manager (not a superuser: the role holds every step) opens a completed order,
pays part of it back (one lamp of three), records the customer's return of another lamp,
receives it back on hand at the outlet store (a location chosen on the form), refunds it
for a little less than its price, and reads all of it on the order's page.
``manage.py check_inventory`` on the server's database finds nothing out of line after.

A module of its own, so its server starts on this module's database (see
``test_admin_confirmations_browser``).
"""

from __future__ import annotations

import re
import ssl
import time
from decimal import Decimal

import httpx
import pytest

from tests.e2e import test_admin_browser as admin_browser
from tests.e2e.test_admin_browser import PASSWORD, Session, _staff
from tests.e2e.test_admin_locations_browser import _check_inventory, _place

# The same fixtures as the staff day's, each set up again for this module.
stack, browser, shots = admin_browser.stack, admin_browser.browser, admin_browser.shots

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WALK_SECONDS = 60


class OrderDesk(Session):
    """An order manager's tab, reading the order page's refunds and returns."""

    def section(self) -> str:
        return self.page.inner_text("#refunds-and-returns")

    def submit(self, label: str) -> str:
        self.page.click(f"input[type=submit][value='{label}']")
        self.page.wait_for_url(re.compile(r".*/admin/orders/order/[0-9a-f-]+/change/$"))
        return self.messages()


def test_an_order_manager_refunds_part_and_takes_a_return_back_from_the_order_page(
    stack, browser, make_product, make_key, shots
):
    from audit.actors import Actor
    from inventory.locations import location_create
    from inventory.models import Location, StockLevel
    from inventory.services import stock_record_movement
    from orders.models import Refund, Return

    Location.objects.get_or_create(
        code="main", defaults={"name": "Main warehouse", "priority": 100}
    )
    system = Actor.system("tests")
    location_create(actor=system, code="outlet", name="Outlet store", priority=300)
    lamp = make_product("published", sku="LGT-TBL", name="Table lamp", price=Decimal("45.00"))
    stock_record_movement(
        actor=system, product_id=lamp.pk, kind="receipt", quantity=10, reason="delivery"
    )
    order = _place(stack, make_key("storefront", name="Storefront"), (lamp, 3))
    # Moved by the back office through the server (the customer's data is encrypted with
    # the server's keys, which this process does not hold).
    with httpx.Client(
        base_url=stack["web"].base_url,
        headers={"Authorization": f"Api-Key {make_key('admin', name='Back office')}"},
        verify=ssl.create_default_context(cafile=str(stack["cert"])),
        timeout=15,
    ) as back:
        for move in ("process", "complete"):
            moved = back.post(f"/api/v1/orders/{order['id']}/{move}/", json={})
            assert moved.status_code == 200, moved.text
    _staff("olive", group="Order managers")

    tab = OrderDesk(browser, stack["web"].base_url, "returns", shots)
    tab.page.set_viewport_size({"width": 1366, "height": 768})
    page = tab.page
    started = time.monotonic()
    with tab:
        tab.login("olive", PASSWORD)

        # 1. The order's page: nothing refunded or returned yet.
        tab.goto(f"/admin/orders/order/{order['id']}/change/")
        assert "Refunded 0.00 EUR of 135.00 EUR" in tab.section()
        tab.shot("order")

        # 2. Refund part…: one lamp, at its price (the amount left empty).
        page.click("#refunds-and-returns a.refund-part")
        page.fill(f"#id_units_{lamp.pk}", "1")
        page.fill("#id_reason", "shade cracked")
        tab.shot("refund-part")
        assert f"Order {order['number']}: refund paid." in tab.submit("Refund")
        assert "Refunded 45.00 EUR of 135.00 EUR" in tab.section()
        refund = Refund.objects.get()
        assert page.locator(f"tr.refund[data-number='{refund.number}']").is_visible()

        # 3. Request a return…: another lamp comes back.
        page.click("#refunds-and-returns a.request-return")
        page.fill(f"#id_units_{lamp.pk}", "1")
        page.fill("#id_reason", "wrong colour")
        assert "return requested" in tab.submit("Request the return")
        rma = Return.objects.get()
        row = page.locator(f"tr.return[data-number='{rma.number}']")
        assert row.get_attribute("data-status") == "requested"
        tab.shot("return-requested")

        # 4. Receive…: back on hand at the outlet store, chosen on the form.
        row.locator("a.return-receive").click()
        page.fill(f"#id_restocked_{lamp.pk}", "1")
        page.select_option(f"#id_location_{lamp.pk}", "outlet")
        page.fill(f"#id_damaged_{lamp.pk}", "0")
        tab.shot("return-receive")
        assert f"Return {rma.number} received." in tab.submit("Receive")
        assert row.get_attribute("data-status") == "received"
        assert "1 restocked at outlet" in row.inner_text()

        # 5. Refund…: the amount offered is the lamp's price; the manager pays a bit less.
        row.locator("a.return-refund").click()
        assert page.input_value("#id_amount") == "45.00"
        page.fill("#id_amount", "40.00")
        page.fill("#id_reason", "no original box")
        assert f"Return {rma.number} refunded." in tab.submit("Refund")
        assert row.get_attribute("data-status") == "refunded"
        assert "Refunded 85.00 EUR of 135.00 EUR" in tab.section()
        timeline = page.inner_text(".field-timeline")
        assert "Return received" in timeline and "Return refunded" in timeline
        tab.shot("return-refunded")
        walked = time.monotonic() - started

    level = StockLevel.objects.get(product=lamp, location__code="outlet")
    assert (level.on_hand, level.reserved) == (1, 0)
    checked = _check_inventory()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Inventory OK" in checked.stdout
    print(f"\n  walk: {walked:.1f} s")
    assert walked < WALK_SECONDS, f"the walk took {walked:.1f} s"
