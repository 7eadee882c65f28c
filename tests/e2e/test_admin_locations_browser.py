"""Stock at two locations in a real browser (Debian's Chromium driven by Playwright)
against the production web tier, a Celery worker and a private Redis.

A Warehouse-staff member (not a superuser: the role holds every step) adds a store next to
the main warehouse, receives a delivery at each, transfers two units from the store to the
warehouse (Dispatch, then Receive all), and sees a storefront's order split over the two
locations on the order's page. ``manage.py check_inventory`` on the server's database
finds nothing out of line after it.

A module of its own, so its server starts on this module's database (see
``test_admin_confirmations_browser``).
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import time
import uuid
from decimal import Decimal

import httpx
import pytest

from tests.conftest import order_body
from tests.e2e import test_admin_browser as admin_browser
from tests.e2e.conftest import ROOT
from tests.e2e.processes import base_env
from tests.e2e.test_admin_browser import PASSWORD, Session, _staff

# The same fixtures as the staff day's, each set up again for this module.
stack, browser, shots = admin_browser.stack, admin_browser.browser, admin_browser.shots

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SKU = "LGT-ARC"
# The walk itself, from the login to the integrity check (the stack's start is apart).
WALK_SECONDS = 60


class Warehouse(Session):
    """A warehouse member's tab, reading the admin's stock tables as the page shows them."""

    def levels(self, product_id: int) -> dict[str, list[str]]:
        """The product page's table of levels: location code (or "total") → the row's
        cells as read (On hand, Reserved, Available)."""
        self.goto(f"/admin/catalog/product/{product_id}/change/")
        table = self.page.locator("table.stock-by-location")
        rows = {
            row.get_attribute("data-location"): row.locator("td").all_inner_texts()
            for row in table.locator("tbody tr[data-location]").all()
        }
        rows["total"] = table.locator("tr.stock-total td").all_inner_texts()
        return rows

    def receive(self, product_id: int, location: str, quantity: int, reason: str) -> str:
        """Receive goods at a location with the product's stock form; return the message."""
        self.goto(f"/admin/catalog/product/{product_id}/change/")
        self.page.click("a.button:has-text('Receive / adjust stock')")
        self.page.wait_for_url(f"**/admin/catalog/product/{product_id}/stock/")
        self.page.select_option("#id_location", label=location)
        self.page.select_option("#id_kind", "receipt")
        self.page.fill("#id_quantity", str(quantity))
        self.page.fill("#id_reason", reason)
        self.page.click("input[type=submit][value='Record movement']")
        self.page.wait_for_url(f"**/admin/catalog/product/{product_id}/change/")
        return self.messages()

    def transfer_step(self, button: str) -> str:
        self.page.click(f"button[name=_fsm_transition_to][value={button}]")
        return self.messages()


def _place(stack, key: str, *lines) -> dict:
    """A storefront's order, through the server (it encrypts the customer's data)."""
    with httpx.Client(
        base_url=stack["web"].base_url,
        headers={"Authorization": f"Api-Key {key}"},
        verify=ssl.create_default_context(cafile=str(stack["cert"])),
        timeout=15,
    ) as shop:
        placed = shop.post(
            "/api/v1/orders/",
            headers={"Idempotency-Key": uuid.uuid4().hex},
            json=order_body(*lines),
        )
    assert placed.status_code == 201, placed.text
    return placed.json()


