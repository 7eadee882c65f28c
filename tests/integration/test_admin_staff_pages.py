"""What a staff member reads on the order, product and stock screens: confirmations of what
cannot be undone, pages that read at a glance, plain words (issue 15)."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditLog
from catalog.models import Product
from orders.models import Order
from tests.conftest import order_body
from tests.integration.order_support import move_order, place, stock_of, writes_nothing
from tests.integration.test_admin_catalog import product_form
from tests.integration.test_admin_inventory_orders import press

pytestmark = pytest.mark.django_db

PRODUCTS = "/admin/catalog/product/"
ORDERS = "/admin/orders/order/"


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def visible_text(page: str) -> str:
    """Return what a browser shows of a page: no tags, scripts or styles; entities decoded."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", page))


def breadcrumbs(page: str) -> list[str]:
    match = re.search(r'<div class="breadcrumbs">(.*?)</div>', page, re.S)
    assert match, "no breadcrumbs"
    return [part.strip() for part in visible_text(match.group(1)).split("\u203a")]


@pytest.fixture
def teapot(make_product, receive):
    product = make_product("published", sku="TEA-1", name="Teapot")
    receive(product, 50)
    return product


@pytest.fixture
def new_order(storefront, teapot):
    def make(quantity: int = 3) -> Order:
        response = place(storefront, order_body((teapot, quantity)))
        assert response.status_code == 201, response.content
        return Order.objects.get(pk=response.json()["id"])

    return make


# --- Confirm what cannot be undone ----------------------------------------------------------


def test_cancel_asks_for_a_reason_on_a_page_in_the_admins_style(admin_client, new_order):
    order = new_order()

    page = admin_client.get(f"{ORDERS}{order.pk}/cancel/").content.decode()

    assert breadcrumbs(page) == ["Home", "Orders", "Orders", order.number, "Cancel"]
    assert '<fieldset class="module aligned' in page
    assert 'class="form-row' in page and "field-reason" in page
    assert '<div class="submit-row">' in page
    assert '<textarea name="reason"' in page and "required" in page
    assert f'href="{ORDERS}{order.pk}/change/"' in page  # the way back


@pytest.mark.parametrize("reason", ["", "   ", "x" * 201])
def test_cancel_without_a_sensible_reason_changes_nothing(admin_client, new_order, reason):
    order = new_order()

    with writes_nothing():
        response = admin_client.post(f"{ORDERS}{order.pk}/cancel/", {"reason": reason})

    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    assert 'class="errornote"' in response.content.decode()
    order.refresh_from_db()
    assert order.status == "pending"


def test_cancel_records_the_reason_in_the_audit_entry_and_redirects(
    admin_client, new_order, teapot
):
    order = new_order()

    response = admin_client.post(f"{ORDERS}{order.pk}/cancel/", {"reason": "Customer called"})

    assert response.status_code == 302
    assert response["Location"] == f"{ORDERS}{order.pk}/change/"
    order.refresh_from_db()
    assert (order.status, order.cancellation_reason) == ("cancelled", "Customer called")
    entry = AuditLog.objects.get(action="order.cancel")
    assert entry.actor_label == "user:boss"
    assert entry.changes["cancellation_reason"] == {"before": "", "after": "Customer called"}
    assert stock_of(teapot) == (50, 0)
    # A reload of the page it lands on (a GET) sends nothing again.
    with writes_nothing():
        assert admin_client.get(response["Location"]).status_code == 200


def test_a_view_only_clerk_cannot_open_the_cancel_page(make_staff, new_order):
    order = new_order()
    clerk = make_staff("orders.view_order")

    with writes_nothing():
        page = clerk.get(f"{ORDERS}{order.pk}/cancel/")
        post = clerk.post(f"{ORDERS}{order.pk}/cancel/", {"reason": "no"})

    assert (page.status_code, post.status_code) == (403, 403)


def test_the_refund_page_is_a_confirmation_in_the_admins_style(admin_client, new_order):
    order = new_order()
    move_order(order.pk, "process", "complete")

    page = admin_client.get(f"{ORDERS}{order.pk}/refund/").content.decode()

    assert breadcrumbs(page) == ["Home", "Orders", "Orders", order.number, "Refund"]
    assert '<fieldset class="module aligned' in page
    assert "checkbox-row" in page and 'name="restock"' in page
    assert '<div class="submit-row">' in page
    assert "59.70 EUR" in visible_text(page)
    response = admin_client.post(f"{ORDERS}{order.pk}/refund/", {})
    assert response["Location"] == f"{ORDERS}{order.pk}/change/"


