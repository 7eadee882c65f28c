"""The admin's lists on a 1,366 px wide screen (a common office laptop) in a real browser
(Debian's Chromium driven by Playwright), filled with realistically long data: no list
scrolls sideways (every column in view) and no product name takes more than two lines.

A module of its own, so its server starts on this module's database (see
test_admin_confirmations_browser.py).
"""

from __future__ import annotations

import ssl
import time
import uuid
from decimal import Decimal

import httpx
import pytest

from tests.e2e import test_admin_browser as admin_browser
from tests.e2e.test_admin_browser import PASSWORD, Session, _staff

stack, browser, shots = admin_browser.stack, admin_browser.browser, admin_browser.shots

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WIDTH = 1366

LISTS = {
    "products": "/admin/catalog/product/",
    "stock": "/admin/inventory/inventorymovement/",
    "stock-levels": "/admin/inventory/stocklevel/",
    "locations": "/admin/inventory/location/",
    "transfers": "/admin/inventory/transfer/",
    "orders": "/admin/orders/order/",
    "audit-log": "/admin/audit/auditlog/",
    "api-keys": "/admin/apikeys/apikey/",
    "webhook-endpoints": "/admin/webhooks/webhookendpoint/",
    "deliveries": "/admin/webhooks/webhookdelivery/",
    "categories": "/admin/catalog/category/",
    "settings": "/admin/settings/setting/",
}

# Names as shops write them: long, with sizes and finishes.
PRODUCT_NAMES = [
    "Stainless steel double-walled insulated vacuum flask with removable tea infuser, "
    "750 ml, brushed steel finish",
    "Hand-thrown stoneware teapot with bamboo handle and fine-mesh infuser basket, "
    "1.2 litres, speckled oatmeal glaze",
    "Borosilicate glass pour-over coffee maker with walnut collar and leather tie, "
    "six cups, dishwasher safe",
    "Cast iron enamelled casserole dish with self-basting lid, 28 cm, volcanic orange",
    "Set of four porcelain espresso cups with saucers, 80 ml, matte charcoal and white",
    "Adjustable-temperature gooseneck electric kettle with keep-warm function, 1 l",
]
MOVEMENT_REASON = (
    "Delivery note 2026-11-30/884213 from Northern Housewares Ltd, pallet 7 of 9, "
    "two cartons damaged in transit and set aside for the carrier's inspection"
)
# Locations as shops name them, and a transfer's note as staff write it.
LOCATIONS = [
    ("main", "Central distribution warehouse, Duisburg logistics park, hall 4 (bonded)"),
    (
        "FRA-HBF-CONCOURSE-B",
        "Frankfurt Hauptbahnhof flagship store, B-level concourse, unit 12 and stockroom",
    ),
]
TRANSFER_NOTE = (
    "Weekly replenishment for the station store ahead of the Christmas market weekend; "
    "pallets 3 and 4 only, the rest follows on Thursday's truck"
)
ENDPOINTS = [
    (
        "https://hooks.storefront-eu.example.com/pms/v1/webhooks/receive/catalog-and-orders"
        "?tenant=eu-central-1&channel=primary",
        "Storefront EU (production, Frankfurt): catalog and order updates",
    ),
    (
        "https://erp-gateway.warehouse.example.org/integrations/pms/inbound/stock-levels/v2",
        "Warehouse ERP gateway: stock levels for the replenishment planner",
    ),
]


def _shop_data(make_key) -> dict:
    """Fill the shop the way a year of trading would: long names everywhere."""
    from audit.actors import Actor
    from catalog.services import category_create, product_create, product_transition
    from inventory.locations import location_create, location_update
    from inventory.models import Location
    from inventory.services import stock_record_movement
    from inventory.transfers import transfer_create, transfer_dispatch
    from pms_backend.shopsettings.services import settings_sync_registry
    from webhooks.services import endpoint_create

    actor = Actor.system("catalogue-import")
    settings_sync_registry()
    for url, description in ENDPOINTS:
        endpoint_create(actor=actor, url=url, description=description)
    (main_code, main_name), (store_code, store_name) = LOCATIONS
    if Location.objects.filter(code=main_code).exists():
        location_update(actor=actor, code=main_code, data={"name": main_name})
    else:
        location_create(actor=actor, code=main_code, name=main_name)
    store = location_create(actor=actor, code=store_code, name=store_name, priority=200)
    parent = None
    for name in ("Kitchen and dining", "Tea, coffee and hot drinks", "Flasks and travel mugs"):
        parent = category_create(actor=actor, name=name, parent=parent)
    products = []
    for n, name in enumerate(PRODUCT_NAMES):
        product = product_create(
            actor=actor,
            sku=f"KIT-TEA-{n:03d}-{'BRUSHED-STEEL-EU-WAREHOUSE'[: 12 + n * 2]}",
            name=name,
            price=Decimal("12345.67"),
            currency="EUR",
            category=parent,
        )
        product_transition(actor=actor, product_id=product.pk, transition="publish")
        stock_record_movement(
            actor=actor,
            product_id=product.pk,
            kind="receipt",
            quantity=123_456,
            reason=MOVEMENT_REASON,
        )
        products.append(product)
    # Two transfers to the store: one on the way, one still a draft.
    for dispatched in (True, False):
        transfer = transfer_create(
            actor=actor,
            from_location=main_code,
            to_location=store,
            lines={product.pk: 1_234 for product in products},
            note=TRANSFER_NOTE,
        )
        if dispatched:
            transfer_dispatch(actor=actor, transfer=transfer)
    key = make_key("storefront", name="Storefront EU (production, Frankfurt region)")
    return {"products": products, "key": key}


