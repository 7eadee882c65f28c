"""Catalog writes racing each other: real threads, each with its own PostgreSQL connection."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from audit.actors import Actor
from catalog.models import Product
from catalog.services import product_transition, product_update
from tests.integration.threads import in_thread, until_another_waits_for_my_locks

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

EDITOR = Actor.system("editor")
PUBLISHER = Actor.system("publisher")


def test_an_edit_made_while_a_publish_runs_is_not_lost(make_product, monkeypatch):
    product = make_product("draft", name="Old name", price=Decimal("10.00"))
    publish_has_read = threading.Event()
    edit_done = threading.Event()
    original = Product.publish_problems

    def slow_publish_problems(self):
        # The publisher has read the row; give a concurrent edit the chance to commit: go
        # on once it has, or once it waits for the publisher's lock instead (an ordering;
        # was a 2 s timeout, which a slow edit could outlast).
        if threading.current_thread().name.startswith("publisher"):
            publish_has_read.set()
            until_another_waits_for_my_locks(or_until=edit_done)
        return original(self)

    monkeypatch.setattr(Product, "publish_problems", slow_publish_problems)

    def publish():
        return product_transition(actor=PUBLISHER, product_id=product.pk, transition="publish")

    def edit():
        assert publish_has_read.wait(timeout=10)
        try:
            return product_update(
                actor=EDITOR,
                product_id=product.pk,
                data={"name": "New name", "price": Decimal("12.00")},
            )
        finally:
            edit_done.set()

    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="publisher") as publisher,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="editor") as editor,
    ):
        published = publisher.submit(in_thread(publish))
        edited = editor.submit(in_thread(edit))
        published.result(timeout=30)
        edited.result(timeout=30)

    product.refresh_from_db()
    assert product.status == "published"
    assert (product.name, product.price) == ("New name", Decimal("12.00"))


def test_two_crossing_category_moves_cannot_make_a_cycle(system_actor, monkeypatch):
    from catalog import services
    from catalog.models import Category
    from pms_backend.errors import InvalidInput

    x = services.category_create(actor=system_actor, name="X")
    y = services.category_create(actor=system_actor, name="Y")
    checking = {x.pk: threading.Event(), y.pk: threading.Event()}
    original = services.category_check_parent

    def check_together(category, parent):
        # Make both moves check at the same moment, as an unlucky pair of admins would,
        # unless the other move is waiting for a lock of this one's instead (an ordering;
        # was a barrier broken after 2 s, which a slow move could outlast).
        checking[category.pk].set()
        other = checking[y.pk if category.pk == x.pk else x.pk]
        until_another_waits_for_my_locks(or_until=other)
        return original(category, parent)

    monkeypatch.setattr(services, "category_check_parent", check_together)

    def move(child, parent) -> str:
        try:
            services.category_update(actor=EDITOR, category_id=child.pk, data={"parent": parent})
        except InvalidInput as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(in_thread(move), [x, y], [y, x]))

    assert outcomes == ["category_cycle", "ok"]
    parents = dict(Category.objects.values_list("pk", "parent_id"))
    assert not (parents[x.pk] == y.pk and parents[y.pk] == x.pk)


def test_an_import_and_an_order_for_the_same_product_both_go_through(
    make_product, receive, system_actor
):
    """An import renaming a product and setting its stock while an order for it is being
    placed: both commit, one after the other. The import locked the product as a delete
    would (FOR UPDATE), then waited for the order's stock row; the order, at commit, checks
    its lines' product key (deferred foreign keys take a key-share lock), which waited for
    the import: a deadlock, and PostgreSQL aborted one of them."""
    import io

    from django.db import transaction

    from catalog.exporting import export_csv
    from catalog.importing import product_import
    from inventory.models import Stock
    from orders.services import order_place
    from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER

    product = make_product("published", name="Linen shirt")
    receive(product, 10)
    sheet = "".join(export_csv(Product.objects.filter(pk=product.pk))).encode()
    changed = sheet.replace(b"Linen shirt", b"Linen shirt (washed)").replace(b",10,", b",12,")
    assert changed.count(b"(washed)") == 1 and b",12," in changed
    order_open = threading.Event()

    @in_thread
    def checkout():
        with transaction.atomic():
            order = order_place(
                actor=Actor.system("shop"),
                items=[{"product": product.pk, "quantity": 1}],
                customer=ORDER_CUSTOMER,
                shipping_address=ORDER_ADDRESS,
            )
            order_open.set()
            # The import meanwhile locks the product, then waits for stock: commit once it
            # does (an ordering; a 1.5 s sleep let a slow import come after the commit).
            until_another_waits_for_my_locks()
        return order.number

    @in_thread
    def import_():
        assert order_open.wait(timeout=10)
        return product_import(actor=system_actor, source=io.BytesIO(changed)).updated

    with ThreadPoolExecutor(2) as pool:
        placed = pool.submit(checkout)
        updated = pool.submit(import_)
        assert placed.result(timeout=30)
        assert updated.result(timeout=30) == 1
    product.refresh_from_db()
    stock = Stock.objects.get(product=product)
    assert product.name == "Linen shirt (washed)"
    assert (stock.on_hand, stock.reserved) == (12, 1)
