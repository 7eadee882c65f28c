"""Staff screens for stock and orders: every change goes through the inventory and order
services, with its ledger line, audit entry and event."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditLog
from inventory.models import InventoryMovement
from orders.models import Order
from pms_backend.events.models import Event
from tests.conftest import order_body
from tests.integration.order_support import move_order, place, stock_of, writes_nothing

pytestmark = pytest.mark.django_db

PRODUCTS = "/admin/catalog/product/"
ORDERS = "/admin/orders/order/"
MOVEMENTS = "/admin/inventory/inventorymovement/"


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def stock_form(product) -> str:
    return f"{PRODUCTS}{product.pk}/stock/"


def changelist_row(html: str, text: str) -> str:
    """Return the changelist table row that mentions ``text``."""
    rows = [row for row in re.split(r"<tr[ >]", html) if text in row]
    assert len(rows) == 1, f"{len(rows)} rows mention {text!r}"
    return rows[0]


def cell(row: str, column: str) -> str:
    match = re.search(rf'<td class="field-{column}[^"]*">(.*?)</td>', row, re.S)
    assert match, f"no {column} column"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


class _FormInputs(HTMLParser):
    """Collect the name/value pairs a browser would post from the page's main form."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = True
        elif tag == "input" and self.inside and attrs.get("name"):
            if attrs.get("type") in ("submit", "button"):
                return
            if attrs.get("type") == "checkbox" and "checked" not in attrs:
                return
            self.data[attrs["name"]] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False


def press(client: Client, order_id: int, transition: str, *, follow: bool = True):
    """Open an order's change page and press the button of ``transition``, as staff do."""
    url = f"{ORDERS}{order_id}/change/"
    page = client.get(url)
    assert page.status_code == 200
    parser = _FormInputs("order_form")
    parser.feed(page.content.decode())
    return client.post(url, {**parser.data, "_fsm_transition_to": transition}, follow=follow)


def buttons_on(response) -> set[str]:
    return set(re.findall(r'name="_fsm_transition_to"\s+value="(\w+)"', response.content.decode()))


@pytest.fixture
def stocked(make_product, receive):
    """A published product with 20 on hand and one with 4 (low: the threshold is 5)."""
    plenty = make_product("published", sku="PLENTY-1", name="Teapot")
    scarce = make_product("published", sku="SCARCE-1", name="Egg cup")
    receive(plenty, 20)
    receive(scarce, 4)
    return plenty, scarce


@pytest.fixture
def order(storefront, stocked):
    """A Pending order for 3 teapots and 1 egg cup."""
    plenty, scarce = stocked
    response = place(storefront, order_body((plenty, 3), (scarce, 1)))
    assert response.status_code == 201
    return Order.objects.get(pk=response.json()["id"])


# --- Stock in the product admin -----------------------------------------------------------


def test_the_product_list_shows_stock_and_marks_low_stock(admin_client, order, stocked):
    html = admin_client.get(PRODUCTS).content.decode()

    plenty_row = changelist_row(html, "PLENTY-1")
    scarce_row = changelist_row(html, "SCARCE-1")
    # Available at a glance, on hand and reserved on hover (a 1,366 px screen's columns).
    assert cell(plenty_row, "stock_available") == "17"
    assert 'title="20 on hand, 3 reserved"' in plenty_row
    assert "low-stock" not in plenty_row
    assert cell(scarce_row, "stock_available") == "3 (low)"
    assert 'title="4 on hand, 1 reserved"' in scarce_row
    assert 'class="low-stock"' in scarce_row


def test_a_published_product_never_received_shows_zero_and_low(admin_client, make_product):
    make_product("published", sku="NEW-1")

    row = changelist_row(admin_client.get(PRODUCTS).content.decode(), "NEW-1")

    assert cell(row, "stock_available") == "0 (low)"
    assert 'title="0 on hand, 0 reserved"' in row
    assert 'class="low-stock"' in row


@pytest.mark.parametrize("status", ["draft", "archived"])
def test_products_not_on_sale_are_never_marked_low(admin_client, make_product, status):
    product = make_product(status, sku="IDLE-1")

    row = changelist_row(admin_client.get(PRODUCTS).content.decode(), "IDLE-1")
    page = admin_client.get(f"{PRODUCTS}{product.pk}/change/").content.decode()

    assert cell(row, "stock_available") == "0"
    assert "low-stock" not in row
    assert "(low)" not in page