def _place_orders(base_url: str, cert, key: str, products) -> None:
    with httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"Api-Key {key}"},
        verify=ssl.create_default_context(cafile=str(cert)),
        timeout=15,
    ) as shop:
        for product in products:
            placed = shop.post(
                "/api/v1/orders/",
                headers={"Idempotency-Key": uuid.uuid4().hex},
                json={
                    "items": [{"product": p.pk, "quantity": 12} for p in products[:3]]
                    + [{"product": product.pk, "quantity": 7}],
                    "customer": {
                        "email": "maximiliane.von-hohenzollern@example.com",
                        "name": "Maximiliane Alexandra von Hohenzollern-Sigmaringen",
                    },
                    "shipping_address": {
                        "line1": "Schlossplatz 1, Hinterhaus, 3. Obergeschoss links",
                        "city": "Sigmaringen",
                        "postal_code": "72488",
                        "country": "DE",
                    },
                },
            )
            assert placed.status_code == 201, placed.text


def _wait_for_deliveries(count: int, timeout: float = 30) -> None:
    from webhooks.models import WebhookDelivery

    deadline = time.monotonic() + timeout
    while WebhookDelivery.objects.count() < count:
        assert time.monotonic() < deadline, "the relay made no webhook deliveries"
        time.sleep(0.2)


# Where product names stand: their column in the product list (the stock ledger shows the
# SKU, the name on hover; the orders list shows none).
NAME_CELLS = {
    "products": "#result_list td.field-product_name, #result_list td.field-name",
    "stock-levels": "#result_list td.field-product_name",
}

# What the browser measures on a list: how far the result table overflows the box that
# holds it (it would scroll sideways), and the most lines a product name takes.
MEASURE = """(nameCells) => {
  const table = document.querySelector('#result_list');
  if (!table) return null;
  const box = table.closest('.results') || table.parentElement;
  const lines = (cell) => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
  };
  const names = nameCells ? [...document.querySelectorAll(nameCells)] : [];
  return {
    overflow: table.scrollWidth - box.clientWidth,
    tableWidth: table.scrollWidth,
    boxWidth: box.clientWidth,
    headers: [...table.querySelectorAll('thead th')].map((th) => th.innerText.trim()),
    rows: table.querySelectorAll('tbody tr').length,
    nameLines: Math.max(0, ...names.map(lines)),
    nameCells: names.length,
  };
}"""


def test_every_list_fits_a_1366_px_screen_with_long_data(stack, browser, make_key, shots):
    data = _shop_data(make_key)
    _place_orders(stack["web"].base_url, stack["cert"], data["key"], data["products"])
    _wait_for_deliveries(len(ENDPOINTS))
    _staff("lister", superuser=True)
    tab = Session(browser, stack["web"].base_url, "widths", shots)
    tab.page.set_viewport_size({"width": WIDTH, "height": 900})
    page = tab.page
    problems = []
    with tab:
        tab.login("lister", PASSWORD)
        for name, url in LISTS.items():
            tab.goto(url)
            measured = page.evaluate(MEASURE, NAME_CELLS.get(name))
            tab.shot(name)
            assert measured is not None, f"{name}: no result table at {url}"
            assert measured["rows"] > 0, f"{name}: an empty list measures nothing"
            if name in NAME_CELLS:
                assert measured["nameCells"] > 0, f"{name}: no product names found"
            print(
                f"\n  {name}: table {measured['tableWidth']} px in {measured['boxWidth']} px;"
                f" product names up to {measured['nameLines']} lines; {measured['headers']}"
            )
            if measured["overflow"] > 0:
                problems.append(
                    f"{name}: the table is {measured['tableWidth']} px wide in a "
                    f"{measured['boxWidth']} px box (scrolls sideways); "
                    f"columns: {measured['headers']}"
                )
            if measured["nameLines"] > 2:
                problems.append(f"{name}: a product name takes {measured['nameLines']} lines")
    assert not problems, "\n".join(problems)