def test_bulk_archive_asks_first_and_changes_nothing_until_confirmed(admin_client, make_product):
    live = [make_product("published", sku=f"LIVE-{i}") for i in range(3)]
    selected = {"action": "archive_selected", "_selected_action": [p.pk for p in live]}

    asked = admin_client.post(PRODUCTS, selected)

    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Archive 3 products?" in visible_text(page)
    assert all(p.sku in page for p in live)
    assert 'name="post" value="yes"' in page
    assert breadcrumbs(page)[-1] == "Archive the selected products"
    assert set(Product.objects.values_list("status", flat=True)) == {"published"}

    done = admin_client.post(PRODUCTS, {**selected, "post": "yes"})

    assert done.status_code == 302  # back to the list: a reload sends nothing again
    assert set(Product.objects.values_list("status", flat=True)) == {"archived"}
    assert "Archived 3 products." in messages_of(admin_client.get(done["Location"]))


def test_bulk_messages_say_one_product_in_the_singular(admin_client, make_product):
    product = make_product("published", sku="ONE-1")

    response = admin_client.post(
        PRODUCTS,
        {"action": "archive_selected", "_selected_action": [product.pk], "post": "yes"},
        follow=True,
    )

    assert "Archived 1 product." in messages_of(response)


# --- Pages read at a glance -----------------------------------------------------------------


def test_the_order_page_formats_the_address_and_money(admin_client, new_order):
    order = new_order()

    page = admin_client.get(f"{ORDERS}{order.pk}/change/").content.decode()
    text = visible_text(page)

    assert "{'" not in text and "'line1'" not in text
    assert re.search(r"1 Analytical Way</span><br><span[^>]*>N1 London</span><br>", page)
    assert "59.70 EUR" in text  # the total
    assert "19.90 EUR" in text  # a unit price


def test_the_product_list_shows_prices_with_their_currency(admin_client, teapot):
    row = _row(admin_client, "TEA-1")

    assert re.search(r'<td class="field-price_display">19\.90 EUR</td>', row)


def test_restocked_shows_only_on_refunded_orders(admin_client, new_order):
    pending = new_order()
    refunded = new_order()
    move_order(refunded.pk, "process", "complete", "refund", restock=True)

    pending_page = admin_client.get(f"{ORDERS}{pending.pk}/change/").content.decode()
    refunded_page = admin_client.get(f"{ORDERS}{refunded.pk}/change/").content.decode()

    assert "field-restocked" not in pending_page
    assert "field-cancellation_reason" not in pending_page
    assert "field-restocked" in refunded_page
    # Placed through the API: its key is named, and no empty "Placed by" line for a staff
    # member who did not place it.
    assert "field-api_key" in pending_page and "field-placed_by" not in pending_page


@pytest.mark.parametrize("moves", [(), ("process",), ("process", "complete"), ("cancel",)])
def test_no_order_page_has_save_buttons(admin_client, new_order, moves):
    order = new_order()
    if moves:
        move_order(order.pk, *moves)

    page = admin_client.get(f"{ORDERS}{order.pk}/change/").content.decode()

    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert "Change order" not in page


def test_an_audit_entry_page_has_no_save_button(admin_client, new_order):
    new_order()
    entry = AuditLog.objects.filter(action="order.created").get()

    page = admin_client.get(f"/admin/audit/auditlog/{entry.pk}/change/").content.decode()

    assert 'name="_save"' not in page


def test_the_order_page_reads_as_a_timeline_from_one_audit_query(admin_client, new_order):
    order = new_order()
    move_order(order.pk, "process")
    admin_client.post(f"{ORDERS}{order.pk}/cancel/", {"reason": "Out of gift wrap"})

    with CaptureQueriesContext(connection) as ctx:
        page = admin_client.get(f"{ORDERS}{order.pk}/change/").content.decode()

    audit_queries = [q for q in ctx.captured_queries if "audit_auditlog" in q["sql"]]
    assert len(audit_queries) == 1
    timeline = re.search(r'<ol class="order-timeline".*?</ol>', page, re.S)
    assert timeline
    steps = [visible_text(li).split() for li in re.findall(r"<li>.*?</li>", timeline.group(0))]
    assert [step[0] for step in steps] == ["Placed", "Processed", "Cancelled"]
    text = visible_text(timeline.group(0))
    assert "by API key" in text  # placed by the storefront's key
    assert "by the tests job" in text
    assert "by boss; reason: Out of gift wrap" in text


def test_a_pending_order_shows_until_when_it_is_reserved(admin_client, new_order):
    order = new_order()

    page = admin_client.get(f"{ORDERS}{order.pk}/change/").content.decode()

    assert "Reserved until" in visible_text(re.search(r"order-timeline.*?</ol>", page, re.S)[0])


