"""Audit actions as staff read them: each app's names, and words for a code nobody named."""

from __future__ import annotations

import pytest

from audit.action_names import action_choices, action_in_words, named_actions


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("api_key.created", "API key created"),
        ("order.cancel", "Order cancelled"),
        ("order.created", "Order placed"),
        ("product.published", "Product published"),
        ("stock.reserve", "Stock reserved"),
        ("webhook_endpoint.secret_rotated", "Webhook signing secret rotated"),
        ("setting.updated", "Setting changed"),
        ("auth.login_failed", "Sign-in failed"),
    ],
)
def test_each_app_names_its_actions(code, words):
    assert action_in_words(code) == words


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("webhook_endpoint.url_changed", "Webhook endpoint URL changed"),
        ("product.sku_changed", "Product SKU changed"),
        ("api_key.ip_refused", "API key IP refused"),
        ("something", "Something"),
        ("", ""),
    ],
)
def test_a_code_nobody_named_still_reads_as_words(code, words):
    assert action_in_words(code) == words


def test_every_kind_of_stock_movement_and_order_move_is_named():
    from inventory.models import InventoryMovement
    from orders.services import TRANSITIONS

    named = named_actions()
    assert {f"stock.{kind}" for kind in InventoryMovement.Kind.values} <= named
    assert {f"order.{move}" for move in TRANSITIONS} <= named


def test_every_product_move_is_named():
    from catalog.services import TRANSITIONS

    assert set(TRANSITIONS.values()) <= named_actions()


def test_filter_choices_are_in_the_order_of_their_names():
    assert action_choices(["order.refund", "api_key.created", "order.cancel", "order.cancel"]) == [
        ("api_key.created", "API key created"),
        ("order.cancel", "Order cancelled"),
        ("order.refund", "Order refunded"),
    ]
