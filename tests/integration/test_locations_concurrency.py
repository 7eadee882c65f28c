"""Location writes racing each other and stock changes: real threads, each with its own
PostgreSQL connection."""

from __future__ import annotations

from collections import Counter

import pytest

from audit.actors import Actor
from inventory.integrity import inventory_drift
from inventory.locations import location_create, location_update
from inventory.models import Location
from inventory.services import default_location, stock_record_movement
from tests.integration.threads import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STAFF = Actor.system("locations-race")


def test_two_deactivations_never_leave_the_shop_without_an_active_location():
    default_location()
    for round_ in range(10):
        location_create(actor=STAFF, code=f"b{round_}", name="B")
        codes = list(Location.objects.filter(is_active=True).values_list("code", flat=True))
        assert len(codes) == 2
        outcomes = Counter(
            race(
                *(
                    lambda code=code: location_update(
                        actor=STAFF, code=code, data={"is_active": False}
                    )
                    for code in codes
                )
            )
        )

        assert outcomes == Counter({"ok": 1, "last_active_location": 1})
        assert Location.objects.filter(is_active=True).count() == 1


def test_a_receipt_racing_a_deactivation_never_leaves_stock_at_an_inactive_location(
    make_product,
):
    default_location()
    product = make_product("published")
    for round_ in range(20):
        place = location_create(actor=STAFF, code=f"r{round_}", name="R", priority=500)
        outcomes = race(
            lambda place=place: stock_record_movement(
                actor=STAFF,
                product_id=product.pk,
                kind="receipt",
                quantity=1,
                reason="race",
                location=place.code,
            ),
            lambda place=place: location_update(
                actor=STAFF, code=place.code, data={"is_active": False}
            ),
        )

        assert outcomes in (
            ["ok", "location_holds_stock"],
            ["location_inactive", "ok"],
        ), outcomes
        assert inventory_drift() == [], (round_, outcomes)