def test_the_stock_form_is_in_the_admins_style(admin_client, teapot):
    page = admin_client.get(f"{PRODUCTS}{teapot.pk}/stock/").content.decode()

    assert breadcrumbs(page) == [
        "Home",
        "Catalog",
        "Products",
        str(teapot),
        "Receive / adjust stock",
    ]
    assert '<fieldset class="module aligned' in page
    assert "field-kind" in page and "field-quantity" in page and "field-reason" in page
    assert '<div class="submit-row">' in page


def test_low_stock_is_measured_against_the_products_threshold(
    admin_client, make_product, receive, system_actor, django_capture_on_commit_callbacks
):
    from pms_backend.shopsettings.services import setting_set

    product = make_product("published", sku="THRESH-1")
    receive(product, 8)  # over the shop's threshold of 5
    row_before = _row(admin_client, "THRESH-1")
    with django_capture_on_commit_callbacks(execute=True):  # the settings cache forgets
        setting_set(
            actor=system_actor,
            key="inventory.low_stock_threshold",
            value=10,
            product_ids=[product.pk],
        )

    assert "(low)" not in row_before
    assert "8 (low)" in visible_text(_row(admin_client, "THRESH-1"))


def _row(client, text: str) -> str:
    page = client.get(PRODUCTS).content.decode()
    return next(row for row in re.split(r"<tr[ >]", page) if text in row)


# --- Words ----------------------------------------------------------------------------------


def test_transition_messages_are_sentences(admin_client, make_product, new_order):
    product = make_product(sku="DRAFT-9")
    order = new_order()

    published = admin_client.post(
        f"{PRODUCTS}{product.pk}/change/",
        {**product_form(product), "_fsm_transition_to": "publish"},
        follow=True,
    )
    processed = press(admin_client, order.pk, "process")

    assert "DRAFT-9 published." in messages_of(published)
    assert f"Order {order.number} processed." in messages_of(processed)


def test_labels_spell_acronyms_in_capitals(admin_client, new_order, teapot):
    order = new_order()

    products = visible_text(admin_client.get(PRODUCTS).content.decode())
    product = visible_text(admin_client.get(f"{PRODUCTS}{teapot.pk}/change/").content.decode())
    order_page = visible_text(admin_client.get(f"{ORDERS}{order.pk}/change/").content.decode())

    assert "SKU" in products.split() and "Sku" not in products.split()
    assert "SKU:" in product
    assert "API key:" in order_page and "Api key" not in order_page
    assert "SKU" in order_page.split() and "Sku" not in order_page.split()


def test_a_read_only_product_page_says_sku_too(make_staff, teapot):
    keeper = make_staff("catalog.view_product")

    page = visible_text(keeper.get(f"{PRODUCTS}{teapot.pk}/change/").content.decode())

    assert "SKU:" in page and "Sku" not in page
    assert "TEA-1" in page


def test_the_stock_refusal_says_what_staff_can_do(admin_client, teapot, new_order, make_product):
    new_order(3)  # 50 on hand, 3 reserved

    response = admin_client.post(
        f"{PRODUCTS}{teapot.pk}/stock/", {"kind": "adjustment", "quantity": "-60", "reason": "x"}
    )
    empty = make_product(sku="EMPTY-1")
    nothing = admin_client.post(
        f"{PRODUCTS}{empty.pk}/stock/", {"kind": "adjustment", "quantity": "-300", "reason": "x"}
    )

    [message] = response.context["form"].non_field_errors()
    assert message == (
        "Cannot take 60 off: 50 on hand at Main warehouse and 3 are reserved by open orders, "
        "so at most 47 can be taken off. Enter 47 or fewer, or complete or cancel those "
        "orders first."
    )
    [message] = nothing.context["form"].non_field_errors()
    assert message == (
        "Cannot take 300 off: 0 on hand at Main warehouse, so nothing can be taken off now. "
        "Record the receipt first if goods arrived."
    )


# --- No Python dicts, no raw codes ----------------------------------------------------------


# Event types (``product.published``) are the names webhook receivers subscribe to: the
# outbox and the webhook screens show them as they are. Everywhere else an audit action
# reads in words.
EVENT_TYPE_PAGES = ("/admin/events/", "/admin/webhooks/")


def _codes_staff_must_not_read() -> set[str]:
    """Choice values that differ from their label and read as code (``api_key``), and the
    error codes of the domains."""
    from catalog.errors import CatalogErrorCode
    from inventory.errors import InventoryErrorCode
    from orders.errors import OrderErrorCode

    codes = {
        str(c) for enum in (CatalogErrorCode, InventoryErrorCode, OrderErrorCode) for c in enum
    }
    for model in admin.site._registry:
        for field in model._meta.get_fields():
            for value, label in getattr(field, "flatchoices", None) or []:
                if isinstance(value, str) and "_" in value and value != str(label):
                    codes.add(value)
    return codes


