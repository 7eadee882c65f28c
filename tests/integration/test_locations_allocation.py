"""Orders reserved over several stock locations: the allocation strategies, splitting a
line, inactive locations, and stock moving exactly where each line was reserved when the
order is cancelled, completed or refunded. Concurrency with real threads at the end."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.actors import Actor
from inventory.integrity import inventory_drift
from inventory.models import ALLOCATION_STRATEGY_SETTING, InventoryMovement, Location, StockLevel
from inventory.services import stock_record_movement
from orders.models import LineAllocation, Order
from orders.services import order_place, order_transition
from pms_backend.errors import Conflict
from pms_backend.shopsettings.services import setting_set
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER, order_body
from tests.integration.order_support import place, stock_of
from tests.integration.problem_json import assert_problem
from tests.integration.test_query_counts_orders import ORDER_STATEMENTS
from tests.integration.threads import in_thread, until_another_waits_for_my_locks

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

STAFF = Actor.system("allocation-test")


@pytest.fixture
def places(db) -> dict[str, Location]:
    """Three active locations: the store first by priority, then the warehouse, then the
    back room."""
    return {
        code: Location.objects.create(code=code, name=code.title(), priority=priority)
        for code, priority in (("store", 10), ("warehouse", 20), ("backroom", 30))
    }


def receive_at(product, location: str, quantity: int) -> None:
    stock_record_movement(
        actor=STAFF,
        product_id=product.pk,
        kind="receipt",
        quantity=quantity,
        reason="delivery",
        location=location,
    )


def levels(product) -> dict[str, tuple[int, int]]:
    """Return ``{location code: (on_hand, reserved)}`` of ``product``'s levels."""
    return {
        code: (on_hand, reserved)
        for code, on_hand, reserved in StockLevel.objects.filter(product=product).values_list(
            "location__code", "on_hand", "reserved"
        )
    }


def allocations(order: Order) -> dict[tuple[int, str], int]:
    """Return ``{(product id, location code): quantity}`` of ``order``'s lines."""
    return {
        (product_id, code): quantity
        for product_id, code, quantity in LineAllocation.objects.filter(
            item__order=order
        ).values_list("item__product_id", "location__code", "quantity")
    }


def buy(*lines) -> Order:
    return order_place(
        actor=STAFF,
        items=[{"product": p.pk, "quantity": q} for p, q in lines],
        customer=ORDER_CUSTOMER,
        shipping_address=ORDER_ADDRESS,
    )


def moves(order: Order, kind: str) -> dict[tuple[int, str], tuple[int, int]]:
    """Return ``{(product id, location code): (on_hand Δ, reserved Δ)}`` of ``order``'s
    movements of ``kind``."""
    return {
        (pid, code): (on_hand, reserved)
        for pid, code, on_hand, reserved in InventoryMovement.objects.filter(
            reference=f"order:{order.number}", kind=kind
        ).values_list("product_id", "location__code", "on_hand_delta", "reserved_delta")
    }


@pytest.fixture
def most_stock(django_capture_on_commit_callbacks):
    """Switch the shop to the ``most_stock`` strategy (read by orders once it commits)."""
    with django_capture_on_commit_callbacks(execute=True):
        setting_set(actor=STAFF, key=ALLOCATION_STRATEGY_SETTING, value="most_stock")


@pytest.fixture
def shirt(make_product, places):
    """A published product with 5 at the store, 10 at the warehouse, 12 in the back room."""
    product = make_product("published")
    for code, quantity in (("store", 5), ("warehouse", 10), ("backroom", 12)):
        receive_at(product, code, quantity)
    return product


# --- strategies -------------------------------------------------------------------------


