"""Staff screens for stock locations: each product's levels per location, receiving stock at
a chosen location, the ledger and the levels by location, where an order's lines are
reserved, and the dashboard's stock per location."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.actors import Actor
from inventory.models import InventoryMovement, Location, StockLevel
from inventory.monitoring import stock_by_location
from inventory.services import stock_record_movement
from orders.models import LineAllocation, Order
from pms_backend.shopsettings.services import settings_sync_registry
from tests.conftest import order_body
from tests.integration.order_support import place, writes_nothing

pytestmark = pytest.mark.django_db

PRODUCTS = "/admin/catalog/product/"
ORDERS = "/admin/orders/order/"
MOVEMENTS = "/admin/inventory/inventorymovement/"
LEVELS = "/admin/inventory/stocklevel/"
ACTOR = Actor.system("test")


@pytest.fixture
def places(db):
    """The database's main location (priority 100) and two more after it; a closed one."""
    main = Location.objects.get(code="main")
    store = Location.objects.create(code="store", name="City store", priority=200)
    outlet = Location.objects.create(code="outlet", name="Outlet", priority=300)
    closed = Location.objects.create(code="closed", name="Old depot", priority=1, is_active=False)
    return {"main": main, "store": store, "outlet": outlet, "closed": closed}


def put(product, quantity: int, at: Location) -> None:
    stock_record_movement(
        actor=ACTOR,
        product_id=product.pk,
        kind="receipt",
        quantity=quantity,
        reason="test receipt",
        location=at,
    )


