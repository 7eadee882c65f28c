"""The staff dashboard on /admin/: numbers the database agrees with, sections only for
staff who may see them, and queries that do not grow with the days shown."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.actors import Actor
from catalog.models import Product
from inventory.models import Stock
from orders.models import Order
from orders.monitoring import ORDERS_PLACED, REVENUE
from orders.services import order_place, order_transition
from pms_backend.events.models import Event
from pms_backend.monitoring import services as m
from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.periods import period_start
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER, wait_out_midnight
from webhooks import signing
from webhooks.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.monitoring import WEBHOOK_SUCCESS_RATE

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
PASSWORD = "a long enough passphrase 42"


def metric(html: str, name: str) -> str:
    found = re.search(rf'data-metric="{name}">([^<]*)<', html)
    assert found, f"no {name} on the page"
    return found.group(1).strip()


def staff(username: str, *, groups=(), permissions=()):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=True)
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    for code in permissions:
        app_label, codename = code.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def endpoint(url: str, **fields) -> WebhookEndpoint:
    hook = WebhookEndpoint(url=url, description=url.split("//")[1], **fields)
    hook.secret = signing.new_secret()
    hook.save()
    return hook


@pytest.fixture
def shop(make_product, receive):
    """Stock, orders over the last days, webhook attempts and two unhealthy endpoints."""
    a = make_product("published", price=Decimal("12.50"))
    b = make_product("published", price=Decimal("3.00"))
    c = make_product("published", price=Decimal("8.00"))  # never stocked: out
    receive(a, 50)
    receive(b, 6)
    now = timezone.now()
    placed = []
    for quantity, days_ago in [(1, 0), (2, 0), (3, 1), (1, 5), (4, 12), (1, 45)]:
        order = order_place(
            actor=ACTOR,
            items=[{"product": a.pk, "quantity": quantity}],
            customer=ORDER_CUSTOMER,
            shipping_address=ORDER_ADDRESS,
        )
        Order.objects.filter(pk=order.pk).update(created_at=now - timedelta(days=days_ago))
        placed.append(order)
    order_place(
        actor=ACTOR,
        items=[{"product": b.pk, "quantity": 2}],
        customer=ORDER_CUSTOMER,
        shipping_address=ORDER_ADDRESS,
    )
    order_transition(actor=ACTOR, order_id=placed[2].pk, transition="cancel")

    healthy = endpoint("https://good.example/hooks")
    endpoint("https://flaky.example/hooks", failing_since=now - timedelta(hours=2))
    endpoint("https://gone.example/hooks", is_active=False, disabled_reason="410 Gone")
    event = Event.objects.first()
    delivery = WebhookDelivery.objects.create(event=event, endpoint=healthy, status="succeeded")
    for code in (200, 200, 204, 500):
        DeliveryAttempt.objects.create(delivery=delivery, status_code=code)
    m.metrics_collect(since=now - timedelta(days=60))
    return a, b, c


def test_the_numbers_are_the_databases(client, staff_user, shop):
    _, b, c = shop
    client.force_login(staff_user)

    page = client.get("/admin/").content.decode()

    now = timezone.now()
    today = period_start(now, "day")
    window = Order.objects.filter(created_at__gte=today - timedelta(days=29))
    counted = window.exclude(status__in=["cancelled", "refunded"])
    assert int(metric(page, "orders-total")) == window.count() == 6
    assert Decimal(metric(page, "revenue-total")) == sum(o.total for o in counted)
    todays = Order.objects.filter(created_at__gte=today)
    assert int(metric(page, "orders-today")) == todays.count()
    assert Decimal(metric(page, "revenue-today")) == sum(o.total for o in todays)
    assert int(metric(page, "pending-orders")) == Order.objects.filter(status="pending").count()
    stock_value = sum(s.on_hand * s.product.price for s in Stock.objects.select_related("product"))
    assert Decimal(metric(page, "stock-value")) == stock_value == Decimal("643.00")
    assert int(metric(page, "low-stock")) == 1  # b: 6 on hand, 2 reserved, threshold 5
    assert int(metric(page, "out-of-stock")) == 1  # c
    assert f'href="/admin/catalog/product/{b.pk}/change/"' in page
    assert f'href="/admin/catalog/product/{c.pk}/change/"' in page
    assert metric(page, "webhook-success") == "75.0 %"
    assert "3 of 4 attempts" in page
    assert "flaky.example/hooks</a>: failing" in page
    assert "gone.example/hooks</a>: disabled" in page and "(410 Gone)" in page
    assert "good.example" not in page
    # Thirty bars, one per day, each with the day's count of orders.
    bars = re.findall(r'<rect class="bar"[^>]*data-day="([\d-]+)" data-value="(\d+)"', page)
    assert len(bars) == 30
    by_day = dict(bars)
    assert by_day[f"{today - timedelta(days=12):%Y-%m-%d}"] == "1"
    assert by_day[f"{today:%Y-%m-%d}"] == str(todays.count())
    assert "<svg" in page and "cdn" not in page.lower()
    # The live notices of base_site.html are still there.
    assert 'id="pms-notices"' in page and "/ws/v1/events/" in page


@pytest.mark.parametrize(
    ("who", "sections"),
    [
        ({"groups": ["Warehouse staff"]}, {"orders", "stock"}),
        ({"groups": ["Catalog managers"]}, {"stock"}),
        ({"groups": ["Order managers"]}, {"orders", "stock"}),
        ({"permissions": ["webhooks.view_webhookendpoint"]}, {"webhooks"}),
        ({"groups": ["Auditors"]}, set()),
    ],
)
def test_staff_see_only_the_sections_they_may(client, shop, who, sections):
    client.force_login(staff("member", **who))

    page = client.get("/admin/").content.decode()

    shown = set(re.findall(r'<section id="pms-(\w+)"', page))
    assert shown == sections
    assert ('id="pms-dashboard"' in page) == bool(sections)
    if "orders" not in sections:
        assert 'data-metric="revenue-total"' not in page
    if "webhooks" not in sections:
        assert "flaky.example" not in page


def _snapshots(days: int) -> None:
    m.metrics_collect()  # the latest levels; the flows are overwritten below
    now = timezone.now()
    today = period_start(now, "day")
    rows = []
    for n in range(days):
        start = today - timedelta(days=n)
        rows += [
            MetricSnapshot(
                name=name,
                granularity="day",
                period_start=start,
                value=Decimal(n % 7),
                data={"currencies": {"EUR": str(n % 7)}} if name == REVENUE else {},
                collected_at=now,
            )
            for name in (ORDERS_PLACED, REVENUE)
        ]
    for n in range(24):
        rows.append(
            MetricSnapshot(
                name=WEBHOOK_SUCCESS_RATE,
                granularity="hour",
                period_start=period_start(now, "hour") - timedelta(hours=n),
                value=Decimal(1),
                data={"attempts": 2, "succeeded": 2},
                collected_at=now,
            )
        )
    MetricSnapshot.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["name", "granularity", "period_start"],
        update_fields=["value", "data"],
    )


@pytest.mark.parametrize("days", [30, 365])
def test_queries_do_not_grow_with_the_days_shown(
    client, staff_user, make_product, days, django_assert_max_num_queries
):
    make_product("published")
    _snapshots(days)
    client.force_login(staff_user)
    client.get("/admin/")  # warm the session and the settings cache

    with django_assert_max_num_queries(LIVE_DASHBOARD_QUERIES):
        page = client.get(f"/admin/?days={days}").content.decode()

    assert page.count('<rect class="bar"') == days
    assert int(metric(page, "orders-total")) == sum(n % 7 for n in range(days))
    assert metric(page, "webhook-success") == "100.0 %"


def test_a_year_costs_the_same_queries_as_a_month(client, staff_user):
    _snapshots(365)
    client.force_login(staff_user)
    client.get("/admin/")

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    assert queries("/admin/?days=365") == queries("/admin/?days=30") == queries("/admin/?days=7")


@pytest.mark.parametrize("days", ["abc", "0", "9999", "-3", "1e3"])
def test_a_malformed_day_count_is_explained_and_the_default_shown(client, staff_user, days):
    _snapshots(40)
    client.force_login(staff_user)

    page = client.get(f"/admin/?days={days}").content.decode()

    assert "is not a whole number of days from 1 to 365; showing the last 30 days." in page
    assert page.count('<rect class="bar"') == 30


def test_an_empty_shop_says_how_to_collect(client, staff_user):
    client.force_login(staff_user)

    page = client.get("/admin/").content.decode()

    assert "no history or levels collected yet" in page and "collect_metrics" in page
    assert metric(page, "orders-total") == "0"
    assert Product.objects.count() == 0


@pytest.mark.usefixtures("clear_of_midnight")  # ``shop`` places today's orders
def test_orders_placed_now_show_today_without_collecting_metrics(client, staff_user, shop):
    a, b, _ = shop  # collected a moment ago: today's snapshot counts three orders
    before = int(metric(client_page(client, staff_user), "orders-today"))
    just_placed = [
        order_place(
            actor=ACTOR,
            items=[{"product": product.pk, "quantity": 1}],
            customer=ORDER_CUSTOMER,
            shipping_address=ORDER_ADDRESS,
        )
        for product in (a, a, b)
    ]

    page = client.get("/admin/").content.decode()

    today = Order.objects.filter(created_at__gte=period_start(timezone.now(), "day"))
    assert int(metric(page, "orders-today")) == before + 3 == today.count()
    revenue = sum(o.total for o in today.exclude(status__in=["cancelled", "refunded"]))
    assert Decimal(metric(page, "revenue-today")) == revenue
    assert sum(o.total for o in just_placed) == Decimal("28.00")
    assert int(metric(page, "pending-orders")) == Order.objects.filter(status="pending").count()
    bars = dict(re.findall(r'<rect class="bar"[^>]*data-day="([\d-]+)" data-value="(\d+)"', page))
    assert bars[f"{timezone.now():%Y-%m-%d}"] == str(today.count())
    assert int(metric(page, "orders-total")) == 9


def client_page(client, user) -> str:
    client.force_login(user)
    return client.get("/admin/").content.decode()


def test_an_empty_history_still_counts_todays_orders(client, staff_user, make_product, receive):
    wait_out_midnight()
    product = make_product("published", price=Decimal("4.00"))
    receive(product, 10)
    for _ in range(3):
        order_place(
            actor=ACTOR,
            items=[{"product": product.pk, "quantity": 2}],
            customer=ORDER_CUSTOMER,
            shipping_address=ORDER_ADDRESS,
        )

    page = client_page(client, staff_user)

    assert not MetricSnapshot.objects.exists()
    assert "no history or levels collected yet" in page
    assert metric(page, "orders-today") == metric(page, "orders-total") == "3"
    assert metric(page, "revenue-today") == "24.00"
    assert metric(page, "pending-orders") == "3"
    assert "6 units reserved" in page


def test_the_live_cards_cost_the_same_queries_however_many_orders_today(
    client, staff_user, make_product, receive, django_assert_num_queries
):
    product = make_product("published")
    receive(product, 100)
    _snapshots(30)
    client.force_login(staff_user)
    client.get("/admin/")  # warm the session and the settings cache

    def place(count: int) -> None:
        for _ in range(count):
            order_place(
                actor=ACTOR,
                items=[{"product": product.pk, "quantity": 1}],
                customer=ORDER_CUSTOMER,
                shipping_address=ORDER_ADDRESS,
            )

    place(1)
    with django_assert_num_queries(LIVE_DASHBOARD_QUERIES):
        one = client.get("/admin/").content.decode()
    place(20)
    with django_assert_num_queries(LIVE_DASHBOARD_QUERIES):
        many = client.get("/admin/").content.decode()

    assert (metric(one, "orders-today"), metric(many, "orders-today")) == ("1", "21")
    assert metric(many, "pending-orders") == "21"


def test_the_seeded_demo_fills_the_dashboard_on_first_login(client, staff_user):
    call_command(  # DEBUG is off under pytest-django: the demo orders need the flag
        "seed_database",
        "--products",
        "120",
        "--orders",
        "80",
        "--no-progress",
        "--allow-production",
    )

    page = client_page(client, staff_user)

    assert "history and levels as of" in page
    window = Order.objects.filter(
        created_at__gte=period_start(timezone.now(), "day") - timedelta(days=29)
    )
    assert int(metric(page, "orders-total")) == window.count() > 70
    bars = re.findall(r'<rect class="bar"[^>]*data-value="(\d+)"', page)
    assert sum(value != "0" for value in bars) >= 15  # a month, not one busy day
    assert int(metric(page, "low-stock")) > 0 and int(metric(page, "out-of-stock")) > 0
    assert Decimal(metric(page, "stock-value")) > 0
    assert 'data-status="refunded"' in page


# Session and user; the latest levels; the orders' series; today's orders and the pending
# ones, counted live; the stock at each location and its low levels, read live; the
# webhooks' series, endpoints and oldest undispatched event; the index's recent actions;
# the newest event, where the page's live notices start.
LIVE_DASHBOARD_QUERIES = 13