def test_priority_takes_the_lowest_number_first_and_splits_a_short_line(shirt):
    first = buy((shirt, 3))
    assert allocations(first) == {(shirt.pk, "store"): 3}

    second = buy((shirt, 4))  # the store has 2 left: 2 there, 2 from the warehouse

    assert allocations(second) == {(shirt.pk, "store"): 2, (shirt.pk, "warehouse"): 2}
    assert moves(second, "reserve") == {
        (shirt.pk, "store"): (0, 2),
        (shirt.pk, "warehouse"): (0, 2),
    }
    assert levels(shirt) == {"store": (5, 5), "warehouse": (10, 2), "backroom": (12, 0)}
    assert stock_of(shirt) == (27, 7)
    assert inventory_drift() == []


def test_a_line_may_take_every_active_location(shirt):
    order = buy((shirt, 27))

    assert allocations(order) == {
        (shirt.pk, "store"): 5,
        (shirt.pk, "warehouse"): 10,
        (shirt.pk, "backroom"): 12,
    }
    assert stock_of(shirt) == (27, 27)
    assert inventory_drift() == []


def test_priority_follows_the_numbers_not_the_order_locations_were_made(shirt, places):
    Location.objects.filter(pk=places["backroom"].pk).update(priority=1)

    order = buy((shirt, 13))

    assert allocations(order) == {(shirt.pk, "backroom"): 12, (shirt.pk, "store"): 1}


def test_most_stock_takes_the_location_holding_most_first(shirt, most_stock):
    first = buy((shirt, 4))  # back room 12 > warehouse 10 > store 5
    second = buy((shirt, 10))  # now warehouse 10 > back room 8
    third = buy((shirt, 9))  # back room 8, then the store 5

    assert allocations(first) == {(shirt.pk, "backroom"): 4}
    assert allocations(second) == {(shirt.pk, "warehouse"): 10}
    assert allocations(third) == {(shirt.pk, "backroom"): 8, (shirt.pk, "store"): 1}
    assert levels(shirt) == {"store": (5, 1), "warehouse": (10, 10), "backroom": (12, 12)}
    assert inventory_drift() == []


def test_most_stock_breaks_a_tie_by_priority(make_product, places, most_stock):
    product = make_product("published")
    for code in ("backroom", "warehouse", "store"):
        receive_at(product, code, 6)

    assert allocations(buy((product, 2))) == {(product.pk, "store"): 2}


def test_the_strategy_setting_refuses_an_unknown_strategy(db):
    from pms_backend.errors import InvalidInput

    with pytest.raises(InvalidInput):
        setting_set(actor=STAFF, key=ALLOCATION_STRATEGY_SETTING, value="nearest")


def test_each_line_of_a_multi_line_order_is_allocated_on_its_own(shirt, make_product):
    mug = make_product("published")
    receive_at(mug, "backroom", 4)
    receive_at(mug, "warehouse", 1)

    order = buy((mug, 3), (shirt, 6))

    assert allocations(order) == {
        (mug.pk, "warehouse"): 1,
        (mug.pk, "backroom"): 2,
        (shirt.pk, "store"): 5,
        (shirt.pk, "warehouse"): 1,
    }
    assert inventory_drift() == []


# --- inactive locations and refusals --------------------------------------------------


def test_an_inactive_location_is_never_allocated(shirt, places):
    closed = Location.objects.create(code="closed", name="Closed", priority=1, is_active=False)
    # Stock left behind at a closed location (which check_inventory reports) is not sold.
    StockLevel.objects.create(product=shirt, location=closed, on_hand=50)

    order = buy((shirt, 6))

    assert allocations(order) == {(shirt.pk, "store"): 5, (shirt.pk, "warehouse"): 1}
    with pytest.raises(Conflict) as refused, transaction.atomic():
        buy((shirt, 22))  # 27 - 6 = 21 at active locations, whatever sits at "closed"
    assert refused.value.code == "insufficient_stock"
    assert refused.value.extra["lines"] == [{"product": shirt.pk, "requested": 22, "available": 21}]
    assert StockLevel.objects.get(product=shirt, location=closed).reserved == 0