def _check_inventory() -> subprocess.CompletedProcess:
    """``manage.py check_inventory`` as an operator runs it, on the server's database."""
    return subprocess.run(
        [sys.executable, "manage.py", "check_inventory"],
        cwd=ROOT,
        env=base_env(os.environ.get("REDIS_URL")),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_warehouse_staff_stock_two_locations_transfer_and_see_an_order_split(
    stack, browser, make_product, make_key, shots
):
    from inventory.models import Location

    # The shop as it was before: one location (the migration's "main"; a database flushed
    # by an earlier test makes it again, as a first receipt would), one lamp on sale and
    # none in stock.
    Location.objects.get_or_create(
        code="main", defaults={"name": "Main warehouse", "priority": 100}
    )
    lamp = make_product("published", sku=SKU, name="Arc floor lamp", price=Decimal("129.00"))
    storefront = make_key("storefront", name="Storefront")
    _staff("wanda", group="Warehouse staff")

    tab = Warehouse(browser, stack["web"].base_url, "locations", shots)
    tab.page.set_viewport_size({"width": 1366, "height": 768})
    page = tab.page
    started = time.monotonic()
    with tab:
        tab.login("wanda", PASSWORD)

        # 1. Inventory → Locations → Add: a store, after the warehouse.
        page.click("#content-main a:text-is('Locations')")
        page.wait_for_url("**/admin/inventory/location/")
        page.click(".object-tools a.addlink")
        page.wait_for_url("**/admin/inventory/location/add/")
        page.fill("#id_code", "store")
        page.fill("#id_name", "City store")
        page.fill("#id_address", "12 Market Street")
        page.fill("#id_priority", "200")
        tab.shot("location-add")
        page.click("input[name=_save]")
        assert "City store (store)" in tab.messages()
        assert "added successfully" in tab.messages()
        listed = [
            row.locator("th, td:not(.action-checkbox)").all_inner_texts()
            for row in page.locator("#result_list tbody tr").all()
        ]
        # Name, code, priority, active (an icon), units on hand: by priority.
        assert [cells[:3] + cells[4:] for cells in listed] == [
            ["Main warehouse", "main", "100", "0"],
            ["City store", "store", "200", "0"],
        ], listed
        tab.shot("locations")

        # 2. A delivery at each location, the location chosen in the receive form.
        assert "receipt of +3 recorded at Main warehouse; 3 on hand there." in tab.receive(
            lamp.pk, "Main warehouse (main)", 3, "delivery note 4711"
        )
        assert "receipt of +5 recorded at City store; 5 on hand there." in tab.receive(
            lamp.pk, "City store (store)", 5, "delivery note 4712"
        )
        assert tab.levels(lamp.pk) == {
            "main": ["3", "0", "3"],
            "store": ["5", "0", "5"],
            "total": ["8", "0", "8"],
        }
        assert "8 on hand, 0 reserved, 8 available" in page.inner_text(".field-stock_summary")
        tab.shot("stock-at-two-locations")

        # 3. Inventory → Transfers → Add: two lamps from the store to the warehouse.
        tab.goto("/admin/")
        page.click("#content-main a:text-is('Transfers')")
        page.wait_for_url("**/admin/inventory/transfer/")
        page.click(".object-tools a.addlink")
        page.wait_for_url("**/admin/inventory/transfer/add/")
        page.select_option("#id_from_location", label="City store (store)")
        page.select_option("#id_to_location", label="Main warehouse (main)")
        page.fill("#id_note", "restock the warehouse shelf")
        # The line's product: the admin's autocomplete (search by SKU, pick the match).
        page.click("#lines-0 .field-product .select2-selection")
        page.fill(".select2-container--open .select2-search__field", SKU)
        page.click(f".select2-results__option:has-text('{SKU}')")
        page.fill("#id_lines-0-quantity", "2")
        tab.shot("transfer-add")
        page.click("input[name=_continue]")
        page.wait_for_url(re.compile(r".*/admin/inventory/transfer/\d+/change/$"))
        assert "was added successfully" in tab.messages()
        number = re.search(r"Draft transfer (\S+)", page.inner_text("#content h1"))
        assert number, page.inner_text("#content")
        number = number.group(1)
        transfer_url = page.url
        tab.shot("transfer-draft")

        assert f"Transfer {number} dispatched." in tab.transfer_step("dispatch")
        assert page.inner_text(".field-in_transit .readonly").strip() == "2"
        assert page.locator("button[name=_fsm_transition_to][value=receive]").is_visible()
        tab.shot("transfer-in-transit")
        # On the way: gone from the store, not yet at the warehouse.
        assert tab.levels(lamp.pk) == {
            "main": ["3", "0", "3"],
            "store": ["3", "0", "3"],
            "total": ["6", "0", "6"],
        }
        tab.shot("stock-in-transit")

        page.goto(transfer_url)
        assert f"Transfer {number} received." in tab.transfer_step("receive")
        assert "Received transfer" in page.inner_text("#content")
        assert page.locator("button[name=_fsm_transition_to]").count() == 0
        tab.shot("transfer-received")
        assert tab.levels(lamp.pk) == {
            "main": ["5", "0", "5"],
            "store": ["3", "0", "3"],
            "total": ["8", "0", "8"],
        }

        # 4. A storefront orders seven: five from the warehouse (first by priority), two
        # from the store; the order's page says so.
        order = _place(stack, storefront, (lamp, 7))
        tab.goto(f"/admin/orders/order/{order['id']}/change/")
        assert page.inner_text(".field-allocated").strip() == (
            "5 at Main warehouse, 2 at City store"
        )
        tab.shot("order-split")
        assert tab.levels(lamp.pk) == {
            "main": ["5", "5", "0"],
            "store": ["3", "2", "1"],
            "total": ["8", "7", "1"],
        }
        walked = time.monotonic() - started

    # 5. The ledger, the levels, the totals and the order's allocations agree.
    checked = _check_inventory()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Inventory OK" in checked.stdout
    print(f"\n  walk: {walked:.1f} s")
    assert walked < WALK_SECONDS, f"the walk took {walked:.1f} s"
