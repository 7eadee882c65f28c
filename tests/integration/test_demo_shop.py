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
from django.db.models import Count, Sum
from django.utils import timezone

from audit.chain import audit_seal, verify_chain
from audit.models import AuditLog
from catalog.models import Product
from inventory.demo import demo_stock_level, demo_stock_spread
from inventory.integrity import inventory_drift
from inventory.models import InventoryMovement, Location, Stock, StockLevel
from orders.demo import STATUS_CYCLE, demo_customers, demo_order
from orders.models import (
    Fulfillment,
    LineAllocation,
    Order,
    OrderItem,
    Refund,
    Return,
    ReturnLine,
)
from orders.monitoring import ORDERS_PLACED
from pms_backend.events.models import Event
from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.periods import period_start
from pms_backend.seeding import HISTORY_DAYS
from tests.conftest import wait_out_midnight

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
    """The published products by what they have available: plenty, low or none (each
    variant of a product sold in variants, which holds no stock of its own)."""
    bands: dict[str, list[Product]] = {"well": [], "low": [], "out": []}
    selling = Product.objects.filter(status="published", options=[])
    for product in selling.select_related("stock"):
        stock = getattr(product, "stock", None)
        available = stock.available if stock else 0
        band = "out" if available <= 0 else "low" if available <= THRESHOLD else "well"
        bands[band].append(product)
    return bands


def ledger() -> list[tuple]:
    stock = Stock.objects.order_by("product_id")
    return [(s.product_id, s.on_hand, s.reserved, s.backordered) for s in stock] + [
        (Order.objects.count(), InventoryMovement.objects.count(), Event.objects.count()),
        (Fulfillment.objects.count(), Refund.objects.count(), Return.objects.count()),
        sorted(Return.objects.values_list("number", "status")),
        sorted(Fulfillment.objects.values_list("number", "carrier", "tracking_number")),
        Product.objects.filter(allow_backorder=True).count(),
        sorted(Product.objects.exclude(preorder_until=None).values_list("pk", "preorder_until")),
    ]


def test_published_products_get_stock_in_three_bands_received_through_the_ledger():
    out = seed("--products", "200", "--orders", "150", "--seed", "3")

    bands = stock_bands()
    published = sum(len(products) for products in bands.values())
    assert len(bands["well"]) > published * 0.7
    assert 0 < len(bands["out"]) < len(bands["low"]) < published * 0.25
    # Only published products were stocked, each by one receipt of its demo level at each
    # location it is spread over.
    receipts = InventoryMovement.objects.filter(kind="receipt")
    assert not Stock.objects.exclude(product__status="published").exists()
    assert set(receipts.values_list("product__status", flat=True)) == {"published"}
    received: dict[str, dict[str, int]] = {}
    for movement in receipts.select_related("product", "location"):
        received.setdefault(movement.product.sku, {})[movement.location.code] = (
            movement.on_hand_delta
        )
        assert (movement.reference, movement.actor_label) == ("demo:seed 3", "job:seed_database")
    for sku, at in received.items():
        level = demo_stock_level(3, sku, THRESHOLD)
        assert at == demo_stock_spread(3, sku, level)
        assert sum(at.values()) == level
    assert len(received) == len(bands["well"]) + len(bands["low"])
    audited = AuditLog.objects.filter(action="stock.receipt", actor_id="seed_database")
    assert audited.count() == receipts.count()
    assert f"Demo stock: {len(received)} products received" in out


def test_products_sold_in_variants_are_stocked_and_ordered_per_variant():
    out = seed("--products", "100", "--orders", "60", "--seed", "2")

    parents = Product.objects.filter(parent__isnull=True).exclude(options=[])
    variants = Product.objects.filter(parent__isnull=False)
    assert parents.count() == 80 and variants.count() == 280  # and 20 sell alone: 300
    # Apparel by Size and Colour, 2 to 5 variants each, following their product's status.
    for parent in parents.prefetch_related("variants"):
        own = list(parent.variants.all())
        assert 2 <= len(own) <= 5
        assert {v.status for v in own} == {parent.status}
        assert {tuple(v.option_values) for v in own} == {tuple(o["name"] for o in parent.options)}
    # Stock is received per variant over the three locations, never on the products.
    assert not Stock.objects.filter(product__in=parents).exists()
    assert not InventoryMovement.objects.filter(product__in=parents).exists()
    stocked = StockLevel.objects.filter(product__in=variants, on_hand__gt=0)
    assert set(stocked.values_list("location__code", flat=True)) == {"main", "store", "outlet"}
    # Orders name variants (and products without variants), each line a thing that sells.
    ordered = Product.objects.filter(order_items__isnull=False).distinct()
    assert ordered.filter(parent__isnull=False).exists()
    assert not ordered.exclude(options=[]).exists()
    assert "60 new orders" in out
    assert inventory_drift() == []
    report = io.StringIO()
    call_command("check_inventory", stdout=report)
    assert "Inventory OK" in report.getvalue()


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
    taken_back = ReturnLine.objects.filter(quantity_restocked__gt=0).values_list(
        "rma__order__number", flat=True
    )
    assert set(returned) == {f"order:{o.number}" for o in by_status["refunded"] if o.restocked} | {
        f"order:{number}" for number in taken_back
    }
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