def test_the_product_list_query_count_does_not_grow_with_stock(admin_client, make_product, receive):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(PRODUCTS).status_code == 200
        return len(ctx.captured_queries)

    for _ in range(5):
        receive(make_product("published"), 10)
    admin_client.get(PRODUCTS)
    few = queries()
    for _ in range(40):
        receive(make_product("published"), 10)
    make_product("draft")  # and one without a stock row

    assert queries() == few


def test_the_product_page_shows_stock_and_links_to_the_stock_form(admin_client, order, stocked):
    plenty, scarce = stocked

    plenty_page = admin_client.get(f"{PRODUCTS}{plenty.pk}/change/").content.decode()
    scarce_page = admin_client.get(f"{PRODUCTS}{scarce.pk}/change/").content.decode()

    assert "20 on hand, 3 reserved, 17 available" in plenty_page
    assert f'href="{stock_form(plenty)}"' in plenty_page
    assert "low-stock" not in plenty_page
    assert "4 on hand, 1 reserved," in scarce_page
    assert re.search(r'class="low-stock"[^>]*>3 \(low\)</strong> available', scarce_page)
    assert 'class="low-stock"' in scarce_page


def test_the_stock_form_shows_the_current_numbers(admin_client, order, stocked):
    plenty, _ = stocked

    page = admin_client.get(stock_form(plenty))

    assert page.status_code == 200
    html = page.content.decode()
    assert '<strong id="stock-on-hand">20</strong>' in html
    assert '<strong id="stock-reserved">3</strong>' in html
    assert '<strong id="stock-available">17</strong>' in html
    assert 'name="reason"' in html


def test_the_stock_form_records_a_receipt_through_the_service(admin_client, stocked):
    plenty, _ = stocked

    response = admin_client.post(
        stock_form(plenty),
        {"kind": "receipt", "quantity": "12", "reason": "delivery note 881"},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == f"{PRODUCTS}{plenty.pk}/change/"
    assert any(
        "receipt of +12 recorded at Main warehouse; 32 on hand there" in m
        for m in messages_of(response)
    )
    assert stock_of(plenty) == (32, 0)
    movement = InventoryMovement.objects.filter(product=plenty).latest("id")
    assert (movement.kind, movement.on_hand_delta, movement.on_hand_after) == ("receipt", 12, 32)
    assert movement.reason == "delivery note 881"
    assert movement.actor_label == "user:boss"
    entry = AuditLog.objects.filter(action="stock.receipt", actor_type="user").get()
    assert entry.object_id == str(plenty.pk)
    assert entry.changes == {
        "on_hand": {"before": 20, "after": 32},
        "location": {"before": None, "after": "main"},
    }
    assert Event.objects.filter(type="stock.updated", data__on_hand=32).exists()


def test_the_stock_form_records_an_adjustment_with_its_reason(admin_client, order, stocked):
    plenty, _ = stocked

    admin_client.post(
        stock_form(plenty), {"kind": "adjustment", "quantity": "-5", "reason": "dropped a crate"}
    )

    assert stock_of(plenty) == (15, 3)
    movement = InventoryMovement.objects.filter(product=plenty).latest("id")
    assert (movement.kind, movement.on_hand_delta, movement.reason) == (
        "adjustment",
        -5,
        "dropped a crate",
    )
    assert AuditLog.objects.filter(action="stock.adjustment", actor_label="user:boss").count() == 1


def test_an_adjustment_into_the_low_zone_announces_stock_low(admin_client, stocked):
    plenty, _ = stocked

    admin_client.post(stock_form(plenty), {"kind": "adjustment", "quantity": "-15", "reason": "x"})

    low = Event.objects.get(type="stock.low")
    assert (low.data["product"], low.data["available"]) == (plenty.pk, 5)


def test_an_adjustment_below_reserved_shows_the_error_and_writes_nothing(
    admin_client, order, stocked
):
    plenty, _ = stocked

    with writes_nothing():
        response = admin_client.post(
            stock_form(plenty), {"kind": "adjustment", "quantity": "-18", "reason": "stolen"}
        )

    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert any("3 are reserved" in e for e in errors)
    assert "3 are reserved" in response.content.decode()


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "adjustment", "quantity": "-1", "reason": ""},
        {"kind": "receipt", "quantity": "0", "reason": "nothing"},
        {"kind": "receipt", "quantity": "-3", "reason": "negative"},
        {"kind": "receipt", "quantity": "1.5", "reason": "half"},
        {"kind": "receipt", "quantity": "9999999999", "reason": "huge"},
        {"kind": "sale", "quantity": "1", "reason": "not a manual kind"},
        {"kind": "correction", "quantity": "-21", "reason": "below zero"},
    ],
)
def test_a_bad_stock_form_writes_nothing(admin_client, stocked, data):
    plenty, _ = stocked

    with writes_nothing():
        response = admin_client.post(stock_form(plenty), data)

    assert response.status_code == 200
    assert response.context["form"].errors