def level_row(html: str, code: str) -> list[str]:
    """Return the cells of the product page's level row of location ``code``."""
    match = re.search(rf'<tr data-location="{code}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {code}"
    return [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", match.group(1), re.S)
    ]


def options_of(html: str, name: str) -> dict[str, str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no {name} select"
    return dict(re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', select.group(1)))


def selected_of(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select
    return re.findall(r'<option value="(\d+)" selected>', select.group(1))


# --- The product page ---------------------------------------------------------------------


def test_the_product_page_shows_the_levels_at_each_active_location_and_the_total(
    admin_client, make_product, places, storefront
):
    product = make_product("published", sku="TEA-1")
    put(product, 3, places["main"])
    put(product, 30, places["store"])
    place(storefront, order_body((product, 4)))  # 3 from main, 1 from the store

    html = admin_client.get(f"{PRODUCTS}{product.pk}/change/").content.decode()

    assert "33 on hand, 4 reserved, 29 available" in html
    assert level_row(html, "main") == ["Main warehouse", "3", "3", "0"]
    assert level_row(html, "store") == ["City store", "30", "1", "29"]
    assert level_row(html, "outlet") == ["Outlet", "0", "0", "0"]  # active, holds none
    assert 'data-location="closed"' not in html
    total = re.search(r'<tr class="stock-total">(.*?)</tr>', html, re.S).group(1)
    assert re.sub(r"<[^>]+>", " ", total).split() == ["Total", "33", "4", "29"]


def test_the_product_page_costs_the_same_queries_however_many_locations(
    admin_client, make_product, places
):
    product = make_product("published")
    put(product, 3, places["main"])
    url = f"{PRODUCTS}{product.pk}/change/"
    admin_client.get(url)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200
        return len(captured)

    few = queries()
    for n in range(6):
        put(product, 1, Location.objects.create(code=f"x{n}", name=f"Shop {n}", priority=500 + n))

    assert queries() == few


# --- Receiving stock at a location --------------------------------------------------------


def test_the_stock_form_offers_the_active_locations_with_the_default_ticked(
    admin_client, make_product, places
):
    product = make_product("published")

    html = admin_client.get(f"{PRODUCTS}{product.pk}/stock/").content.decode()

    offered = options_of(html, "location")
    assert list(offered.values()) == [str(places[c]) for c in ("main", "store", "outlet")]
    assert str(places["closed"].pk) not in offered
    assert selected_of(html, "location") == [str(places["main"].pk)]
    assert level_row(html, "store") == ["City store", "0", "0", "0"]


def test_the_stock_form_receives_at_the_chosen_location(admin_client, make_product, places):
    product = make_product("published", sku="MUG-1")
    put(product, 2, places["main"])

    response = admin_client.post(
        f"{PRODUCTS}{product.pk}/stock/",
        {
            "location": places["store"].pk,
            "kind": "receipt",
            "quantity": "7",
            "reason": "delivery 12",
        },
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert "MUG-1: receipt of +7 recorded at City store; 7 on hand there." in messages
    movement = InventoryMovement.objects.filter(product=product).latest("id")
    # on_hand_after is the product's total (2 elsewhere + these 7), as v1 says.
    assert (movement.location, movement.on_hand_delta, movement.on_hand_after) == (
        places["store"],
        7,
        9,
    )
    levels = dict(
        StockLevel.objects.filter(product=product).values_list("location__code", "on_hand")
    )
    assert levels == {"main": 2, "store": 7}
    assert product.stock.__class__.objects.get(product=product).on_hand == 9


def test_the_stock_form_refuses_an_inactive_location_and_writes_nothing(
    admin_client, make_product, places
):
    product = make_product("published")

    with writes_nothing():
        response = admin_client.post(
            f"{PRODUCTS}{product.pk}/stock/",
            {"location": places["closed"].pk, "kind": "receipt", "quantity": "7"},
        )

    assert response.status_code == 200
    assert "location" in response.context["form"].errors


def test_an_adjustment_is_refused_by_what_is_reserved_at_that_location(
    admin_client, make_product, places, storefront
):
    product = make_product("published")
    put(product, 3, places["main"])
    put(product, 3, places["store"])
    place(storefront, order_body((product, 3)))  # all three at main

    with writes_nothing():
        response = admin_client.post(
            f"{PRODUCTS}{product.pk}/stock/",
            {"location": places["main"].pk, "kind": "adjustment", "quantity": "-1", "reason": "x"},
        )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors()


# --- The ledger and the levels ------------------------------------------------------------


def test_the_ledger_shows_and_filters_by_location(admin_client, make_product, places):
    product = make_product("published", sku="POT-1")
    put(product, 2, places["main"])
    put(product, 5, places["outlet"])

    html = admin_client.get(MOVEMENTS).content.decode()
    at_outlet = admin_client.get(MOVEMENTS, {"location__id__exact": places["outlet"].pk})

    assert '<span title="Outlet">outlet</span>' in html
    assert '<span title="Main warehouse">main</span>' in html
    assert [(m.location.code, m.on_hand_delta) for m in at_outlet.context["cl"].result_list] == [
        ("outlet", 5)
    ]


def test_the_levels_list_shows_each_product_at_each_location(admin_client, make_product, places):
    teapot = make_product("published", sku="POT-1", name="Teapot")
    cup = make_product("published", sku="CUP-1", name="Egg cup")
    put(teapot, 4, places["main"])
    put(teapot, 6, places["store"])
    put(cup, 9, places["store"])

    listed = admin_client.get(LEVELS).context["cl"].result_list
    at_store = admin_client.get(LEVELS, {"location__id__exact": places["store"].pk})
    searched = admin_client.get(LEVELS, {"q": "teapot"})
    by_sku = admin_client.get(LEVELS, {"q": "CUP-1"})

    assert [(lv.product.sku, lv.location.code, lv.on_hand) for lv in listed] == [
        ("CUP-1", "store", 9),
        ("POT-1", "main", 4),
        ("POT-1", "store", 6),
    ]
    assert {lv.product.sku for lv in at_store.context["cl"].result_list} == {"POT-1", "CUP-1"}
    assert {lv.location.code for lv in searched.context["cl"].result_list} == {"main", "store"}
    assert [lv.product.sku for lv in by_sku.context["cl"].result_list] == ["CUP-1"]
    html = admin_client.get(LEVELS).content.decode()
    for column in ("sku", "product_name", "where", "on_hand_shown", "reserved_shown", "available"):
        assert re.search(rf'<th scope="col" class="[^"]*column-{column}\b', html), column


def test_the_levels_list_costs_the_same_queries_however_many_rows(
    admin_client, make_product, places
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(LEVELS).status_code == 200
        return len(captured)

    put(make_product("published"), 1, places["main"])
    admin_client.get(LEVELS)
    few = queries()
    for _ in range(10):
        product = make_product("published")
        put(product, 1, places["main"])
        put(product, 1, places["store"])

    assert queries() == few


def test_the_levels_admin_is_read_only(admin_client, make_product, places):
    product = make_product("published")
    put(product, 4, places["main"])
    level = StockLevel.objects.get(product=product)

    page = admin_client.get(f"{LEVELS}{level.pk}/change/")
    with writes_nothing():
        post = admin_client.post(f"{LEVELS}{level.pk}/change/", {"on_hand": "500"})
        delete = admin_client.post(f"{LEVELS}{level.pk}/delete/", {"post": "yes"})
        add = admin_client.get(f"{LEVELS}add/")

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (post.status_code, delete.status_code, add.status_code) == (403, 403, 403)
    level.refresh_from_db()
    assert level.on_hand == 4


# --- Orders -------------------------------------------------------------------------------


def _split_order(storefront, make_product, places, lines: int) -> Order:
    """An order of ``lines`` products, each 2 reserved at main and 1 at the store."""
    products = []
    for _ in range(lines):
        product = make_product("published")
        put(product, 2, places["main"])
        put(product, 5, places["store"])
        products.append(product)
    response = place(storefront, order_body(*((p, 3) for p in products)))
    assert response.status_code == 201, response.content
    return Order.objects.get(pk=response.json()["id"])


def test_the_order_page_shows_where_each_line_is_reserved(
    admin_client, storefront, make_product, places
):
    order = _split_order(storefront, make_product, places, 1)

    html = admin_client.get(f"{ORDERS}{order.pk}/change/").content.decode()

    shown = re.findall(r'<span class="allocation" data-location="(\w+)">([^<]*)</span>', html)
    assert shown == [("main", "2 at Main warehouse"), ("store", "1 at City store")]
    assert "Reserved at" in html


@pytest.mark.parametrize("role", ["Order managers", "Warehouse staff"])
def test_staff_in_a_role_see_the_order_lines_and_where_they_are_reserved(
    client, storefront, make_product, places, role
):
    """The lines go with the order's permissions: the roles hand out none of their own,
    and the lines were once on the order's page of superusers only."""
    order = _split_order(storefront, make_product, places, 1)
    member = get_user_model().objects.create_user("member", is_staff=True)
    member.groups.add(Group.objects.get(name=role))
    client.force_login(member)

    html = client.get(f"{ORDERS}{order.pk}/change/").content.decode()

    assert order.items.get().sku in html
    shown = re.findall(r'<span class="allocation" data-location="(\w+)">([^<]*)</span>', html)
    assert shown == [("main", "2 at Main warehouse"), ("store", "1 at City store")]


def test_the_order_page_costs_the_same_queries_however_many_lines(
    admin_client, storefront, make_product, places
):
    small = _split_order(storefront, make_product, places, 1)
    large = _split_order(storefront, make_product, places, 8)
    assert LineAllocation.objects.filter(item__order=large).count() == 16

    def queries(order: Order) -> int:
        url = f"{ORDERS}{order.pk}/change/"
        admin_client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200
        return len(captured)

    assert queries(large) == queries(small)


# --- The dashboard ------------------------------------------------------------------------


def test_the_dashboard_shows_the_stock_at_each_active_location(
    admin_client, make_product, places, storefront
):
    settings_sync_registry()
    plenty, scarce, gone = (make_product("published") for _ in range(3))
    draft = make_product("draft")
    put(plenty, 40, places["main"])
    put(scarce, 2, places["main"])  # low at main (threshold 5)
    put(scarce, 30, places["store"])
    put(gone, 1, places["store"])
    put(draft, 3, places["outlet"])  # not on sale: never low or out
    place(storefront, order_body((gone, 1)))  # out at the store: its one unit reserved

    html = admin_client.get("/admin/").content.decode()

    table = re.search(r'<table [^>]*id="pms-stock-locations".*?</table>', html, re.S).group(0)
    rows = {
        code: re.sub(r"<[^>]+>", " ", cells).split()
        for code, cells in re.findall(r'<tr data-location="(\w+)">(.*?)</tr>', table, re.S)
    }
    # Name, on hand, reserved, available, low, out.
    assert rows == {
        "main": ["Main", "warehouse", "42", "0", "42", "1", "0"],
        "store": ["City", "store", "31", "1", "30", "0", "1"],
        "outlet": ["Outlet", "3", "0", "3", "0", "0"],
    }


def test_the_stock_by_location_takes_two_queries_however_many_locations(
    make_product, places, django_assert_num_queries
):
    settings_sync_registry()
    for n in range(5):
        product = make_product("published")
        put(product, n + 1, places["main"])
        put(product, 10, places["store"])
    stock_by_location()  # warm the settings cache
    for n in range(4):
        Location.objects.create(code=f"shop{n}", name=f"Shop {n}", priority=400 + n)

    with django_assert_num_queries(2):
        figures = stock_by_location()

    assert [row["code"] for row in figures] == [
        "main",
        "store",
        "outlet",
        "shop0",
        "shop1",
        "shop2",
        "shop3",
    ]
    main = figures[0]
    assert (main["on_hand"], main["low"], main["out"]) == (15, 5, 0)