def test_a_location_made_inactive_stops_taking_orders(shirt, places):
    # The store sold all it had; with nothing on hand it may close.
    order = buy((shirt, 5))
    order_transition(actor=STAFF, order_id=order.pk, transition="process")
    order_transition(actor=STAFF, order_id=order.pk, transition="complete")
    Location.objects.filter(code="store").update(is_active=False)

    again = buy((shirt, 3))

    assert allocations(again) == {(shirt.pk, "warehouse"): 3}
    with pytest.raises(Conflict) as refused:
        receive_at(shirt, "store", 1)
    assert refused.value.code == "location_inactive"
    assert inventory_drift() == []


def test_an_order_above_what_active_locations_hold_is_409_with_their_sum(
    storefront, shirt, make_product
):
    other = make_product("published")
    receive_at(other, "store", 3)
    before = levels(shirt)

    response = place(storefront, order_body((other, 1), (shirt, 28)))

    body = assert_problem(response, 409, "insufficient_stock")
    assert body["lines"] == [{"product": shirt.pk, "requested": 28, "available": 27}]
    assert levels(shirt) == before
    assert levels(other) == {"store": (3, 0)}
    assert not Order.objects.exists()
    assert not LineAllocation.objects.exists()


# --- stock moves where each line was reserved -------------------------------------------


def test_cancelling_releases_exactly_where_the_lines_were_reserved(shirt):
    order = buy((shirt, 7))  # store 5, warehouse 2

    order_transition(actor=STAFF, order_id=order.pk, transition="cancel")

    assert moves(order, "release") == {
        (shirt.pk, "store"): (0, -5),
        (shirt.pk, "warehouse"): (0, -2),
    }
    assert levels(shirt) == {"store": (5, 0), "warehouse": (10, 0), "backroom": (12, 0)}
    assert inventory_drift() == []


def test_the_cleanup_job_releases_an_expired_split_order_where_it_was_reserved(shirt):
    from datetime import timedelta

    from django.utils import timezone

    from orders.services import order_expire_reservations

    order = buy((shirt, 8))  # store 5, warehouse 3
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))

    assert order_expire_reservations(actor=STAFF) == 1

    assert moves(order, "release") == {
        (shirt.pk, "store"): (0, -5),
        (shirt.pk, "warehouse"): (0, -3),
    }
    assert inventory_drift() == []


def test_completing_sells_where_the_lines_were_reserved(shirt):
    order = buy((shirt, 7))
    order_transition(actor=STAFF, order_id=order.pk, transition="process")

    order_transition(actor=STAFF, order_id=order.pk, transition="complete")

    assert moves(order, "sale") == {
        (shirt.pk, "store"): (-5, -5),
        (shirt.pk, "warehouse"): (-2, -2),
    }
    assert levels(shirt) == {"store": (0, 0), "warehouse": (8, 0), "backroom": (12, 0)}
    assert stock_of(shirt) == (20, 0)
    assert inventory_drift() == []


def test_a_refund_with_restock_returns_the_goods_where_they_were_sold_from(shirt):
    order = buy((shirt, 7))
    for move in ("process", "complete"):
        order_transition(actor=STAFF, order_id=order.pk, transition=move)

    order_transition(actor=STAFF, order_id=order.pk, transition="refund", restock=True)

    assert moves(order, "return") == {
        (shirt.pk, "store"): (5, 0),
        (shirt.pk, "warehouse"): (2, 0),
    }
    assert levels(shirt) == {"store": (5, 0), "warehouse": (10, 0), "backroom": (12, 0)}
    assert inventory_drift() == []