def test_the_stock_form_of_a_missing_product_is_404(admin_client):
    assert admin_client.get(f"{PRODUCTS}999999/stock/").status_code == 404


def test_staff_without_the_movement_permission_get_403(make_staff, stocked):
    plenty, _ = stocked
    clerk = make_staff("catalog.view_product", "catalog.change_product")

    with writes_nothing():
        page = clerk.get(stock_form(plenty))
        post = clerk.post(stock_form(plenty), {"kind": "receipt", "quantity": "5", "reason": "x"})

    assert (page.status_code, post.status_code) == (403, 403)


def test_staff_with_the_movement_permission_record_as_themselves(make_staff, stocked):
    plenty, _ = stocked
    clerk = make_staff("catalog.view_product", "inventory.add_inventorymovement", username="ben")

    clerk.post(stock_form(plenty), {"kind": "receipt", "quantity": "5", "reason": "pallet"})

    assert stock_of(plenty) == (25, 0)
    entry = AuditLog.objects.get(action="stock.receipt", actor_type="user")
    assert entry.actor_label == "user:ben"


def test_anonymous_visitors_are_sent_to_the_login(client, stocked):
    response = client.get(stock_form(stocked[0]))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- The movement ledger ------------------------------------------------------------------


def test_the_movement_list_shows_the_ledger(admin_client, order, stocked):
    response = admin_client.get(MOVEMENTS)

    assert response.status_code == 200
    listed = list(response.context["cl"].result_list)
    assert {m.kind for m in listed} == {"receipt", "reserve"}
    assert len(listed) == 4
    filtered = admin_client.get(MOVEMENTS, {"kind__exact": "reserve"}).context["cl"].result_list
    assert {m.kind for m in filtered} == {"reserve"}


def test_the_movement_admin_is_read_only(admin_client, stocked):
    movement = InventoryMovement.objects.filter(product=stocked[0]).get()

    page = admin_client.get(f"{MOVEMENTS}{movement.pk}/change/")
    with writes_nothing():
        post = admin_client.post(
            f"{MOVEMENTS}{movement.pk}/change/", {"on_hand_delta": "500", "reason": "edited"}
        )
        delete = admin_client.post(f"{MOVEMENTS}{movement.pk}/delete/", {"post": "yes"})
        add = admin_client.get(f"{MOVEMENTS}add/")
        bulk = admin_client.post(
            MOVEMENTS, {"action": "delete_selected", "_selected_action": [movement.pk]}
        )

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (post.status_code, delete.status_code, add.status_code) == (403, 403, 403)
    assert bulk.status_code in (200, 302, 403)
    movement.refresh_from_db()
    assert (movement.on_hand_delta, movement.reason) == (20, "test receipt")


# --- Orders -------------------------------------------------------------------------------


