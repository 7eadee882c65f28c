"""A new staff member's first hour in the admin, in a real browser (Debian's Chromium driven
by Playwright) against the production web tier, a Celery worker and a private Redis.

The shop already has products, stock and this morning's orders. Grace logs in and reads
the dashboard's figures, publishes a draft product from the product list, receives stock
for it, sees a storefront's order arrive as a live notice, processes and completes it,
cancels another order with a reason, refunds a third with restock, creates an API key and
revokes it from its own page, and reads the order's timeline and the audit log.

One walk at 1,366 px (a common laptop); each key page is also photographed at 1,920 px
(a desktop screen), full page, into ``tests/artifacts/browser/``. With
``PMS_SCREENSHOTS_TO=docs/screenshots`` the curated pages (their top 1.75 screens) are
also written there, under stable names, for the README::

    PMS_SCREENSHOTS_TO=docs/screenshots ./scripts/test.sh tests/e2e/test_admin_first_hour.py

A module of its own, so its server starts on this module's database (see
``test_admin_confirmations_browser``).
"""

from __future__ import annotations

import io
import os
import re
import ssl
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.management import call_command

from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER, wait_out_midnight
from tests.e2e import test_admin_browser as admin_browser
from tests.e2e.conftest import ROOT
from tests.e2e.test_admin_browser import ARTIFACTS, PASSWORD, Session, _staff

# The same fixtures as the staff day's, each set up again for this module.
stack, browser, shots = admin_browser.stack, admin_browser.browser, admin_browser.shots

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# (width, height): a common laptop screen and a common desktop screen. The walk runs at
# the first; every key page is photographed at both.
WIDTHS = ((1366, 768), (1920, 1080))
# Where the curated screenshots go as well (docs/screenshots to refresh the README's).
SCREENSHOTS_TO = os.environ.get("PMS_SCREENSHOTS_TO", "")


class FirstHour(Session):
    """A staff member's tab that photographs each key page at every width."""

    def __init__(self, browser, base_url: str, shots: list[Path]) -> None:
        super().__init__(browser, base_url, "first-hour", shots)
        self.step = 0
        width, height = WIDTHS[0]
        self.page.set_viewport_size({"width": width, "height": height})

    def key_page(self, name: str, *, curated: bool = False) -> None:
        """Photograph the page at each width (full page); a curated page also into
        ``PMS_SCREENSHOTS_TO`` when that is set, at most 1.75 screens tall."""
        self.step += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for width, height in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": height})
            path = ARTIFACTS / f"{self.prefix}-{self.step:02d}-{name}-{width}.png"
            self.page.screenshot(path=str(path), full_page=True)
            self.shots.append(path)
            if curated and SCREENSHOTS_TO:
                folder = ROOT / SCREENSHOTS_TO
                folder.mkdir(parents=True, exist_ok=True)
                # The page's top, down to its buttons on most pages, not an endless strip.
                tall = self.page.evaluate("document.documentElement.scrollHeight")
                self.page.screenshot(
                    path=str(folder / f"{name}-{width}.png"),
                    full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": min(tall, height * 7 // 4)},
                )
        width, height = WIDTHS[0]
        self.page.set_viewport_size({"width": width, "height": height})

    def figures(self) -> dict[str, str]:
        """The dashboard's cards as read on the page: name → number."""
        return {
            card.get_attribute("data-metric"): card.inner_text().strip()
            for card in self.page.locator("[data-metric]").all()
        }

    def timeline(self) -> str:
        return self.page.inner_text(".order-timeline")

    def open_order(self, order: dict) -> None:
        """Find an order by its number with the list's search box and open it."""
        self.goto("/admin/orders/order/")
        self.page.fill("#searchbar", order["number"])
        self.page.press("#searchbar", "Enter")
        self.page.click(f"#result_list a:text-is('{order['number']}')")
        self.wait_for_path(f"/admin/orders/order/{order['id']}/change/")

    def wait_for_path(self, path: str) -> None:
        """Wait for the page at ``path``, whatever list filters its query carries along."""
        self.page.wait_for_url(lambda url: urlsplit(url).path == path)