def test_the_order_features_of_issue_17_show_in_a_shops_proportions():
    seed("--products", "200", "--orders", "150", "--seed", "3")
    now = timezone.now()

    # Some Processing orders are partly shipped: a parcel with a carrier and a tracking
    # page, shipped after the order went into processing; units are still to ship.
    processing = Order.objects.filter(status="processing")
    partly = processing.filter(fulfillments__isnull=False).distinct()
    assert 3 <= partly.count() <= processing.count() / 2
    for order in partly.prefetch_related("fulfillments", "items"):
        assert any(i.quantity_fulfilled < i.quantity for i in order.items.all())
        for parcel in order.fulfillments.all():
            assert parcel.carrier in {"DHL", "UPS", "Royal Mail"} and parcel.tracking_number
            assert parcel.tracking_url.startswith("https://")
            assert parcel.tracking_number in parcel.tracking_url
            assert order.processing_at < parcel.shipped_at < now
    # Every order that shipped whole has its parcels' carrier and tracking, shipped when it
    # completed.
    shipped = Fulfillment.objects.filter(order__completed_at__isnull=False).select_related("order")
    assert shipped.count() >= Order.objects.filter(completed_at__isnull=False).count()
    assert not shipped.filter(carrier="").exists()
    assert all(f.shipped_at == f.order.completed_at for f in shipped)
    # A few completed orders are partly refunded (with a reason), besides the orders
    # refunded whole; returns in every state, one received with a damaged unit.
    partial = Refund.objects.filter(rma=None, order__status="completed")
    assert 3 <= partial.count() <= 10
    assert all(r.reason and 0 < r.amount < r.order.total for r in partial.select_related("order"))
    assert Order.objects.filter(status="refunded").count() == 24
    states = dict(Return.objects.values_list("status").annotate(n=Count("pk")))
    assert states == {"requested": 2, "received": 2, "refunded": 2, "cancelled": 1}
    received = ReturnLine.objects.filter(rma__status__in=["received", "refunded"])
    assert received.filter(quantity_damaged=1).count() == 1
    assert all(line.location_id for line in received.filter(quantity_restocked__gt=0))
    assert Refund.objects.filter(rma__status="refunded").count() == 2
    # A variant takes backorders, another preorders until a date ahead; two open orders
    # have units waiting for their stock, counted on the stock rows.
    assert Product.objects.filter(allow_backorder=True, backorder_limit=25).count() == 1
    assert Product.objects.filter(preorder_until__gt=now + timedelta(days=14)).count() == 1
    waiting = OrderItem.objects.filter(backordered__gt=0)
    assert waiting.count() == 2
    assert set(waiting.values_list("order__status", flat=True)) <= {"pending", "processing"}
    assert (
        Stock.objects.aggregate(n=Sum("backordered"))["n"]
        == waiting.aggregate(n=Sum("backordered"))["n"]
    )
    # The stock and the audit log still agree with themselves.
    assert inventory_drift() == []
    report = io.StringIO()
    call_command("check_inventory", stdout=report)
    assert "Inventory OK" in report.getvalue()
    assert audit_seal(now=timezone.now() + timedelta(seconds=5)) == AuditLog.objects.count()
    assert verify_chain().ok


def test_the_demo_stock_sits_at_three_locations_and_orders_reserve_over_them():
    out = seed("--products", "200", "--orders", "150", "--seed", "3")

    places = {loc.code: loc for loc in Location.objects.all()}
    assert {code: p.name for code, p in places.items()} == {
        "main": "Main warehouse",
        "store": "City store",
        "outlet": "Outlet",
    }
    # Orders take from the warehouse first (it came with the database), then the others.
    assert places["main"].priority < places["store"].priority < places["outlet"].priority
    assert "at main, store, outlet" in out
    held = dict(
        StockLevel.objects.filter(on_hand__gt=0)
        .values_list("location__code")
        .annotate(n=Count("product", distinct=True))
    )
    # Most at the warehouse, some at the store and the outlet.
    assert held["main"] > held["store"] > held["outlet"] > 0
    where = StockLevel.objects.filter(on_hand__gt=0).values("product").annotate(n=Count("location"))
    assert {row["n"] for row in where} == {1, 2, 3}  # some products at one place only
    # The orders reserved where the stock was (and completed ones shipped from there):
    # every location gave some.
    allocated = set(LineAllocation.objects.values_list("location__code", flat=True)) | set(
        Fulfillment.objects.values_list("location__code", flat=True)
    )
    assert allocated == {"main", "store", "outlet"}
    assert inventory_drift() == []
    call_command("check_inventory", stdout=io.StringIO())


def test_an_existing_main_location_is_kept_as_staff_named_it():
    Location.objects.filter(code="main").update(name="Backroom", priority=5)

    seed("--products", "40", "--orders", "5", "--seed", "7")

    places = {loc.code: (loc.name, loc.priority) for loc in Location.objects.all()}
    assert places == {
        "main": ("Backroom", 5),
        "store": ("City store", 15),
        "outlet": ("Outlet", 25),
    }
    assert inventory_drift() == []


def test_the_metric_history_covers_the_month_of_orders():
    wait_out_midnight()  # seed today's orders and look for them on one day
    seed("--products", "120", "--orders", "80", "--seed", "4")

    days = MetricSnapshot.objects.filter(name=ORDERS_PLACED, granularity="day")
    assert days.aggregate(n=Sum("value"))["n"] == Order.objects.count() == 80
    today = period_start(timezone.now(), "day")
    assert days.filter(period_start__lt=today - timedelta(days=20), value__gt=0).exists()
    assert days.filter(period_start=today).exists()


def test_running_it_again_adds_nothing_and_a_larger_count_adds_only_the_missing_orders():
    seed("--products", "80", "--orders", "30", "--seed", "5")
    before, audit = ledger(), AuditLog.objects.count()
    # The first 30 orders hold a partial shipment, a partial refund, returns and waiting units.
    assert Return.objects.count() >= 4 and Refund.objects.filter(rma=None).exists()
    assert OrderItem.objects.filter(backordered__gt=0).count() == 2
    assert Fulfillment.objects.filter(order__status="processing").exists()

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
