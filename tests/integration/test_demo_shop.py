"""seed_database as a lived-in demo shop: stock in three bands on the published products,
a month of orders in every status placed through the order services, a consistent ledger,
an audit chain that verifies, the metric history behind the dashboard, and nothing added
twice."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone

from audit.chain import audit_seal, verify_chain
from audit.models import AuditLog
from catalog.models import Product
from inventory.demo import demo_stock_level
from inventory.integrity import inventory_drift
from inventory.models import InventoryMovement, Stock
from orders.demo import STATUS_CYCLE, demo_customers, demo_order
from orders.models import Order
from orders.monitoring import ORDERS_PLACED
from pms_backend.events.models import Event
from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.periods import period_start
from pms_backend.seeding import HISTORY_DAYS

pytestmark = pytest.mark.django_db
THRESHOLD = 5  # the shop's low-stock threshold (PMS_LOW_STOCK_THRESHOLD's default)


def seed(*args: str) -> str:
    out = io.StringIO()
    # pytest-django runs with DEBUG off, as production does: the demo orders need the flag.
    call_command(
        "seed_database",
        "--no-progress",
        "--allow-production",
        *args,
        stdout=out,
        stderr=io.StringIO(),
    )
    return out.getvalue()


def stock_bands() -> dict[str, list[Product]]:
    """The published products by what they have available: plenty, low or none."""
    bands: dict[str, list[Product]] = {"well": [], "low": [], "out": []}
    for product in Product.objects.filter(status="published").select_related("stock"):
        stock = getattr(product, "stock", None)
        available = stock.available if stock else 0
        band = "out" if available <= 0 else "low" if available <= THRESHOLD else "well"
        bands[band].append(product)
    return bands


def ledger() -> list[tuple]:
    return [(s.product_id, s.on_hand, s.reserved) for s in Stock.objects.order_by("product_id")] + [
        (Order.objects.count(), InventoryMovement.objects.count(), Event.objects.count())
    ]


def test_published_products_get_stock_in_three_bands_received_through_the_ledger():
    out = seed("--products", "200", "--orders", "150", "--seed", "3")

    bands = stock_bands()
    published = sum(len(products) for products in bands.values())
    assert len(bands["well"]) > published * 0.7
    assert 0 < len(bands["out"]) < len(bands["low"]) < published * 0.25
    # Only published products were stocked, each by one receipt of its demo level.
    receipts = InventoryMovement.objects.filter(kind="receipt")
    assert not Stock.objects.exclude(product__status="published").exists()
    assert set(receipts.values_list("product__status", flat=True)) == {"published"}
    for movement in receipts.select_related("product"):
        assert movement.on_hand_delta == demo_stock_level(3, movement.product.sku, THRESHOLD)
        assert (movement.reference, movement.actor_label) == ("demo:seed 3", "job:seed_database")
    assert receipts.count() == len(bands["well"]) + len(bands["low"])
    audited = AuditLog.objects.filter(action="stock.receipt", actor_id="seed_database")
    assert audited.count() == receipts.count()
    assert f"Demo stock: {receipts.count()} products received" in out


def test_a_month_of_orders_in_every_status_through_the_order_services():
    started = time.monotonic()
    out = seed("--products", "200", "--orders", "150", "--seed", "3")
    seconds = time.monotonic() - started

    now = timezone.now()
    orders = list(Order.objects.prefetch_related("items"))
    assert len(orders) == 150 and "Demo orders: 150 new orders" in out
    by_status = {status: [o for o in orders if o.status == status] for status in Order.Status}
    assert all(by_status.values()), {s: len(o) for s, o in by_status.items()}
    assert len(by_status["completed"]) > len(orders) / 3
    assert all(o.cancellation_reason for o in by_status["cancelled"])
    assert {o.restocked for o in by_status["refunded"]} == {True, False}
    # Placed over the last month (most days have some), each move after the one before.
    assert all(now - timedelta(days=HISTORY_DAYS) <= o.created_at <= now for o in orders)
    assert len({o.created_at.date() for o in orders}) >= 20
    for order in orders:
        moments = [
            order.created_at,
            order.processing_at,
            order.completed_at,
            order.refunded_at,
            order.cancelled_at,
        ]
        dated = [moment for moment in moments if moment is not None]
        assert dated == sorted(dated) and dated[-1] <= now, order.status
        assert order.total == sum(item.line_total for item in order.items.all())
    assert all(o.reserved_until > now for o in by_status["pending"])
    # Real reservations, sales, releases and returns, and the records of each.
    kinds = set(InventoryMovement.objects.values_list("kind", flat=True))
    assert kinds == {"receipt", "reserve", "sale", "release", "return"}
    returned = InventoryMovement.objects.filter(kind="return").values_list("reference", flat=True)
    assert set(returned) == {f"order:{o.number}" for o in by_status["refunded"] if o.restocked}
    assert AuditLog.objects.filter(action="order.created").count() == 150
    assert Event.objects.filter(type="order.created").count() == 150
    assert inventory_drift() == []
    # The audit log is a true record (written now, by the job): its chain verifies.
    assert audit_seal(now=timezone.now() + timedelta(seconds=5)) == AuditLog.objects.count()
    report = verify_chain()
    assert report.ok and report.verified == AuditLog.objects.count()
    call_command("verify_audit_chain", stdout=io.StringIO())
    call_command("check_inventory", stdout=io.StringIO())
    print(f"seed_database --products 200 --orders 150: {seconds:.1f} s")


def test_the_metric_history_covers_the_month_of_orders():
    seed("--products", "120", "--orders", "80", "--seed", "4")

    days = MetricSnapshot.objects.filter(name=ORDERS_PLACED, granularity="day")
    assert days.aggregate(n=Sum("value"))["n"] == Order.objects.count() == 80
    today = period_start(timezone.now(), "day")
    assert days.filter(period_start__lt=today - timedelta(days=20), value__gt=0).exists()
    assert days.filter(period_start=today).exists()


def test_running_it_again_adds_nothing_and_a_larger_count_adds_only_the_missing_orders():
    seed("--products", "80", "--orders", "30", "--seed", "5")
    before, audit = ledger(), AuditLog.objects.count()

    out = seed("--products", "80", "--orders", "30", "--seed", "5")

    assert ledger() == before
    assert AuditLog.objects.count() == audit
    assert "0 new products" in out and "0 new orders" in out and "(30 already there)" in out
    assert "0 products received" in out

    out = seed("--products", "80", "--orders", "45", "--seed", "5")

    assert Order.objects.count() == 45 and "15 new orders" in out
    assert inventory_drift() == []


def test_another_seed_has_its_own_customers_and_orders():
    seed("--products", "40", "--orders", "10", "--seed", "5")
    out = seed("--products", "40", "--orders", "10", "--seed", "6")

    assert "10 new orders" in out
    assert Order.objects.count() == 20


def test_a_run_stocks_and_orders_only_the_demo_products_it_names():
    seed("--products", "40", "--seed", "10", "--catalog-only")
    seed("--products", "60", "--seed", "1", "--catalog-only")

    seed("--products", "40", "--orders", "20", "--seed", "1")

    touched = Product.objects.filter(stock__isnull=False) | Product.objects.filter(
        order_items__isnull=False
    )
    skus = set(touched.values_list("sku", flat=True))
    assert skus and all(sku.startswith("DEMO1-") and sku < "DEMO1-0000040" for sku in skus)


@pytest.mark.parametrize(
    ("args", "orders"),
    [
        (["--products", "0"], 0),
        (["--products", "60", "--orders", "0"], 0),
        (["--products", "60", "--catalog-only"], 0),
    ],
)
def test_the_sizes_can_be_zero(args, orders):
    out = seed("--seed", "5", *args)

    assert Order.objects.count() == orders
    if "--catalog-only" in args:
        assert not Stock.objects.exists() and "Demo orders" not in out
        assert not MetricSnapshot.objects.exists()
    if args[1] == "0":
        assert "Demo orders: none placed" in out
    assert inventory_drift() == []


@pytest.mark.parametrize("value", ["-1", "100001"])
def test_a_bad_order_count_is_refused_before_anything_is_written(value):
    with pytest.raises(CommandError, match=re.escape("--orders must be from 0 to 100,000")):
        seed("--products", "10", "--orders", value)

    assert not Product.objects.exists()


def test_the_demo_orders_are_the_same_for_the_same_seed():
    now = timezone.now()
    customers = demo_customers(9)
    reservation = timedelta(minutes=30)

    def plan(index):
        order = demo_order(9, index, customers=customers, now=now, reservation=reservation)
        return (order.customer, order.placed_at, order.moves, order.restock, order.reason)

    assert [plan(i) for i in range(40)] == [plan(i) for i in range(40)]
    assert demo_customers(9) == customers != demo_customers(10)
    # Every status comes round within the first orders, refunds with and without restock.
    assert set(STATUS_CYCLE[:7]) == {
        "completed",
        "cancelled",
        "processing",
        "pending",
        "refunded",
        "refunded_restocked",
    }
