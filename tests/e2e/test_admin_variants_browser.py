"""Variants in the admin, in a real browser (Debian's Chromium driven by Playwright)
against the production web tier, a Celery worker and a private Redis.

Staff add a tee shirt with the options Size (S, M) and Colour (Red, Blue), make its four
variants in one step, price one of them, open a second location, receive one variant's
stock at both locations and publish the tee. A storefront orders five of that variant
through the API: the order's page shows the line split over the two locations.

A module of its own, so its server starts on this module's database (see
``test_admin_confirmations_browser``).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.e2e import test_admin_browser as admin_browser
from tests.e2e.test_admin_browser import PASSWORD, Session, _staff
from tests.e2e.test_admin_first_hour import _server

stack, browser, shots = admin_browser.stack, admin_browser.browser, admin_browser.shots

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PRODUCTS = "/admin/catalog/product/"


def _row(page, sku: str):
    """The variant's row on its product's page (its SKU box holds ``sku``)."""
    for n in range(page.locator("#variants-group tr.form-row").count()):
        if page.input_value(f"#id_variants-{n}-sku") == sku:
            return n
    raise AssertionError(f"no variant row {sku}")


def _receive(tab, product_id: int, sku: str, location: str, code: str, quantity: int) -> None:
    page = tab.page
    page.click(f"tr[data-variant='{sku}'] a:text-is('Receive / adjust')")
    page.wait_for_url(re.compile(rf".*{PRODUCTS}{product_id}/stock/\?variant=\d+$"))
    assert sku in page.locator("#id_variant option:checked").inner_text()
    page.select_option("#id_location", label=f"{location} ({code})")
    page.select_option("#id_kind", "receipt")
    page.fill("#id_quantity", str(quantity))
    page.fill("#id_reason", f"delivery to {location}")
    page.click("input[type=submit][value='Record movement']")
    page.wait_for_url(f"**{PRODUCTS}{product_id}/change/")
    assert f"{sku}: receipt of +{quantity} recorded at {location}" in tab.messages()


def test_staff_make_variants_stock_them_at_two_locations_and_an_order_splits(
    stack, browser, system_actor, make_key, shots
):
    from catalog.models import Product
    from catalog.services import category_create
    from inventory.locations import location_create
    from inventory.models import Location
    from orders.models import LineAllocation

    category_create(actor=system_actor, name="Clothing")
    if not Location.objects.filter(code="main").exists():  # made by a migration, or not
        location_create(actor=system_actor, code="main", name="Main warehouse", priority=100)
    assert Location.objects.get(code="main").name == "Main warehouse"
    storefront = make_key("storefront", name="Storefront")
    _staff("vera", superuser=True)

    tab = Session(browser, stack["web"].base_url, "variants", shots)
    page = tab.page
    with tab:
        tab.login("vera", PASSWORD)

        # A second location, opened in the admin.
        tab.goto("/admin/inventory/location/add/")
        page.fill("#id_code", "store")
        page.fill("#id_name", "City store")
        page.fill("#id_priority", "200")
        page.click("input[name=_save]")
        page.wait_for_url("**/admin/inventory/location/")

        # The tee with its options, then its variants made in one step.
        tab.goto(f"{PRODUCTS}add/")
        page.fill("#id_sku", "TEE")
        page.fill("#id_name", "Tee shirt")
        page.fill("#id_price", "15.00")
        page.fill("#id_currency", "EUR")
        page.select_option("#id_category", label="Clothing")
        page.fill("#id_options", "Size: S, M\nColour: Red, Blue")
        page.click("input[name=_continue]")
        page.wait_for_url(re.compile(rf".*{PRODUCTS}\d+/change/$"))
        tee = Product.objects.get(sku="TEE")
        assert "No variants yet" in page.inner_text(".field-variants_made")
        page.click("#make-variants")
        page.wait_for_url(f"**{PRODUCTS}{tee.pk}/variants/make/")
        assert page.locator("#combinations tr.to-make").count() == 4
        tab.shot("make-variants")
        page.click("input[name=_all]")
        page.wait_for_url(f"**{PRODUCTS}{tee.pk}/change/")
        assert "Made 4 variants" in tab.messages()
        assert page.locator("#variants-group tr.form-row").count() == 4

        # One variant priced apart, saved from its row.
        blue = _row(page, "TEE-M-BLUE")
        page.fill(f"#id_variants-{blue}-price", "18.00")
        page.click("input[name=_continue]")
        page.wait_for_url(f"**{PRODUCTS}{tee.pk}/change/")
        assert page.input_value(f"#id_variants-{_row(page, 'TEE-M-BLUE')}-price") == "18.00"
        assert Product.objects.get(sku="TEE-M-BLUE").price == Decimal("18.00")

        # TEE-S-RED's stock: three at the warehouse, five at the store.
        _receive(tab, tee.pk, "TEE-S-RED", "Main warehouse", "main", 3)
        _receive(tab, tee.pk, "TEE-S-RED", "City store", "store", 5)
        red_row = page.locator("tr[data-variant='TEE-S-RED']")
        assert red_row.locator("td[data-location=main]").inner_text() == "3"
        assert red_row.locator("td[data-location=store]").inner_text() == "5"
        page.click("button[name=_fsm_transition_to][value=publish]")
        assert "TEE published." in tab.messages()
        tab.shot("product-with-variants")

        # A storefront orders five of TEE-S-RED: three from the warehouse, two from the store.
        red = Product.objects.get(sku="TEE-S-RED")
        with _server(stack, storefront) as shop:
            placed = shop.post(
                "/api/v1/orders/",
                headers={"Idempotency-Key": "variants-browser-1"},
                json={
                    "items": [{"variant": red.pk, "quantity": 5}],
                    "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
                    "shipping_address": {
                        "line1": "1 Main St",
                        "city": "Springfield",
                        "postal_code": "12345",
                        "country": "US",
                    },
                },
            )
        assert placed.status_code == 201, placed.text
        order = placed.json()
        tab.goto(f"/admin/orders/order/{order['id']}/change/")
        allocations = page.locator(".allocation").all_inner_texts()
        assert allocations == ["3 at Main warehouse", "2 at City store"], allocations
        assert "TEE-S-RED" in page.inner_text("#content-main")
        tab.shot("order-split")
        assert sorted(
            LineAllocation.objects.filter(item__order_id=order["id"]).values_list(
                "location__code", "quantity"
            )
        ) == [("main", 3), ("store", 2)]
