"""The metric collection job: its numbers are the database's, per hour and per day;
running it again replaces its rows; bad time ranges are refused clearly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.actors import Actor
from catalog.models import Product
from inventory.models import Stock
from inventory.monitoring import STOCK_LOW, STOCK_OUT, STOCK_VALUE
from orders.models import Order
from orders.monitoring import ORDERS_BY_STATUS, ORDERS_PLACED, PENDING_RESERVATIONS, REVENUE
from orders.services import order_place, order_transition
from pms_backend.errors import InvalidInput
from pms_backend.monitoring import services as m
from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.periods import period_start
from pms_backend.monitoring.selectors import metric_series
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
NOW = datetime(2025, 3, 12, 15, 40, tzinfo=UTC)


def order(*lines, at: datetime | None = None) -> Order:
    placed = order_place(
        actor=ACTOR,
        items=[{"product": p.pk, "quantity": q} for p, q in lines],
        customer=ORDER_CUSTOMER,
        shipping_address=ORDER_ADDRESS,
    )
    if at is not None:
        Order.objects.filter(pk=placed.pk).update(created_at=at)
    return placed


@pytest.fixture
def shop(make_product, receive):
    """A: 10.00, 100 on hand. B: 2.50, 8 on hand (low after an order of 4). C: published,
    never stocked (out). D: a draft with 10 on hand (counted in stock value only)."""
    a = make_product("published", price=Decimal("10.00"))
    b = make_product("published", price=Decimal("2.50"))
    c = make_product("published", price=Decimal("7.00"))
    d = make_product("draft", price=Decimal("19.90"))
    receive(a, 100)
    receive(b, 8)
    receive(d, 10)
    return a, b, c, d


@pytest.fixture
def orders(shop):
    """Orders today at 15:xx and 14:xx, one cancelled; one yesterday; one 40 days ago."""
    a, b, _, _ = shop
    today_15 = NOW.replace(minute=5)
    today_14 = NOW.replace(hour=14, minute=30)
    yesterday = NOW - timedelta(days=1, hours=3)
    placed = [
        order((a, 2), (b, 4), at=today_15),  # 30.00, pending: b has 4 available (low)
        order((a, 1), at=today_15),  # 10.00
        order((a, 3), at=today_14),  # 30.00, cancelled: no revenue
        order((a, 5), at=yesterday),  # 50.00
        order((a, 1), at=NOW - timedelta(days=40)),  # 10.00
    ]
    order_transition(actor=ACTOR, order_id=placed[2].pk, transition="cancel")
    order_transition(actor=ACTOR, order_id=placed[1].pk, transition="process")
    return placed


def snapshot(name, granularity, start) -> MetricSnapshot:
    return MetricSnapshot.objects.get(name=name, granularity=granularity, period_start=start)


def db_flows(start: datetime, end: datetime) -> tuple[int, Decimal]:
    """Orders placed and revenue between ``start`` and ``end``, straight from the orders."""
    placed = Order.objects.filter(created_at__gte=start, created_at__lt=end)
    revenue = sum(
        (o.total for o in placed if o.status not in ("cancelled", "refunded")), Decimal(0)
    )
    return placed.count(), revenue


def test_flows_per_hour_and_day_equal_the_orders(orders):
    m.metrics_collect(now=NOW)

    today = period_start(NOW, "day")
    for granularity, start, length in [
        ("day", today, timedelta(days=1)),
        ("day", today - timedelta(days=1), timedelta(days=1)),
        ("hour", NOW.replace(minute=0), timedelta(hours=1)),
        ("hour", NOW.replace(hour=14, minute=0), timedelta(hours=1)),
        ("hour", NOW.replace(hour=3, minute=0), timedelta(hours=1)),
    ]:
        count, revenue = db_flows(start, start + length)
        assert snapshot(ORDERS_PLACED, granularity, start).value == count, (granularity, start)
        assert snapshot(REVENUE, granularity, start).value == revenue, (granularity, start)
    # The numbers the scenario was built with, so the comparison above cannot be vacuous.
    assert snapshot(ORDERS_PLACED, "day", today).value == 3
    assert snapshot(REVENUE, "day", today).value == Decimal("40.00")
    assert snapshot(REVENUE, "hour", NOW.replace(hour=14, minute=0)).value == 0
    assert snapshot(REVENUE, "day", today).data == {"currencies": {"EUR": "40.00"}}
    # By default only yesterday and today are computed: 40 days ago is left alone.
    assert not MetricSnapshot.objects.filter(period_start__lt=today - timedelta(days=1)).exists()


def test_levels_equal_the_stock_and_orders(orders, shop):
    _, b, c, _ = shop
    m.metrics_collect(now=NOW)
    hour = NOW.replace(minute=0)

    stock_value = sum(
        (s.on_hand * s.product.price for s in Stock.objects.select_related("product")),
        Decimal(0),
    )
    assert snapshot(STOCK_VALUE, "hour", hour).value == stock_value
    assert stock_value == Decimal("10.00") * 100 + Decimal("2.50") * 8 + Decimal("19.90") * 10

    def available(product):
        stock = Stock.objects.filter(product=product).first()
        return (stock.available, stock.low_stock_threshold) if stock else (0, 5)

    published = Product.objects.filter(status="published")
    low = {p.pk for p in published if 0 < available(p)[0] <= available(p)[1]}
    out = {p.pk for p in published if available(p)[0] <= 0}
    low_row, out_row = snapshot(STOCK_LOW, "hour", hour), snapshot(STOCK_OUT, "hour", hour)
    assert low_row.value == len(low) == 1 and low == {b.pk}
    assert {p["id"] for p in low_row.data["products"]} == low
    assert low_row.data["products"][0] | {"sku": b.sku} == {
        "id": b.pk,
        "sku": b.sku,
        "name": b.name,
        "available": 4,
        "threshold": settings.PMS_LOW_STOCK_THRESHOLD,
    }
    assert out_row.value == len(out) == 1 and {p["id"] for p in out_row.data["products"]} == {c.pk}

    statuses = snapshot(ORDERS_BY_STATUS, "day", period_start(NOW, "day"))
    for status in Order.Status.values:
        assert statuses.data[status] == Order.objects.filter(status=status).count()
    pending = snapshot(PENDING_RESERVATIONS, "hour", hour)
    assert pending.value == Order.objects.filter(status="pending").count() == 3
    assert pending.data["units"] == sum(Stock.objects.values_list("reserved", flat=True))


def test_running_again_replaces_the_rows_and_follows_new_orders(orders, shop):
    first = m.metrics_collect(now=NOW)
    rows = MetricSnapshot.objects.count()
    assert rows == first.rows

    m.metrics_collect(now=NOW)
    assert MetricSnapshot.objects.count() == rows

    order((shop[0], 1), at=NOW.replace(minute=30))
    m.metrics_collect(now=NOW + timedelta(minutes=5))
    assert MetricSnapshot.objects.count() == rows
    today = period_start(NOW, "day")
    assert snapshot(ORDERS_PLACED, "day", today).value == 4
    assert snapshot(REVENUE, "day", today).value == Decimal("50.00")


def test_backfill_reads_in_constant_queries(orders):
    def reads(days: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            m.metrics_collect(now=NOW, since=NOW - timedelta(days=days))
        return sum(q["sql"].lstrip().upper().startswith("SELECT") for q in queries)

    assert reads(45) == reads(3) <= 15
    forty_days_ago = period_start(NOW - timedelta(days=40), "day")
    assert snapshot(ORDERS_PLACED, "day", forty_days_ago).value == 1
    assert snapshot(REVENUE, "day", forty_days_ago).value == Decimal("10.00")
    days = MetricSnapshot.objects.filter(name=ORDERS_PLACED, granularity="day").count()
    assert days == 46
    hours = MetricSnapshot.objects.filter(name=ORDERS_PLACED, granularity="hour").count()
    assert hours == 45 * 24 + 1  # from 15:00 then to 15:00 now


def test_the_command_and_the_scheduled_task(orders):
    call_command("collect_metrics", "--since", "2025-01-01", "--until", "2025-01-02")
    assert (
        MetricSnapshot.objects.filter(
            name=ORDERS_PLACED, granularity="day", period_start__year=2025, period_start__month=1
        ).count()
        == 2
    )

    from pms_backend.monitoring.tasks import collect_metrics

    assert collect_metrics.delay().get() > 0
    today = period_start(timezone.now(), "day")
    assert MetricSnapshot.objects.filter(name=STOCK_VALUE, period_start=today).exists()
    assert settings.CELERY_BEAT_SCHEDULE["collect-metrics"] == {
        "task": "monitoring.collect_metrics",
        "schedule": 3600.0,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is not an ISO 8601 date"),
        (["--since", "2025-02-30"], "--since: '2025-02-30' is not an ISO 8601 date"),
        (["--since", "2025-03-01", "--until", "03/04/2025"], "--until: '03/04/2025' is not"),
        (["--since", "2025-03-05", "--until", "2025-03-01"], "must be before until"),
        (["--since", "2999-01-01"], "is in the future"),
        (["--since", "2000-01-01"], "longer than 400 days"),
        (["--until", "2025-03-01"], "--until needs --since"),
    ],
)
def test_malformed_time_ranges_are_refused_clearly(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("collect_metrics", *args)
    assert not MetricSnapshot.objects.exists()


def test_a_series_query_refuses_a_backwards_range():
    with pytest.raises(InvalidInput) as refused:
        metric_series(
            names=[ORDERS_PLACED],
            granularity="day",
            since=NOW,
            until=NOW - timedelta(days=1),
            now=NOW,
        )
    assert refused.value.code == "invalid_time_range"
    assert "must be before until" in refused.value.detail