def test_a_refund_to_a_location_closed_since_goes_to_the_default_location(shirt, places):
    order = buy((shirt, 7))  # store 5, warehouse 2
    for move in ("process", "complete"):
        order_transition(actor=STAFF, order_id=order.pk, transition=move)
    # The store sold out and closed (it may: it holds nothing).
    Location.objects.filter(code="store").update(is_active=False)

    order_transition(actor=STAFF, order_id=order.pk, transition="refund", restock=True)

    # The default location is now the warehouse (the first active one by priority).
    assert moves(order, "return") == {(shirt.pk, "warehouse"): (7, 0)}
    assert levels(shirt) == {"store": (0, 0), "warehouse": (15, 0), "backroom": (12, 0)}
    assert inventory_drift() == []


def test_a_refund_without_restock_moves_no_stock(shirt):
    order = buy((shirt, 7))
    for move in ("process", "complete"):
        order_transition(actor=STAFF, order_id=order.pk, transition=move)

    order_transition(actor=STAFF, order_id=order.pk, transition="refund", restock=False)

    assert moves(order, "return") == {}
    assert levels(shirt) == {"store": (0, 0), "warehouse": (8, 0), "backroom": (12, 0)}


def test_check_inventory_notices_an_allocation_changed_behind_the_stock(shirt):
    order = buy((shirt, 7))
    allocation = LineAllocation.objects.get(item__order=order, location__code="warehouse")

    LineAllocation.objects.filter(pk=allocation.pk).update(quantity=3)

    problems = [str(d) for d in inventory_drift()]
    assert f"product {shirt.pk}: at warehouse reserved=2 but" in problems[0]
    assert problems[1] == (
        f"product {shirt.pk}: order {order.number} has 7 on its line, allocated 8"
    )
    assert len(problems) == 2


# --- the API --------------------------------------------------------------------------------


def test_the_order_api_places_a_split_order_in_the_same_statements_as_one_location(
    storefront, shirt, make_product
):
    mug = make_product("published")
    receive_at(mug, "warehouse", 2)
    receive_at(mug, "backroom", 5)
    place(storefront, order_body((mug, 1)))  # warm up: key lookup, settings

    with CaptureQueriesContext(connection) as ctx:
        response = place(storefront, order_body((shirt, 20), (mug, 4)))

    assert response.status_code == 201, response.content
    order = Order.objects.get(pk=response.json()["id"])
    assert allocations(order) == {
        (shirt.pk, "store"): 5,
        (shirt.pk, "warehouse"): 10,
        (shirt.pk, "backroom"): 5,
        (mug.pk, "warehouse"): 1,
        (mug.pk, "backroom"): 3,
    }
    # Two lines over three locations cost what one line at one location does.
    assert len(ctx.captured_queries) == ORDER_STATEMENTS, "\n".join(
        q["sql"][:120] for q in ctx.captured_queries
    )
    assert inventory_drift() == []


# --- concurrency: real threads, each with its own connection ---------------------------


def _try_to_buy(lines: list[tuple[int, int]]) -> tuple[str, int]:
    try:
        order_place(
            actor=STAFF,
            items=[{"product": pid, "quantity": qty} for pid, qty in lines],
            customer=ORDER_CUSTOMER,
            shipping_address=ORDER_ADDRESS,
        )
    except Conflict as exc:
        return exc.code, 0
    return "ok", sum(qty for _, qty in lines)


@pytest.mark.django_db(transaction=True)
def test_200_buyers_for_50_units_over_three_locations_never_oversell(make_product, places):
    product = make_product("published")
    for code, quantity in (("store", 20), ("warehouse", 20), ("backroom", 10)):
        receive_at(product, code, quantity)
    # 1, 2 or 3 units each: lines split over locations as the first ones run dry.
    attempts = [[(product.pk, n % 3 + 1)] for n in range(200)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(in_thread(_try_to_buy), attempts))

    codes = Counter(code for code, _ in outcomes)
    assert set(codes) <= {"ok", "insufficient_stock"}, codes
    assert sum(units for _, units in outcomes) == 50
    assert Order.objects.count() == codes["ok"]
    assert levels(product) == {"store": (20, 20), "warehouse": (20, 20), "backroom": (10, 10)}
    assert sum(LineAllocation.objects.values_list("quantity", flat=True)) == 50
    assert inventory_drift() == []


