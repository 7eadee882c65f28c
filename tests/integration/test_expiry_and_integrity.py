"""The cleanup job that cancels expired reservations, and the inventory integrity check."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditLog
from inventory.integrity import inventory_drift
from inventory.models import InventoryMovement, Stock
from inventory.tasks import check_integrity
from orders.models import Order, OrderItem
from orders.services import order_expire_reservations
from orders.tasks import expire_reservations
from pms_backend.events.models import Event
from tests.conftest import order_body
from tests.integration.order_support import move_order, place, stock_of, writes_nothing

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def expire(order_id: int, minutes_ago: int = 1) -> None:
    Order.objects.filter(pk=order_id).update(
        reserved_until=timezone.now() - timedelta(minutes=minutes_ago)
    )


@pytest.fixture
def shelf(make_product, receive):
    """Two published products with 10 on hand each."""
    a, b = make_product("published"), make_product("published")
    receive(a, 10)
    receive(b, 10)
    return a, b


@pytest.fixture
def orders(storefront, shelf):
    """Four orders: expired (A 2, B 1), expired (A 3), still reserved (A 1), processing (B 4)."""
    a, b = shelf
    expired_one = place(storefront, order_body((a, 2), (b, 1))).json()
    expired_two = place(storefront, order_body((a, 3))).json()
    fresh = place(storefront, order_body((a, 1))).json()
    processing = place(storefront, order_body((b, 4))).json()
    move_order(processing["id"], "process")
    expire(expired_one["id"], minutes_ago=90)
    expire(expired_two["id"])
    Order.objects.filter(pk=fresh["id"]).update(
        reserved_until=timezone.now() + timedelta(minutes=1)
    )
    # Even with a stale expiry, an order staff took on must never expire.
    expire(processing["id"], minutes_ago=600)
    return {
        "expired": [expired_one, expired_two],
        "fresh": fresh,
        "processing": processing,
    }


def status_of(order: dict) -> str:
    return Order.objects.get(pk=order["id"]).status


def assert_expired_orders_were_cancelled(orders, shelf) -> None:
    a, b = shelf
    for order in orders["expired"]:
        row = Order.objects.get(pk=order["id"])
        assert row.status == "cancelled"
        assert row.cancellation_reason == "reservation expired"
        assert row.reserved_until is None
        entry = AuditLog.objects.get(action="order.cancel", object_id=str(order["id"]))
        assert (entry.actor_type, entry.actor_label) == ("system", "job:cleanup_inventory")
        assert entry.changes["status"] == {"before": "pending", "after": "cancelled"}
        event = Event.objects.get(type="order.status_changed", subject=f"order:{order['id']}")
        assert (event.data["from"], event.data["to"]) == ("pending", "cancelled")
        releases = InventoryMovement.objects.filter(
            reference=f"order:{order['number']}", kind="release"
        )
        assert {m.reason for m in releases} == {"reservation expired"}
    assert status_of(orders["fresh"]) == "pending"
    assert status_of(orders["processing"]) == "processing"
    # Left reserved: A 1 (fresh), B 4 (processing).
    assert stock_of(a) == (10, 1)
    assert stock_of(b) == (10, 4)
    assert inventory_drift() == []


# --- cleanup_inventory ----------------------------------------------------------------


def test_cleanup_cancels_expired_orders_and_releases_their_stock(orders, shelf):
    out, _ = run("cleanup_inventory")

    assert "Cancelled 2 expired orders; their stock" in out
    assert_expired_orders_were_cancelled(orders, shelf)
    assert Event.objects.filter(type="order.status_changed").count() == 3  # 1 process + 2


def test_cleanup_in_small_batches_cancels_them_all(orders, shelf):
    out, _ = run("cleanup_inventory", "--batch-size", "1")

    assert "Cancelled 2 expired orders; their stock" in out
    assert_expired_orders_were_cancelled(orders, shelf)


def test_cleanup_again_finds_nothing(orders):
    run("cleanup_inventory")

    with writes_nothing():
        out, _ = run("cleanup_inventory")

    assert "Cancelled 0 expired orders" in out


def test_dry_run_lists_the_expired_orders_and_changes_nothing(orders):
    with writes_nothing():
        out, _ = run("cleanup_inventory", "--dry-run")

    expired_numbers = [o["number"] for o in orders["expired"]]
    for number in expired_numbers:
        assert number in out
    assert orders["fresh"]["number"] not in out
    assert orders["processing"]["number"] not in out
    # The oldest expiry first.
    assert out.index(expired_numbers[0]) < out.index(expired_numbers[1])
    assert "2 expired reservations would be cancelled" in out
    assert all(status_of(o) == "pending" for o in orders["expired"])


@pytest.mark.parametrize("size", ["0", "10001", "-3"])
def test_cleanup_refuses_a_bad_batch_size(orders, size):
    with writes_nothing(), pytest.raises(CommandError, match="batch-size"):
        run("cleanup_inventory", "--batch-size", size)


def test_the_scheduled_task_does_the_same(orders, shelf):
    assert expire_reservations() == 2

    assert_expired_orders_were_cancelled(orders, shelf)
    assert expire_reservations() == 0


def test_the_task_runs_through_celery_too(orders, shelf):
    result = expire_reservations.apply()

    assert result.successful()
    assert result.get() == 2
    assert_expired_orders_were_cancelled(orders, shelf)


def test_an_order_expiring_exactly_now_is_left_until_it_has_passed(storefront, shelf):
    a, _ = shelf
    order = place(storefront, order_body((a, 1))).json()
    until = Order.objects.get(pk=order["id"]).reserved_until

    assert order_expire_reservations(actor=Actor.system("tests"), now=until) == 0
    assert (
        order_expire_reservations(actor=Actor.system("tests"), now=until + timedelta(seconds=1))
        == 1
    )
    assert status_of(order) == "cancelled"


def test_an_expired_order_cannot_then_be_processed(admin_api, orders, shelf):
    run("cleanup_inventory")
    order = orders["expired"][0]

    with writes_nothing():
        response = admin_api.post(f"/api/v1/orders/{order['id']}/process/")

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"


def test_released_stock_can_be_ordered_again(storefront, orders, shelf):
    a, _ = shelf
    assert place(storefront, order_body((a, 9))).status_code == 409

    run("cleanup_inventory")

    assert place(storefront, order_body((a, 9))).status_code == 201


# --- check_inventory --------------------------------------------------------------------


def corrupt(sql: str, *params) -> None:
    """Change rows behind the services' back, as a bad migration or a manual fix would."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_raw_sql_below_names_the_real_tables():
    assert Stock._meta.db_table == "inventory_stock"
    assert InventoryMovement._meta.db_table == "inventory_inventorymovement"
    assert OrderItem._meta.db_table == "orders_orderitem"