def test_the_order_page_shows_items_and_customer(admin_client, order, stocked):
    page = admin_client.get(f"{ORDERS}{order.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    for text in ("PLENTY-1", "Teapot", "SCARCE-1", "Egg cup", "19.90", "59.70"):
        assert text in html
    for text in ("Ada Lovelace", "ada@example.com", "1 Analytical Way", "London"):
        assert text in html
    assert order.number in html
    assert buttons_on(page) == {"process", "cancel"}


def test_the_order_list_filters_by_status_and_date(admin_client, order, storefront, stocked):
    other = Order.objects.get(pk=place(storefront, order_body((stocked[0], 1))).json()["id"])
    move_order(other.pk, "process")
    Order.objects.filter(pk=other.pk).update(created_at=order.created_at.replace(year=2020))

    pending = admin_client.get(ORDERS, {"status__exact": "pending"}).context["cl"].result_list
    processing = admin_client.get(ORDERS, {"status__exact": "processing"}).context["cl"].result_list
    of_2020 = admin_client.get(ORDERS, {"created_at__year": "2020"}).context["cl"].result_list
    all_orders = admin_client.get(ORDERS)

    assert [o.pk for o in pending] == [order.pk]
    assert [o.pk for o in processing] == [other.pk]
    assert [o.pk for o in of_2020] == [other.pk]
    assert order.number in all_orders.content.decode()
    assert other.number in all_orders.content.decode()


def test_process_then_complete_buttons_move_the_order_and_its_stock(admin_client, order, stocked):
    plenty, scarce = stocked

    processed = press(admin_client, order.pk, "process")

    assert processed.redirect_chain[-1][0] == f"{ORDERS}{order.pk}/change/"
    assert f"Order {order.number} processed." in messages_of(processed)
    order.refresh_from_db()
    assert order.status == "processing"
    assert (stock_of(plenty), stock_of(scarce)) == ((20, 3), (4, 1))
    assert buttons_on(processed) == {"complete", "cancel"}

    completed = press(admin_client, order.pk, "complete")

    order.refresh_from_db()
    assert order.status == "completed"
    assert (stock_of(plenty), stock_of(scarce)) == ((17, 0), (3, 0))
    assert buttons_on(completed) == {"refund"}
    entries = AuditLog.objects.filter(object_type="orders.order", object_id=str(order.pk))
    assert {(e.action, e.actor_label) for e in entries if e.actor_type == "user"} == {
        ("order.process", "user:boss"),
        ("order.complete", "user:boss"),
    }
    changes = Event.objects.filter(type="order.status_changed").order_by("id")
    assert [(e.data["from"], e.data["to"]) for e in changes] == [
        ("pending", "processing"),
        ("processing", "completed"),
    ]


def test_the_cancel_button_asks_for_a_reason_then_releases_the_reservation(
    admin_client, order, stocked
):
    plenty, scarce = stocked

    asked = press(admin_client, order.pk, "cancel", follow=False)

    assert asked["Location"] == f"{ORDERS}{order.pk}/cancel/"
    order.refresh_from_db()
    assert order.status == "pending"  # pressing the button alone changes nothing
    done = admin_client.post(asked["Location"], {"reason": "Customer called"}, follow=True)

    assert done.redirect_chain == [(f"{ORDERS}{order.pk}/change/", 302)]
    assert f"Order {order.number} cancelled." in messages_of(done)
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert (stock_of(plenty), stock_of(scarce)) == ((20, 0), (4, 0))
    assert InventoryMovement.objects.filter(kind="release").count() == 2


def test_refund_asks_about_restock_and_restocks(admin_client, order, stocked):
    plenty, scarce = stocked
    move_order(order.pk, "process", "complete")

    asked = press(admin_client, order.pk, "refund", follow=False)

    assert asked.status_code == 302
    assert asked["Location"] == f"{ORDERS}{order.pk}/refund/"
    order.refresh_from_db()
    assert order.status == "completed"  # pressing the button alone changes nothing
    form = admin_client.get(asked["Location"])
    assert form.status_code == 200
    assert 'name="restock"' in form.content.decode()
    assert order.number in form.content.decode()

    done = admin_client.post(asked["Location"], {"restock": "on"}, follow=True)

    assert done.redirect_chain[-1][0] == f"{ORDERS}{order.pk}/change/"
    order.refresh_from_db()
    assert (order.status, order.restocked) == ("refunded", True)
    assert (stock_of(plenty), stock_of(scarce)) == ((20, 0), (4, 0))
    returns = InventoryMovement.objects.filter(kind="return", reference=f"order:{order.number}")
    assert sorted((m.product_id, m.on_hand_delta) for m in returns) == [
        (plenty.pk, 3),
        (scarce.pk, 1),
    ]
    entry = AuditLog.objects.get(action="order.refund")
    assert entry.actor_label == "user:boss"
    assert entry.changes["restocked"] == {"before": None, "after": True}


def test_refund_without_restock_leaves_the_stock_sold(admin_client, order, stocked):
    plenty, _ = stocked
    move_order(order.pk, "process", "complete")

    admin_client.post(f"{ORDERS}{order.pk}/refund/", {})

    order.refresh_from_db()
    assert (order.status, order.restocked) == ("refunded", False)
    assert stock_of(plenty) == (17, 0)
    assert not InventoryMovement.objects.filter(kind="return").exists()


def test_the_refund_page_refuses_an_order_that_is_not_completed(admin_client, order, stocked):
    with writes_nothing():
        response = admin_client.post(f"{ORDERS}{order.pk}/refund/", {"restock": "on"}, follow=True)

    assert any("Cannot refund an order that is pending" in m for m in messages_of(response))
    order.refresh_from_db()
    assert order.status == "pending"


def test_a_forbidden_transition_shows_an_error_and_changes_nothing(admin_client, order, stocked):
    with writes_nothing():
        response = press(admin_client, order.pk, "complete")

    assert any("Cannot complete an order that is pending" in m for m in messages_of(response))
    order.refresh_from_db()
    assert order.status == "pending"


def test_an_unknown_transition_name_shows_an_error(admin_client, order):
    with writes_nothing():
        response = press(admin_client, order.pk, "ship")

    assert response.status_code == 200
    assert any("Unknown transition" in m for m in messages_of(response))


def test_the_transition_form_url_does_not_bypass_the_service(admin_client, order):
    with writes_nothing():
        response = admin_client.post(f"{ORDERS}{order.pk}/transition/cancel/")

    assert response.status_code in (400, 403, 404)
    order.refresh_from_db()
    assert order.status == "pending"


def test_orders_cannot_be_added_or_deleted_in_the_admin(admin_client, order):
    assert admin_client.get(f"{ORDERS}add/").status_code == 403
    with writes_nothing():
        assert admin_client.post(f"{ORDERS}{order.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Order.objects.filter(pk=order.pk).exists()


def test_the_history_link_shows_the_orders_audit_entries(admin_client, order):
    move_order(order.pk, "process")

    response = admin_client.get(f"{ORDERS}{order.pk}/history/")

    assert response.status_code == 302
    assert "object_type=orders.order" in response["Location"]
    assert f"object_id={order.pk}" in response["Location"]
    listed = admin_client.get(response["Location"]).context["cl"].result_list
    assert {e.action for e in listed} == {"order.created", "order.process"}


def test_a_view_only_clerk_sees_no_buttons_and_cannot_move_orders(make_staff, order, stocked):
    clerk = make_staff("orders.view_order")

    page = clerk.get(f"{ORDERS}{order.pk}/change/")
    with writes_nothing():
        pressed = clerk.post(f"{ORDERS}{order.pk}/change/", {"_fsm_transition_to": "cancel"})
        refund = clerk.post(f"{ORDERS}{order.pk}/refund/", {"restock": "on"})

    assert page.status_code == 200
    assert buttons_on(page) == set()
    assert (pressed.status_code, refund.status_code) == (403, 403)
    order.refresh_from_db()
    assert order.status == "pending"


def test_a_clerk_with_change_permission_moves_orders_as_themselves(make_staff, order):
    clerk = make_staff("orders.view_order", "orders.change_order", username="cleo")

    press(clerk, order.pk, "process")

    order.refresh_from_db()
    assert order.status == "processing"
    entry = AuditLog.objects.get(action="order.process")
    assert (entry.actor_type, entry.actor_label) == ("user", "user:cleo")


def test_staff_without_order_permissions_see_no_orders(make_staff, order):
    outsider = make_staff()

    assert outsider.get(ORDERS).status_code == 403
    assert outsider.get(f"{ORDERS}{order.pk}/change/").status_code == 403
    assert outsider.get(f"{ORDERS}{order.pk}/refund/").status_code == 403