@pytest.fixture
def sample_shop(new_order, make_product, make_key, teapot):
    make_product("draft", sku="DRAFT-1")
    make_product("archived", sku="OLD-1")
    make_key("admin", name="back office")
    _pending, processing, completed, cancelled, refunded = (new_order(1) for _ in range(5))
    move_order(processing.pk, "process")
    move_order(completed.pk, "process", "complete")
    move_order(cancelled.pk, "cancel", reason="changed their mind")
    move_order(refunded.pk, "process", "complete", "refund", restock=True)


def _pattern(codes) -> re.Pattern[str]:
    return re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, sorted(codes))) + r")(?![\w-])")


def test_no_admin_page_shows_a_python_dict_or_a_raw_code(admin_client, sample_shop):
    pattern = _pattern(_codes_staff_must_not_read())
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"api_key.created", "order.cancel", "stock.reserve"} <= actions
    action_pattern = _pattern(actions)
    problems = []
    # The pages of their own: each order's cancel and refund page, each product's stock form.
    urls = [
        f"{ORDERS}{pk}/{page}/"
        for pk in Order.objects.values_list("pk", flat=True)
        for page in ("cancel", "refund")
    ]
    urls += [f"{PRODUCTS}{pk}/stock/" for pk in Product.objects.values_list("pk", flat=True)]
    # The pages that show a new secret once, then (the second time) say it is not shown.
    for add, data in (
        (
            "/admin/webhooks/webhookendpoint/add/",
            {"url": "https://shop.example/h", "is_active": "on"},
        ),
        ("/admin/apikeys/apikey/add/", {"name": "walk", "scope_choices": ["storefront"]}),
    ):
        shown = admin_client.post(add, data)
        assert shown.status_code == 302, shown.content[:2000]
        urls += [shown["Location"], shown["Location"]]
    request = _request_of(admin_client)
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = f"/admin/{opts.app_label}/{opts.model_name}/"
        urls.append(changelist)
        for pk in model_admin.get_queryset(request).values_list("pk", flat=True)[:8]:
            urls.append(f"{changelist}{pk}/change/")
    pages = 0
    for url in urls:
        response = admin_client.get(url)
        if response.status_code != 200:
            continue
        pages += 1
        text = visible_text(response.content.decode())
        if "{'" in text or "'}" in text:
            problems.append(f"{url}: a Python dict")
        matches = [*pattern.finditer(text)]
        if not url.startswith(EVENT_TYPE_PAGES):
            matches += action_pattern.finditer(text)
        for match in matches:
            around = text[max(0, match.start() - 60) : match.end() + 60]
            problems.append(f"{url}: the code {match.group(1)!r} in {around!r}")
    assert pages > 40  # the walk saw the pages, not only redirects and refusals
    assert not problems, "\n".join(problems)


def _request_of(client):
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(username="boss")
    return request


def test_the_audit_log_names_actors_and_fields_in_words(admin_client, sample_shop):
    """The actor as staff say it (not the stored ``api_key:…`` label), IP and request ID
    written as acronyms."""
    listing = visible_text(admin_client.get("/admin/audit/auditlog/").content.decode())
    assert "the tests job" in listing or "API key " in listing
    assert "api_key:" not in listing and "job:" not in listing
    entry = AuditLog.objects.order_by("-pk").first()
    assert entry is not None
    page = visible_text(
        admin_client.get(f"/admin/audit/auditlog/{entry.pk}/change/").content.decode()
    )
    assert "IP address" in page and "Request ID" in page
    assert "Actor ID" in page
    assert "Ip:" not in page and "Request id" not in page and "Actor id" not in page


AUDIT = "/admin/audit/auditlog/"


def test_the_audit_log_names_actions_in_words_and_filters_by_their_code(admin_client, sample_shop):
    cancelled = AuditLog.objects.get(action="order.cancel")

    listing = admin_client.get(AUDIT).content.decode()
    cells = re.findall(r'field-action_name">(.*?)</td>', listing)
    column = [visible_text(td).strip() for td in cells]
    sidebar = re.search(r'<nav id="changelist-filter".*?</nav>', listing, re.S)
    assert sidebar
    by_action = dict(re.findall(r'href="\?action=([\w.]+)"[^>]*>([^<]+)</a>', sidebar.group(0)))
    filtered = admin_client.get(AUDIT, {"action": "order.cancel"})
    entry = visible_text(admin_client.get(f"{AUDIT}{cancelled.pk}/change/").content.decode())

    assert {"API key created", "Order cancelled", "Stock reserved", "Order placed"} <= set(column)
    assert by_action["order.cancel"] == "Order cancelled"
    assert by_action["api_key.created"] == "API key created"
    assert [e.pk for e in filtered.context["cl"].result_list] == [cancelled.pk]
    assert "Order cancelled" in entry and "order.cancel" not in entry
    assert f"Order cancelled by the tests job, {cancelled.created_at:%Y-%m-%d}" in entry
