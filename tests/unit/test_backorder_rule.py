"""How a variant's backorder and preorder settings combine (catalog.backorders)."""

from datetime import UTC, datetime, timedelta

from catalog.backorders import NO_WAITING, WaitingRule, waiting_rule

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def rule(**settings) -> WaitingRule:
    values = {
        "allow_backorder": False,
        "backorder_limit": None,
        "preorder_until": None,
        "preorder_limit": None,
    }
    return waiting_rule(**(values | settings), now=NOW)


def test_nothing_set_takes_nothing_beyond_stock():
    assert rule() == NO_WAITING
    assert rule(backorder_limit=5, preorder_limit=5) == NO_WAITING  # limits alone allow none


def test_backorders_alone_use_their_limit_none_meaning_no_limit():
    assert rule(allow_backorder=True, backorder_limit=20) == WaitingRule(True, 20)
    assert rule(allow_backorder=True) == WaitingRule(True, None)
    assert rule(allow_backorder=True, backorder_limit=0) == WaitingRule(True, 0)


def test_preorders_are_taken_until_their_moment_and_not_from_it():
    later = NOW + timedelta(seconds=1)
    assert rule(preorder_until=later, preorder_limit=3) == WaitingRule(True, 3)
    assert rule(preorder_until=NOW, preorder_limit=3) == NO_WAITING
    assert rule(preorder_until=NOW - timedelta(days=1)) == NO_WAITING


def test_with_both_the_larger_limit_applies():
    later = NOW + timedelta(days=1)
    both = {"allow_backorder": True, "preorder_until": later}
    assert rule(**both, backorder_limit=2, preorder_limit=6) == WaitingRule(True, 6)
    assert rule(**both, backorder_limit=9, preorder_limit=6) == WaitingRule(True, 9)
    assert rule(**both, backorder_limit=2, preorder_limit=None) == WaitingRule(True, None)
    # Once the preorders close, the backorder limit alone.
    closed = {"allow_backorder": True, "preorder_until": NOW}
    assert rule(**closed, backorder_limit=2, preorder_limit=6) == WaitingRule(True, 2)
