"""Catalog writes racing each other: real threads, each with its own PostgreSQL connection."""

from __future__ import annotations

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