@pytest.mark.django_db(transaction=True)
def test_opposite_orders_receipts_and_cancellations_at_once_never_deadlock(make_product, places):
    products = [make_product("published") for _ in range(3)]
    codes = list(places)
    for product in products:
        for code in codes:
            receive_at(product, code, 8)
    # Orders to cancel while others are placed: spread over the locations already.
    to_cancel = [buy(*((p, 3) for p in products)).pk for _ in range(6)]
    ids = [p.pk for p in products]
    forward, backward = [(pid, 2) for pid in ids], [(pid, 2) for pid in reversed(ids)]
    jobs = (
        [("buy", forward), ("buy", backward)] * 15
        + [("receive", (ids[n % 3], codes[(n // 3) % 3])) for n in range(18)]
        + [("cancel", order_id) for order_id in to_cancel]
    )
    random.Random(16).shuffle(jobs)
    barrier = threading.Barrier(16)

    def run(job_index: int) -> str:
        what, arg = jobs[job_index]
        if job_index < 16:
            barrier.wait(timeout=30)  # the first 16 collide for real
        if what == "buy":
            return _try_to_buy(arg)[0]
        if what == "receive":
            product_id, code = arg
            stock_record_movement(
                actor=STAFF,
                product_id=product_id,
                kind="receipt",
                quantity=2,
                reason="delivery",
                location=code,
            )
            return "received"
        order_transition(actor=STAFF, order_id=arg, transition="cancel")
        return "cancelled"

    with ThreadPoolExecutor(max_workers=16) as pool:
        # A deadlock (or any error but a refusal) surfaces here and fails the test.
        outcomes = Counter(pool.map(in_thread(run), range(len(jobs))))

    assert outcomes["received"] == 18 and outcomes["cancelled"] == 6
    assert set(outcomes) <= {"ok", "insufficient_stock", "received", "cancelled"}
    assert Order.objects.filter(status="pending").count() == outcomes["ok"]
    for product in products:
        on_hand, reserved = stock_of(product)
        assert on_hand == 3 * 8 + 6 * 2  # every receipt landed
        assert reserved == 2 * outcomes["ok"]
    assert inventory_drift() == []


@pytest.mark.django_db(transaction=True)
def test_a_stocktake_and_a_receipt_of_a_never_stocked_product_at_once(
    make_product, places, monkeypatch
):
    import inventory.stocktake as stocktake

    product = make_product("published")
    locked, received = threading.Event(), threading.Event()
    read_thresholds = stocktake.setting_get_many

    def pause_after_locking(*args, **kwargs):
        # The stocktake holds its locks by now: the receipt runs meanwhile (or, when it
        # has to wait for those locks, the stocktake carries on once it does: an
        # ordering; was a 3 s timeout, which a slow receipt could outlast).
        locked.set()
        until_another_waits_for_my_locks(or_until=received)
        return read_thresholds(*args, **kwargs)

    monkeypatch.setattr(stocktake, "setting_get_many", pause_after_locking)

    def count() -> str:
        stocktake.stock_set_levels(
            actor=STAFF,
            targets={product.pk: 5},
            kind="receipt",
            reason="first count",
            location="store",
        )
        return "counted"

    def deliver() -> str:
        assert locked.wait(timeout=10)
        try:
            receive_at(product, "store", 3)
        finally:
            received.set()
        return "received"

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(in_thread(count)), pool.submit(in_thread(deliver))]
        # Before the fix the stocktake inserted the stock row the receipt had just made.
        assert [run.result(timeout=30) for run in runs] == ["counted", "received"]

    assert levels(product) == {"store": (8, 0)}
    assert stock_of(product) == (8, 0)
    assert inventory_drift() == []
