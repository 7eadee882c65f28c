"""A database filled at the schema before stock locations migrates to one location, "main",
with every stock row, movement and order line there and ``check_inventory`` clean."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from audit.actors import Actor
from inventory.integrity import inventory_drift
from inventory.models import InventoryMovement, Location, Stock, StockLevel
from orders.models import FulfillmentLine, LineAllocation, Order, OrderItem
from orders.models import Order as CurrentOrder
from orders.services import order_transition

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The schema the shop had before locations (what every migration of this stage follows).
BEFORE_LOCATIONS = [
    # The catalog before variants too: its old rows lack the variant columns.
    ("catalog", "0004_labels"),
    ("inventory", "0002_stock_threshold_from_settings"),
    ("orders", "0003_order_created_at_given"),
]
STAFF = Actor.system("migration-test")


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()  # what the last migrate applied or unapplied
    executor.migrate(targets)
    return executor


def _migrate_to_latest() -> None:
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.fixture
def old_apps():
    """Migrate the (empty) test database back to the schema before locations; yield its
    historical apps; put the database back at the latest schema afterwards."""
    executor = _migrate(BEFORE_LOCATIONS)
    try:
        yield executor.loader.project_state(BEFORE_LOCATIONS).apps
    finally:
        try:
            _migrate_to_latest()
        except Exception:
            # A broken forward migration must not leave the next tests an old schema: drop
            # the rows it choked on and migrate the empty tables.
            call_command("flush", interactive=False, verbosity=0)
            _migrate_to_latest()
            raise


@dataclass
class OldShop:
    """A shop at the old schema, written as its services wrote it: every movement with the
    running stock after it, reservations held by the open orders."""

    apps: object
    stock: dict[int, list[int]] = field(default_factory=dict)  # product id -> [on_hand, reserved]
    orders: dict[str, list[str]] = field(default_factory=dict)  # status -> order ids
    items: int = 0

    def model(self, label: str):
        return self.apps.get_model(*label.split("."))

    def move(self, product_id: int, kind: str, on_hand: int, reserved: int, reference="") -> None:
        row = self.stock.setdefault(product_id, [0, 0])
        row[0] += on_hand
        row[1] += reserved
        self.model("inventory.InventoryMovement").objects.create(
            product_id=product_id,
            kind=kind,
            on_hand_delta=on_hand,
            reserved_delta=reserved,
            on_hand_after=row[0],
            reserved_after=row[1],
            reason=f"old {kind}",
            reference=reference,
            actor_label="system:old-shop",
        )

    def order(self, status: str, lines: dict[int, int], *, restock: bool = False) -> str:
        """Place an order the old way, then take it to ``status`` with its stock moves."""
        # The customer's columns are ciphertext bound to the row: made by today's model (the
        # orders table is the same at both schemas).
        current = CurrentOrder()
        current.customer_email = "old@example.com"
        current.customer_name = "Old Customer"
        current.shipping_address = {"line1": "1 Old Road", "city": "Leeds", "country": "GB"}
        Product = self.model("catalog.Product")
        prices = dict(Product.objects.filter(pk__in=lines).values_list("pk", "price"))
        order = self.model("orders.Order").objects.create(
            id=current.id,
            status=status,
            customer_email_ct=current.customer_email_ct,
            customer_email_index=current.customer_email_index,
            customer_name_ct=current.customer_name_ct,
            shipping_address_ct=current.shipping_address_ct,
            currency="EUR",
            total=sum(prices[pid] * qty for pid, qty in lines.items()),
            restocked=restock if status == "refunded" else None,
        )
        reference = f"order:{order.number}"
        for product_id, quantity in sorted(lines.items()):
            self.model("orders.OrderItem").objects.create(
                order=order,
                product_id=product_id,
                sku=f"OLD-{product_id}",
                name=f"Old {product_id}",
                unit_price=prices[product_id],
                quantity=quantity,
                line_total=prices[product_id] * quantity,
            )
            self.items += 1
            self.move(product_id, "reserve", 0, quantity, reference)
            if status in ("completed", "refunded"):
                self.move(product_id, "sale", -quantity, -quantity, reference)
            if status == "refunded" and restock:
                self.move(product_id, "return", quantity, 0, reference)
            if status == "cancelled":
                self.move(product_id, "release", 0, -quantity, reference)
        self.orders.setdefault(status, []).append(str(order.pk))
        return str(order.pk)

    def write_stock_rows(self) -> None:
        self.model("inventory.Stock").objects.bulk_create(
            self.model("inventory.Stock")(product_id=pid, on_hand=on_hand, reserved=reserved)
            for pid, (on_hand, reserved) in self.stock.items()
        )


def _fill(apps) -> OldShop:
    shop = OldShop(apps)
    Product = shop.model("catalog.Product")
    products = [
        Product.objects.create(
            sku=f"OLD-{n}",
            name=f"Old product {n}",
            slug=f"old-product-{n}",
            price=Decimal("12.50") + n,
            currency="EUR",
            status="published",
        ).pk
        for n in range(4)
    ]
    a, b, c, _ = products
    for pid, quantity in zip(products, (40, 25, 10, 5), strict=True):
        shop.move(pid, "receipt", quantity, 0)
    shop.move(b, "adjustment", -3, 0)
    shop.move(c, "correction", 2, 0)
    # Every status, with one and several lines; d is never ordered (stock only).
    shop.order("pending", {a: 2, b: 1})
    shop.order("pending", {c: 3})
    shop.order("processing", {a: 5})
    shop.order("processing", {b: 2, c: 1})
    shop.order("completed", {a: 1, b: 1})
    shop.order("cancelled", {a: 4})
    shop.order("cancelled", {b: 2, c: 2})
    shop.order("refunded", {a: 3}, restock=True)
    shop.order("refunded", {c: 1})
    shop.write_stock_rows()
    return shop


def test_an_old_schema_shop_migrates_to_one_location_and_stays_consistent(old_apps):
    shop = _fill(old_apps)
    old_stock = sorted((pid, *row) for pid, row in shop.stock.items())
    old_movements = sorted(
        shop.model("inventory.InventoryMovement").objects.values_list(
            "pk", "product_id", "kind", "on_hand_delta", "reserved_delta"
        )
    )
    assert len(old_movements) > 20

    _migrate_to_latest()

    (main,) = Location.objects.all()
    assert (main.code, main.is_active) == ("main", True)
    assert sorted(Stock.objects.values_list("product_id", "on_hand", "reserved")) == old_stock
    assert sorted(StockLevel.objects.values_list("product_id", "on_hand", "reserved")) == old_stock
    assert set(StockLevel.objects.values_list("location_id", flat=True)) == {main.pk}
    assert (
        sorted(
            InventoryMovement.objects.values_list(
                "pk", "product_id", "kind", "on_hand_delta", "reserved_delta"
            )
        )
        == old_movements
    )
    assert set(InventoryMovement.objects.values_list("location_id", flat=True)) == {main.pk}
    allocations = list(
        LineAllocation.objects.values_list("item_id", "location_id", "quantity").order_by("item")
    )
    # Completed and refunded orders shipped whole before fulfilments existed: 0007 records
    # each as a fulfilment from main, and their allocations (shipped) are gone.
    shipped = OrderItem.objects.filter(order__status__in=["completed", "refunded"])
    assert allocations == [
        (item, main.pk, quantity)
        for item, quantity in OrderItem.objects.exclude(pk__in=shipped.values("pk"))
        .values_list("pk", "quantity")
        .order_by("pk")
    ]
    fulfilled = FulfillmentLine.objects.values_list(
        "item_id", "fulfillment__location_id", "quantity"
    )
    assert sorted(fulfilled) == sorted(
        (item, main.pk, quantity) for item, quantity in shipped.values_list("pk", "quantity")
    )
    assert shipped.exists()
    assert len(allocations) + shipped.count() == shop.items
    assert Counter(Order.objects.values_list("status", flat=True)) == {
        status: len(ids) for status, ids in shop.orders.items()
    }
    assert inventory_drift() == []
    call_command("check_inventory", verbosity=0)  # exits non-zero on drift
    # Orders completed before fulfilments were shipped whole; Refunded ones paid back whole.
    for order in Order.objects.prefetch_related("items"):
        shipped = order.status in ("completed", "refunded")
        refunded = order.status == "refunded"
        assert order.refunded_amount == (order.total if refunded else 0), order.status
        for item in order.items.all():
            assert item.quantity_fulfilled == (item.quantity if shipped else 0), order.status
            assert item.quantity_refunded == (item.quantity if refunded else 0), order.status

    # Today's services carry on from the migrated rows, at main.
    cancelled, completed = shop.orders["pending"][0], shop.orders["processing"][0]
    before = dict(StockLevel.objects.values_list("product_id", "reserved"))
    on_hand_before = dict(StockLevel.objects.values_list("product_id", "on_hand"))
    order_transition(actor=STAFF, order_id=cancelled, transition="cancel")
    order_transition(actor=STAFF, order_id=completed, transition="complete")

    a, b = sorted(shop.stock)[:2]
    # pending {a: 2, b: 1} released, processing {a: 5} sold, both at main.
    after = {lv.product_id: lv for lv in StockLevel.objects.filter(location=main)}
    assert after[a].reserved == before[a] - 2 - 5
    assert after[b].reserved == before[b] - 1
    assert after[a].on_hand == on_hand_before[a] - 5
    assert after[b].on_hand == on_hand_before[b]
    moved = InventoryMovement.objects.filter(
        reference__in=[
            f"order:{n}"
            for n in Order.objects.filter(pk__in=[cancelled, completed]).values_list(
                "number", flat=True
            )
        ],
        kind__in=["release", "sale"],
    )
    assert sorted(moved.values_list("kind", "product_id", "location_id")) == [
        ("release", a, main.pk),
        ("release", b, main.pk),
        ("sale", a, main.pk),
    ]
    assert inventory_drift() == []

    # And back, and forward again: the totals stay in the stock rows (the levels only ever
    # added up to them), and the second trip lands where the first did.
    totals = sorted(Stock.objects.values_list("product_id", "on_hand", "reserved"))
    movements = InventoryMovement.objects.count()
    executor = _migrate(BEFORE_LOCATIONS)
    old = executor.loader.project_state(BEFORE_LOCATIONS).apps
    OldStock = old.get_model("inventory", "Stock")
    assert sorted(OldStock.objects.values_list("product_id", "on_hand", "reserved")) == totals
    assert old.get_model("inventory", "InventoryMovement").objects.count() == movements

    _migrate_to_latest()

    assert list(Location.objects.values_list("code", flat=True)) == ["main"]
    assert sorted(StockLevel.objects.values_list("product_id", "on_hand", "reserved")) == totals
    # What shipped (completed and refunded orders) is in fulfilments, not allocations.
    shipped = OrderItem.objects.filter(order__status__in=["completed", "refunded"])
    assert LineAllocation.objects.count() == OrderItem.objects.count() - shipped.count()
    assert FulfillmentLine.objects.count() == shipped.count()
    assert inventory_drift() == []
