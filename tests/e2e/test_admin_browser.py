"""The admin in a real browser (Debian's Chromium driven by Playwright) against the
production web process over HTTPS/WSS, a Celery worker and a private Redis.

A staff day: log in, create a category and a product with the admin forms, publish it,
receive stock, see a storefront's order arrive as a live notice without reloading, move it
through Process → Complete → Refund (with restock), and find all of it in the audit log.
A Warehouse-staff member can receive stock but cannot change a price.

Screenshots of every step land in ``tests/artifacts/browser/``.
"""

from __future__ import annotations

import os
import re
import ssl
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.conftest import REQUIRE_SERVICES, _need
from tests.e2e.conftest import ROOT
from tests.e2e.processes import Redis, base_env, make_tls_cert, start_server, start_worker

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
PASSWORD = "a long enough passphrase 42"
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    """HTTPS web server + worker (with beat) on the test database and a private Redis, so
    the worker's events reach the server's websockets through the channel layer."""
    _need("PostgreSQL", settings.DATABASE_BACKEND == "postgresql")
    workdir = tmp_path_factory.mktemp("browser")
    redis = Redis(workdir)
    redis.start()
    cert, key = make_tls_cert(workdir)
    env = base_env(redis.url)
    procs = []
    try:
        procs.append(start_server(workdir, env, tls=(cert, key)))
        procs.append(start_worker(workdir, env))
        yield {"web": procs[0], "worker": procs[1], "cert": cert}
    finally:
        for proc in procs:
            proc.stop()
        redis.stop()


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        message = f"needs Chromium at {CHROMIUM} (scripts/test.sh installs Debian's package)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM
    # calls (fixtures, checks) are plain synchronous code all the same.
    with (
        pytest.MonkeyPatch.context() as patch,
        sync_playwright() as playwright,
    ):
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class Session:
    """One staff member's browser tab, taking a numbered screenshot per step."""

    def __init__(self, browser, base_url: str, prefix: str, shots: list[Path]) -> None:
        self.base_url = base_url
        self.context = browser.new_context(
            ignore_https_errors=True, viewport={"width": 1280, "height": 900}
        )
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.prefix = prefix
        self.shots = shots
        self.frames: list[str] = []
        self.page.on("websocket", self._watch_socket)

    def _watch_socket(self, socket) -> None:
        # A new page's socket: the last page's frames (its "subscribed") say nothing of it.
        self.frames.clear()
        socket.on("framereceived", lambda payload: self.frames.append(str(payload)))

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.prefix}-{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def login(self, username: str, password: str) -> None:
        self.goto("/admin/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("input[type=submit]")
        self.page.wait_for_selector("#user-tools")

    def messages(self) -> str:
        """The admin's messages after a form was sent (an error note if it came back)."""
        self.page.wait_for_selector("ul.messagelist, p.errornote, ul.errorlist")
        found = self.page.locator("ul.messagelist li, p.errornote, ul.errorlist li")
        return " ".join(found.all_inner_texts())

    def wait_for_frame(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in frame for frame in self.frames):
            if time.monotonic() > deadline:
                pytest.fail(f"no websocket frame with {text!r}; got {self.frames!r}")
            self.page.wait_for_timeout(100)

    def audit_actions(self, object_type: str, object_id) -> list[str]:
        self.goto(f"/admin/audit/auditlog/?object_type={object_type}&object_id={object_id}")
        return self.page.locator("#result_list td.field-action_name").all_inner_texts()

    def close(self) -> None:
        self.context.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        """Photograph the page a step failed on (``…-FAILED.png``), then close the tab."""
        try:
            if error is not None:
                self.shot("FAILED")
        finally:
            self.close()


@pytest.fixture
def shots(capsys):
    taken: list[Path] = []
    yield taken
    with capsys.disabled():
        for path in taken:
            print(f"\n  screenshot: {path.relative_to(ROOT)}", end="")
        print()


def _staff(username: str, *, superuser: bool = False, group: str | None = None):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    from pms_backend.staff.roles import ROLES

    users = get_user_model().objects
    if superuser:
        return users.create_superuser(username, f"{username}@example.com", PASSWORD)
    user = users.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    # The roles come from a migration; a flushed transactional database lost them.
    role, _ = Group.objects.get_or_create(name=group)
    role.permissions.set(
        Permission.objects.get(content_type__app_label=label, codename=codename)
        for label, codename in (code.split(".") for code in ROLES[group])
    )
    user.groups.add(role)
    return user


def test_a_staff_day_in_the_admin(stack, browser, make_key, shots):
    from catalog.models import Product
    from inventory.models import Stock
    from orders.models import Order

    _staff("boss", superuser=True)
    tab = Session(browser, stack["web"].base_url, "staff", shots)
    page = tab.page
    with tab:
        # Log in.
        tab.login("boss", PASSWORD)
        assert page.url.endswith("/admin/")
        tab.shot("logged-in")

        # A category, through the admin form (the slug fills itself from the name).
        tab.goto("/admin/catalog/category/add/")
        page.fill("#id_name", "Lamps")
        page.locator("#id_slug").press("End")
        tab.shot("category-form")
        page.click("input[name=_save]")
        assert "was added successfully" in tab.messages()
        tab.shot("category-added")

        # A product, through the admin form: it starts as a draft.
        sku = f"LAMP-{uuid.uuid4().hex[:6].upper()}"
        tab.goto("/admin/catalog/product/add/")
        page.fill("#id_sku", sku)
        page.fill("#id_name", "Desk lamp")
        page.fill("#id_description", "A lamp for a desk.")
        page.fill("#id_price", "24.90")
        page.fill("#id_currency", "EUR")
        page.select_option("#id_category", label="Lamps")
        page.fill("#id_attributes", '{"colour": "brass"}')
        tab.shot("product-form")
        page.click("input[name=_continue]")
        assert "was added successfully" in tab.messages()
        product_id = int(re.search(r"/product/(\d+)/change/", page.url).group(1))
        product = Product.objects.get(pk=product_id)
        assert (product.sku, product.status, product.price) == (sku, "draft", Decimal("24.90"))
        tab.shot("product-draft")

        # Publish with the transition button.
        page.click("button[name=_fsm_transition_to][value=publish]")
        assert f"{sku} published." in tab.messages()
        assert Product.objects.get(pk=product_id).status == "published"
        assert page.locator("button[name=_fsm_transition_to][value=archive]").is_visible()
        tab.shot("product-published")

        # Receive stock through the stock form.
        page.click("a.button:has-text('Receive / adjust stock')")
        page.wait_for_url(f"**/admin/catalog/product/{product_id}/stock/")
        assert page.inner_text("#stock-on-hand") == "0"
        page.select_option("#id_kind", "receipt")
        page.fill("#id_quantity", "25")
        page.fill("#id_reason", "first delivery")
        tab.shot("stock-form")
        page.click("input[type=submit][value='Record movement']")
        page.wait_for_url(f"**/admin/catalog/product/{product_id}/change/")
        assert "receipt of +25 recorded at Main warehouse; 25 on hand there" in tab.messages()
        assert Stock.objects.get(product_id=product_id).on_hand == 25
        tab.shot("stock-received")

        # With the product page open (and its events socket subscribed), a storefront
        # places an order: the notice appears without a reload.
        tab.wait_for_frame('"subscribed"')
        shop = httpx.Client(
            base_url=stack["web"].base_url,
            headers={"Authorization": f"Api-Key {make_key('storefront', name='shop')}"},
            verify=ssl.create_default_context(cafile=str(stack["cert"])),
            timeout=15,
        )
        with shop:
            placed = shop.post(
                "/api/v1/orders/",
                headers={"Idempotency-Key": uuid.uuid4().hex},
                json={
                    "items": [{"product": product_id, "quantity": 3}],
                    "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
                    "shipping_address": {
                        "line1": "1 Analytical Way",
                        "city": "London",
                        "postal_code": "N1",
                        "country": "GB",
                    },
                },
            )
        assert placed.status_code == 201, placed.text
        order = placed.json()
        url_before = page.url
        notice = page.locator(".pms-notice[data-kind=order]")
        notice.wait_for(state="visible", timeout=30_000)
        assert order["number"] in notice.inner_text()
        assert "74.70 EUR" in notice.inner_text()
        assert page.url == url_before  # no reload, no navigation
        tab.shot("live-order-notice")

        # The notice links to the order: Process, then Complete, with the buttons.
        notice.locator("a").click()
        page.wait_for_url(f"**/admin/orders/order/{order['id']}/change/")
        assert order["number"] in page.content()
        tab.shot("order-pending")
        page.click("button[name=_fsm_transition_to][value=process]")
        assert f"Order {order['number']} processed." in tab.messages()
        tab.shot("order-processing")
        page.click("button[name=_fsm_transition_to][value=complete]")
        assert f"Order {order['number']} completed." in tab.messages()
        assert Order.objects.get(pk=order["id"]).status == "completed"
        assert Stock.objects.get(product_id=product_id).on_hand == 22
        tab.shot("order-completed")

        # Refund: the admin asks whether to restock.
        page.click("button[name=_fsm_transition_to][value=refund]")
        page.wait_for_url(f"**/admin/orders/order/{order['id']}/refund/")
        page.check("#id_restock")
        tab.shot("refund-form")
        page.click("input[type=submit][value=Refund]")
        page.wait_for_url(f"**/admin/orders/order/{order['id']}/change/")
        assert f"Order {order['number']} refunded." in tab.messages()
        refunded = Order.objects.get(pk=order["id"])
        assert (refunded.status, refunded.restocked) == ("refunded", True)
        assert Stock.objects.get(product_id=product_id).on_hand == 25
        tab.shot("order-refunded")

        # All of it is in the audit log, found by object (the History link does the same).
        page.click("a.historylink")
        page.wait_for_url("**/admin/audit/auditlog/**")
        assert f"object_id={order['id']}" in page.url
        order_actions = page.locator("#result_list td.field-action_name").all_inner_texts()
        # In words, as staff read them (the log stores order.created, order.process, …).
        assert sorted(order_actions) == sorted(
            ["Order placed", "Order processed", "Order completed", "Order refunded"]
        )
        tab.shot("audit-order")
        assert sorted(tab.audit_actions("catalog.product", product_id)) == [
            "Product created",
            "Product published",
        ]
        tab.shot("audit-product")
        stock_actions = tab.audit_actions("inventory.stock", product_id)
        assert sorted(stock_actions) == [
            "Stock received",
            "Stock reserved",
            "Stock returned",
            "Stock sold",
        ]
        actors = page.locator("#result_list td.field-actor").all_inner_texts()
        # As staff say it: the user's name, not the stored "user:boss".
        assert "boss" in actors and not any(a.startswith("user:") for a in actors)
        tab.shot("audit-stock")
        category_id = Product.objects.get(pk=product_id).category_id
        assert tab.audit_actions("catalog.category", category_id) == ["Category created"]
        tab.shot("audit-category")


def test_warehouse_staff_receive_stock_but_cannot_change_prices(
    stack, browser, make_product, shots
):
    from catalog.models import Product
    from inventory.models import Stock

    product = make_product("published", price=Decimal("10.00"))
    _staff("keeper", group="Warehouse staff")
    tab = Session(browser, stack["web"].base_url, "warehouse", shots)
    page = tab.page
    change_url = f"/admin/catalog/product/{product.pk}/change/"
    with tab:
        tab.login("keeper", PASSWORD)
        tab.shot("logged-in")

        # The product page is read-only: the price is text, there is nothing to save and
        # no transition button.
        tab.goto(change_url)
        assert page.locator("#id_price").count() == 0
        assert "10.00" in page.locator(".field-price .readonly").inner_text()
        assert page.locator("input[name=_save]").count() == 0
        assert page.locator("button[name=_fsm_transition_to]").count() == 0
        tab.shot("product-read-only")

        # Posting the change form anyway (a forged request with a valid CSRF token) is refused.
        token = next(c["value"] for c in tab.context.cookies() if c["name"] == "csrftoken")
        forged = tab.context.request.post(
            stack["web"].base_url + change_url,
            form={
                "csrfmiddlewaretoken": token,
                "sku": product.sku,
                "name": product.name,
                "slug": product.slug,
                "description": product.description,
                "price": "1.00",
                "currency": product.currency,
                "category": str(product.category_id),
                "attributes": "{}",
                "_save": "Save",
            },
            headers={"Referer": stack["web"].base_url + change_url},
            max_redirects=0,
        )
        assert forged.status == 403
        assert Product.objects.get(pk=product.pk).price == Decimal("10.00")

        # Receiving stock is theirs to do.
        page.click("a.button:has-text('Receive / adjust stock')")
        page.wait_for_url(f"**/admin/catalog/product/{product.pk}/stock/")
        page.select_option("#id_kind", "receipt")
        page.fill("#id_quantity", "12")
        page.fill("#id_reason", "pallet 7")
        tab.shot("stock-form")
        page.click("input[type=submit][value='Record movement']")
        page.wait_for_url(f"**{change_url}")
        assert "receipt of +12 recorded at Main warehouse; 12 on hand there" in tab.messages()
        assert Stock.objects.get(product_id=product.pk).on_hand == 12
        tab.shot("stock-received")


def test_a_new_api_key_is_shown_once_and_revoked_after_a_confirmation(stack, browser, shots):
    from pms_backend.apikeys.models import ApiKey

    _staff("keyholder", superuser=True)
    tab = Session(browser, stack["web"].base_url, "apikeys", shots)
    page = tab.page

    def products_with(raw: str) -> int:
        with httpx.Client(
            base_url=stack["web"].base_url,
            verify=ssl.create_default_context(cafile=str(stack["cert"])),
            timeout=15,
        ) as shop:
            return shop.get(
                "/api/v1/products/", headers={"Authorization": f"Api-Key {raw}"}
            ).status_code

    with tab:
        tab.login("keyholder", PASSWORD)

        # Create: the form's POST redirects to the one page that shows the secret.
        tab.goto("/admin/apikeys/apikey/add/")
        page.fill("#id_name", "Storefront EU")
        page.check("input[name=scope_choices][value=storefront]")
        tab.shot("key-form")
        page.click("input[name=_save]")
        page.wait_for_url(re.compile(r".*/admin/apikeys/apikey/\d+/created/$"))
        raw = page.input_value("#new-api-key")
        assert re.fullmatch(r"pms_[a-z2-7]{8}_[A-Za-z0-9_-]{43}", raw), raw
        assert "shown only this once" in page.inner_text("#content-main")
        tab.shot("key-created")
        assert products_with(raw) == 200

        # A reload is a GET of that page: no second key, and the secret is gone.
        page.reload()
        assert page.locator("#new-api-key").count() == 0
        assert "cannot be shown again" in page.inner_text("#key-already-shown")
        assert raw.split("_", 2)[2] not in page.content()  # the secret may itself hold "_"
        assert ApiKey.objects.filter(name="Storefront EU").count() == 1
        tab.shot("key-created-reloaded")

        # Revoke from the key's own page: a confirmation first, and Cancel leaves it live.
        page.click('a:has-text("This key\'s page")')
        page.wait_for_url(re.compile(r".*/admin/apikeys/apikey/\d+/change/$"))
        key = ApiKey.objects.get(name="Storefront EU")
        page.click("a.revokelink")
        page.wait_for_url(f"**/admin/apikeys/apikey/{key.pk}/revoke/")
        content = page.inner_text("#content-main")
        for shown in ("Storefront EU", f"pms_{key.prefix}_", "catalog:read"):
            assert shown in content
        tab.shot("revoke-confirmation")
        page.click("a.cancel-link")
        page.wait_for_url(f"**/admin/apikeys/apikey/{key.pk}/change/")
        assert products_with(raw) == 200

        page.click("a.revokelink")
        page.click("input[type=submit][value='Yes, revoke it']")
        page.wait_for_url(f"**/admin/apikeys/apikey/{key.pk}/change/")
        assert "Revoked the API key “Storefront EU”" in tab.messages()
        assert page.locator("a.revokelink").count() == 0
        key.refresh_from_db()
        assert key.revoked_at is not None
        assert products_with(raw) == 401
        tab.shot("key-revoked")


def test_a_webhook_signing_secret_is_shown_once_and_a_reload_rotates_nothing(stack, browser, shots):
    from webhooks.models import WebhookEndpoint

    _staff("hookkeeper", superuser=True)
    tab = Session(browser, stack["web"].base_url, "webhooks", shots)
    page = tab.page
    with tab:
        tab.login("hookkeeper", PASSWORD)

        # Create: the POST redirects to the one page that shows the secret.
        tab.goto("/admin/webhooks/webhookendpoint/add/")
        page.fill("#id_url", "https://shop.example/hooks")
        page.fill("#id_description", "Shop EU")
        page.click("input[name=_save]")
        page.wait_for_url(re.compile(r".*/admin/webhooks/webhookendpoint/[0-9a-f-]+/secret/$"))
        secret = page.input_value("#webhook-secret")
        assert secret.startswith("whsec_")
        # The server encrypts with its own key: compare what it stores, not the plaintext.
        endpoint = WebhookEndpoint.objects.get(description="Shop EU")
        stored = endpoint.secret_ct
        tab.shot("secret-shown")

        # A reload is a GET of that page: no second endpoint, and the secret is gone.
        page.reload()
        assert page.locator("#webhook-secret").count() == 0
        assert "not shown again" in page.inner_text("#secret-already-shown")
        assert secret not in page.content()
        assert WebhookEndpoint.objects.filter(description="Shop EU").count() == 1
        tab.shot("secret-reloaded")

        # Rotate from the list: the new secret once, and a reload rotates nothing.
        tab.goto("/admin/webhooks/webhookendpoint/")
        page.check(f"input[name=_selected_action][value='{endpoint.pk}']")
        page.select_option("select[name=action]", "rotate_secret")
        page.click("button[name=index]")
        page.wait_for_url(f"**/admin/webhooks/webhookendpoint/{endpoint.pk}/secret/")
        rotated = page.input_value("#webhook-secret")
        endpoint.refresh_from_db()
        assert rotated.startswith("whsec_") and rotated != secret
        assert endpoint.secret_ct != stored
        stored = endpoint.secret_ct
        page.reload()
        assert page.locator("#webhook-secret").count() == 0
        endpoint.refresh_from_db()
        assert endpoint.secret_ct == stored  # not rotated again
        tab.shot("rotated-reloaded")
