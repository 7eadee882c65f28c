"""Orders refunded before refunds were recorded one by one get one refund of their whole
total when orders/0008 runs, so an order's refunds always add up to its refunded amount."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from audit.actors import Actor
from orders.models import Order, Refund
from orders.services import order_place, order_transition
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STAFF = Actor.system("migration-test")


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _order(product, quantity: int, *moves: str) -> Order:
    order = order_place(
        actor=STAFF,
        items=[{"product": product.pk, "quantity": quantity}],
        customer=ORDER_CUSTOMER,
        shipping_address=ORDER_ADDRESS,
    )
    for move in moves:
        order = order_transition(actor=STAFF, order_id=order.pk, transition=move)
    return order


def test_refunded_orders_get_one_refund_of_their_total(make_product, receive):
    product = make_product("published", price=Decimal("7.25"))
    receive(product, 20)
    refunded = _order(product, 3, "process", "complete", "refund")
    completed = _order(product, 2, "process", "complete")
    try:
        # Back to the schema before refunds (their tables go), then forward again.
        _migrate([("orders", "0006_line_progress")])
        assert "orders_refund" not in connection.introspection.table_names()
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    (backfilled,) = Refund.objects.filter(order=refunded.pk)
    assert backfilled.amount == Decimal("21.75") == Order.objects.get(pk=refunded.pk).total
    assert backfilled.number.startswith("RF-")
    assert [(line.item.product_id, line.quantity) for line in backfilled.lines.all()] == [
        (product.pk, 3)
    ]
    assert not Refund.objects.filter(order=completed.pk).exists()
