"""Catalog writes racing each other: real threads, each with its own PostgreSQL connection."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from audit.actors import Actor
from catalog.models import Product
from catalog.services import product_transition, product_update

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

EDITOR = Actor.system("editor")
PUBLISHER = Actor.system("publisher")


def _in_thread(fn):
    def run(*args):
        try:
            return fn(*args)
        finally:
            connection.close()

    return run


def test_an_edit_made_while_a_publish_runs_is_not_lost(make_product, monkeypatch):
    product = make_product("draft", name="Old name", price=Decimal("10.00"))
    publish_has_read = threading.Event()
    edit_done = threading.Event()
    original = Product.publish_problems

    def slow_publish_problems(self):
        # The publisher has read the row; give a concurrent edit the chance to commit.
        if threading.current_thread().name.startswith("publisher"):
            publish_has_read.set()
            edit_done.wait(timeout=2)
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
        published = publisher.submit(_in_thread(publish))
        edited = editor.submit(_in_thread(edit))
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
    both_checking = threading.Barrier(2)
    original = services.category_check_parent

    def check_together(category, parent):
        # Make both moves check at the same moment, as an unlucky pair of admins would.
        # A broken barrier: the other move is waiting for a lock instead.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checking.wait(timeout=2)
        return original(category, parent)

    monkeypatch.setattr(services, "category_check_parent", check_together)

    def move(child, parent) -> str:
        try:
            services.category_update(actor=EDITOR, category_id=child.pk, data={"parent": parent})
        except InvalidInput as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(_in_thread(move), [x, y], [y, x]))

    assert outcomes == ["category_cycle", "ok"]
    parents = dict(Category.objects.values_list("pk", "parent_id"))
    assert not (parents[x.pk] == y.pk and parents[y.pk] == x.pk)