def check() -> tuple[int, str, str]:
    """Run check_inventory; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check_inventory", stdout=out, stderr=err)
    except CommandError as exc:
        err.write(str(exc))
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_check_inventory_passes_on_a_clean_shop(orders):
    run("cleanup_inventory")

    code, out, err = check()

    assert code == 0
    assert "Inventory OK" in out
    assert err == ""
    assert check_integrity() == 0


def test_check_inventory_passes_on_an_empty_shop(db):
    assert check()[0] == 0


def test_check_inventory_names_a_stock_row_changed_behind_the_ledger(orders, shelf):
    a, b = shelf

    corrupt("UPDATE inventory_stock SET on_hand = on_hand + 5 WHERE product_id = %s", a.pk)
    code, out, err = check()

    assert code == 1
    assert f"product {a.pk}:" in err
    assert "on_hand=15" in err and "on_hand=10" in err
    assert f"product {b.pk}:" not in err
    assert "1 inventory mismatch found." in err
    assert "Inventory OK" not in out
    assert check_integrity() == 1


def test_check_inventory_prints_every_mismatch(orders, shelf):
    a, b = shelf

    corrupt("UPDATE inventory_stock SET on_hand = 8 WHERE product_id = %s", a.pk)
    corrupt("UPDATE inventory_stocklevel SET reserved = reserved - 1 WHERE product_id = %s", b.pk)
    code, _, err = check()

    assert code == 1
    mismatches = [line for line in err.splitlines() if line.startswith("MISMATCH")]
    # A: its total vs its locations. B: its total vs its locations; at main, the level vs
    # the ledger and reserved vs its open orders.
    assert [line.split(":")[0] for line in mismatches] == [
        f"MISMATCH product {a.pk}",
        f"MISMATCH product {b.pk}",
        f"MISMATCH product {b.pk}",
        f"MISMATCH product {b.pk}",
    ]
    assert "its locations add up to" in mismatches[0]
    assert "at main stock says" in mismatches[2]
    assert "4 inventory mismatches found." in err


def test_check_inventory_notices_a_lost_ledger_line(orders, shelf):
    a, _ = shelf
    receipt = InventoryMovement.objects.get(product=a, kind="receipt")

    corrupt("DELETE FROM inventory_inventorymovement WHERE id = %s", receipt.pk)
    code, _, err = check()

    assert code == 1
    assert f"product {a.pk}:" in err


def test_check_inventory_notices_an_order_line_changed_behind_the_stock(orders, shelf):
    a, _ = shelf
    item = OrderItem.objects.get(order_id=orders["fresh"]["id"])

    corrupt("UPDATE orders_orderitem SET quantity = 2 WHERE id = %s", item.pk)
    code, _, err = check()

    assert code == 1
    assert (
        f"product {a.pk}: order {orders['fresh']['number']} has 2 on its line, allocated 1" in err
    )


def test_check_inventory_notices_an_allocation_changed_behind_the_stock(orders, shelf):
    a, _ = shelf
    item = OrderItem.objects.get(order_id=orders["fresh"]["id"])

    corrupt("UPDATE orders_lineallocation SET quantity = 2 WHERE item_id = %s", item.pk)
    code, _, err = check()

    assert code == 1
    # The location's reservation no longer matches what the open orders hold there, and
    # the line no longer matches its allocation.
    assert f"product {a.pk}: at main reserved=" in err
    assert "but open (pending/processing) orders hold" in err
    assert "has 1 on its line, allocated 2" in err