def _levels_collected() -> None:
    """The hourly job's snapshot: stock levels (stock value, low, out of stock) and orders
    by status. Today's cards do not need it: they count live (tests/integration/
    test_dashboard.py places orders with no snapshot at all)."""
    call_command("collect_metrics", stdout=io.StringIO())


def _server(stack, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=stack["web"].base_url,
        headers={"Authorization": f"Api-Key {key}"},
        verify=ssl.create_default_context(cafile=str(stack["cert"])),
        timeout=15,
    )


def _place(stack, key: str, *lines) -> dict:
    """A storefront's order, through the server (it encrypts the customer's data)."""
    with _server(stack, key) as shop:
        placed = shop.post(
            "/api/v1/orders/",
            headers={"Idempotency-Key": uuid.uuid4().hex},
            json={
                "items": [{"product": p.pk, "quantity": q} for p, q in lines],
                "customer": ORDER_CUSTOMER,
                "shipping_address": ORDER_ADDRESS,
            },
        )
    assert placed.status_code == 201, placed.text
    return placed.json()


def test_a_new_staff_members_first_hour(
    stack, browser, system_actor, make_product, receive, make_key, shots
):
    from catalog.services import category_create

    # This morning's orders and the dashboard's count of them on one day (the walk takes
    # a minute or two on a busy machine).
    wait_out_midnight(seconds=300)
    # The shop as Grace finds it: a lighting range, stock, and this morning's two orders
    # (one waiting, one already completed), placed by the storefront through the server.
    lighting = category_create(actor=system_actor, name="Lighting")
    range_ = {
        "desk": ("LGT-DESK", "Desk lamp", "24.90", "published"),
        "floor": ("LGT-FLOOR", "Floor lamp", "89.00", "published"),
        "reading": ("LGT-READ", "Reading lamp", "19.50", "published"),
        "shade": ("LGT-SHADE", "Linen lamp shade", "12.00", "published"),
        "wall": ("LGT-WALL", "Wall lamp", "45.00", "draft"),
    }
    products = {
        key: make_product(
            status,
            sku=sku,
            name=name,
            price=Decimal(price),
            category=lighting,
            description=f"A {name.lower()} from the lighting range.",
        )
        for key, (sku, name, price, status) in range_.items()
    }
    receive(products["desk"], 40)
    receive(products["floor"], 12)
    receive(products["reading"], 3)  # low: the shop's threshold is 5
    storefront = make_key("storefront", name="Storefront")
    waiting = _place(stack, storefront, (products["desk"], 2))  # 49.80 EUR
    done = _place(stack, storefront, (products["floor"], 1))  # 89.00 EUR
    with _server(stack, make_key("orders:manage", name="Fulfilment")) as fulfilment:
        for step in ("process", "complete"):
            moved = fulfilment.post(f"/api/v1/orders/{done['id']}/{step}/")
            assert moved.status_code == 200, moved.text
    _levels_collected()
    _staff("grace", superuser=True)

    tab = FirstHour(browser, stack["web"].base_url, shots)
    page = tab.page
    with tab:
        # Log in: the dashboard, with this morning's figures.
        tab.login("grace", PASSWORD)
        assert page.url.endswith("/admin/")
        figures = tab.figures()
        assert figures["orders-today"] == "2"
        assert figures["revenue-today"] == "138.80"
        assert figures["pending-orders"] == "1"
        # On hand times price: 40 desk lamps (2 reserved), 11 floor lamps, 3 reading lamps.
        assert figures["stock-value"] == "2033.50"
        assert (figures["low-stock"], figures["out-of-stock"]) == ("1", "1")
        low = page.inner_text("#pms-low-stock")
        assert "LGT-SHADE Linen lamp shade: out of stock" in low
        assert "LGT-READ Reading lamp: 3 available (threshold 5)" in low
        tab.key_page("dashboard", curated=True)

        # Publish the draft: from the product list to its page and its Publish button.
        page.click("#content-main a:text-is('Products')")
        page.wait_for_url("**/admin/catalog/product/")
        listed = page.locator("#result_list tbody tr").all_inner_texts()
        assert len(listed) == 5
        assert any("Wall lamp" in row and "Draft" in row for row in listed), listed
        tab.key_page("product-list", curated=True)
        page.click("#result_list a:text-is('LGT-WALL')")
        page.wait_for_url(f"**/admin/catalog/product/{products['wall'].pk}/change/")
        assert page.locator("button[name=_fsm_transition_to][value=publish]").is_visible()
        tab.key_page("product-page", curated=True)
        page.click("button[name=_fsm_transition_to][value=publish]")
        assert "LGT-WALL published." in tab.messages()
        for button in ("unpublish", "archive"):
            assert page.locator(f"button[name=_fsm_transition_to][value={button}]").is_visible()
        assert page.locator("button[name=_fsm_transition_to][value=publish]").count() == 0
        tab.key_page("product-published")

        # Receive the first delivery of wall lamps.
        page.click("a.button:has-text('Receive / adjust stock')")
        page.wait_for_url(f"**/admin/catalog/product/{products['wall'].pk}/stock/")
        assert page.inner_text("#stock-on-hand") == "0"
        page.select_option("#id_kind", "receipt")
        page.fill("#id_quantity", "30")
        page.fill("#id_reason", "first delivery of wall lamps")
        tab.key_page("stock-page", curated=True)
        page.click("input[type=submit][value='Record movement']")
        page.wait_for_url(f"**/admin/catalog/product/{products['wall'].pk}/change/")
        assert "receipt of +30 recorded at Main warehouse; 30 on hand there" in tab.messages()

        # With the order list open, a storefront orders two wall lamps: the notice appears
        # without a reload.
        tab.goto("/admin/orders/order/")
        tab.wait_for_frame('"subscribed"')
        live = _place(stack, storefront, (products["wall"], 2))
        notice = page.locator(".pms-notice[data-kind=order]")
        notice.wait_for(state="visible", timeout=30_000)
        assert f"New order {live['number']}: 90.00 EUR" in notice.inner_text()
        assert page.url.endswith("/admin/orders/order/")  # no reload, no navigation
        tab.key_page("live-order-notice")

        # Process it from the notice's link, then complete it: the timeline tells the story.
        notice.locator("a").click()
        tab.wait_for_path(f"/admin/orders/order/{live['id']}/change/")
        page.click("button[name=_fsm_transition_to][value=process]")
        assert f"Order {live['number']} processed." in tab.messages()
        page.click("button[name=_fsm_transition_to][value=complete]")
        assert f"Order {live['number']} completed." in tab.messages()
        steps = [line.split()[0] for line in tab.timeline().splitlines()]
        assert steps == ["Placed", "Processed", "Completed"]
        assert "Completed" in page.inner_text(".field-status")
        assert "by grace" in tab.timeline().splitlines()[-1]
        tab.key_page("order-page", curated=True)

        # Cancel the waiting order: its own page asks why.
        tab.open_order(waiting)
        page.click("button[name=_fsm_transition_to][value=cancel]")
        tab.wait_for_path(f"/admin/orders/order/{waiting['id']}/cancel/")
        page.fill("#id_reason", "The customer asked to cancel by phone")
        tab.key_page("cancel-confirmation")
        page.click("input[type=submit][value='Cancel the order']")
        tab.wait_for_path(f"/admin/orders/order/{waiting['id']}/change/")
        assert f"Order {waiting['number']} cancelled." in tab.messages()
        assert "reason: The customer asked to cancel by phone" in tab.timeline()

        # Refund the completed one, the floor lamp going back on hand.
        tab.open_order(done)
        page.click("button[name=_fsm_transition_to][value=refund]")
        tab.wait_for_path(f"/admin/orders/order/{done['id']}/refund/")
        page.check("#id_restock")
        tab.key_page("refund-confirmation")
        page.click("input[type=submit][value=Refund]")
        tab.wait_for_path(f"/admin/orders/order/{done['id']}/change/")
        assert f"Order {done['number']} refunded." in tab.messages()
        assert "goods put back on hand" in tab.timeline()
        tab.goto(f"/admin/catalog/product/{products['floor'].pk}/stock/")
        assert page.inner_text("#stock-on-hand") == "12"

        # An API key for a partner, shown once, then revoked from its own page.
        tab.goto("/admin/apikeys/apikey/add/")
        page.fill("#id_name", "Partner feed")
        page.check("input[name=scope_choices][value=storefront]")
        page.click("input[name=_save]")
        page.wait_for_url(re.compile(r".*/admin/apikeys/apikey/\d+/created/$"))
        assert page.input_value("#new-api-key").startswith("pms_")
        assert "shown only this once" in page.inner_text("#content-main")
        tab.key_page("api-key-created")
        page.click('a:has-text("This key\'s page")')
        page.wait_for_url(re.compile(r".*/admin/apikeys/apikey/\d+/change/$"))
        page.click("a.revokelink")
        page.wait_for_url(re.compile(r".*/admin/apikeys/apikey/\d+/revoke/$"))
        assert "Partner feed" in page.inner_text("#content-main")
        tab.key_page("api-key-revoke-confirmation")
        page.click("input[type=submit][value='Yes, revoke it']")
        assert "Revoked the API key “Partner feed”" in tab.messages()
        assert page.locator("a.revokelink").count() == 0

        # The audit log: the live order's History, then everything Grace did this hour.
        tab.goto(f"/admin/orders/order/{live['id']}/change/")
        page.click("a.historylink")
        page.wait_for_url("**/admin/audit/auditlog/**")
        actions = page.locator("#result_list td.field-action_name").all_inner_texts()
        assert sorted(actions) == ["Order completed", "Order placed", "Order processed"]
        tab.goto("/admin/audit/auditlog/")
        page.fill("#searchbar", "grace")
        page.press("#searchbar", "Enter")
        page.wait_for_url("**/admin/audit/auditlog/?q=grace")
        rows = page.locator("#result_list tbody tr")
        by_grace = {
            action
            for actor, action in zip(
                rows.locator("td.field-actor").all_inner_texts(),
                rows.locator("td.field-action_name").all_inner_texts(),
                strict=True,
            )
            if actor == "grace"
        }
        assert by_grace >= {
            "Product published",
            "Stock received",
            "Order processed",
            "Order completed",
            "Order cancelled",
            "Order refunded",
        }, by_grace
        tab.key_page("audit-log", curated=True)


def test_an_order_placed_while_staff_change_pages_still_shows_its_notice(
    stack, browser, make_product, receive, make_key, shots
):
    """Staff click a link; while the next page loads (no socket open), a storefront places
    an order. The next page's socket asks for what came after the last event the tab knew
    of, so the notice still appears; it appears once."""
    lamp = make_product("published", sku="LGT-DESK-2", name="Desk lamp", price=Decimal("24.90"))
    receive(lamp, 10)
    storefront = make_key("storefront", name="Storefront")
    _staff("ada", superuser=True)
    tab = Session(browser, stack["web"].base_url, "between-pages", shots)
    page = tab.page
    with tab:
        tab.login("ada", PASSWORD)
        tab.goto("/admin/catalog/product/")
        tab.wait_for_frame('"subscribed"')
        page.goto("about:blank")  # between two pages: this tab has no socket open
        order = _place(stack, storefront, (lamp, 1))
        tab.goto("/admin/orders/order/")  # made after the order: its newest event is later
        notice = page.locator(".pms-notice[data-kind=order]")
        notice.wait_for(state="visible", timeout=30_000)
        assert f"New order {order['number']}" in notice.inner_text()
        page.wait_for_timeout(1_000)  # a live copy of a replayed event would show by now
        assert notice.count() == 1
