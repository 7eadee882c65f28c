"""Transfers between locations: stock leaves at dispatch, arrives at receipt (partly if so),
goes back on a cancel in transit; every step one transaction with its ledger, audit and
events, and the stock checks clean after each."""

from __future__ import annotations

import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from audit.actors import Actor
from audit.models import AuditLog
from inventory.integrity import inventory_drift
from inventory.models import InventoryMovement, Location, Stock, StockLevel, Transfer
from inventory.services import MAX_MOVEMENT_QUANTITY, stock_record_movement
from inventory.transfers import (
    transfer_cancel,
    transfer_create,
    transfer_dispatch,
    transfer_receive,
    transfer_update,
)
from orders.services import order_place
from pms_backend.errors import Conflict, DomainError, InvalidInput
from pms_backend.events.models import Event
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER, order_body

TRANSFERS = "/api/v1/inventory/transfers/"


@pytest.fixture
def main(db):
    return Location.objects.get_or_create(code="main", defaults={"name": "Main warehouse"})[0]


@pytest.fixture
def store(db):
    return Location.objects.create(code="store", name="High Street store", priority=200)


@pytest.fixture
def stocked(make_product, main, system_actor):
    """Return a function making a published product with ``quantity`` on hand at main."""

    def make(quantity: int, location=None):
        product = make_product("published")
        stock_record_movement(
            actor=system_actor,
            product_id=product.pk,
            kind="receipt",
            quantity=quantity,
            reason="test receipt",
            location=location or main,
        )
        return product

    return make


def _level(product, location) -> tuple[int, int]:
    level = StockLevel.objects.filter(product=product, location=location).first()
    return (level.on_hand, level.reserved) if level else (0, 0)


def _total(product) -> int:
    return Stock.objects.get(product=product).on_hand


def _ledger(transfer) -> list[tuple[int, str, str, int]]:
    rows = InventoryMovement.objects.filter(reference=f"transfer:{transfer.number}").order_by("id")
    return [(m.product_id, m.location.code, m.kind, m.on_hand_delta) for m in rows]


def _events(transfer) -> list[str]:
    return list(
        Event.objects.filter(subject=f"transfer:{transfer.number}")
        .order_by("id")
        .values_list("type", flat=True)
    )


def test_the_whole_flow_moves_stock_through_the_ledger_and_checks_clean(
    stocked, main, store, system_actor
):
    lamp, mug = stocked(10), stocked(5)
    transfer = transfer_create(
        actor=system_actor, from_location="main", to_location="store", lines={lamp: 4, mug: 5},
        note="Window display",
    )  # fmt: skip
    assert transfer.number.startswith("TR-") and len(transfer.number) == 11
    assert transfer.status == "draft" and _ledger(transfer) == []
    assert (_level(lamp, main), _total(lamp)) == ((10, 0), 10)
    assert inventory_drift() == []

    transfer = transfer_dispatch(actor=system_actor, transfer=transfer.number)
    assert transfer.status == "in_transit" and transfer.dispatched_at is not None
    # The goods are at no location: the totals count what the locations hold.
    assert (_level(lamp, main), _level(lamp, store), _total(lamp)) == ((6, 0), (0, 0), 6)
    assert (_level(mug, main), _total(mug)) == ((0, 0), 0)
    assert _ledger(transfer) == [
        (lamp.pk, "main", "transfer_out", -4),
        (mug.pk, "main", "transfer_out", -5),
    ]
    assert inventory_drift() == []

    transfer = transfer_receive(actor=system_actor, transfer=transfer.number)
    assert transfer.status == "received" and transfer.received_at is not None
    assert (_level(lamp, main), _level(lamp, store), _total(lamp)) == ((6, 0), (4, 0), 10)
    assert (_level(mug, store), _total(mug)) == ((5, 0), 5)
    assert _ledger(transfer)[2:] == [
        (lamp.pk, "store", "transfer_in", 4),
        (mug.pk, "store", "transfer_in", 5),
    ]
    assert inventory_drift() == []
    assert _events(transfer) == ["transfer.created", "transfer.dispatched", "transfer.received"]
    actions = set(
        AuditLog.objects.filter(object_type="inventory.transfer").values_list("action", flat=True)
    )
    assert actions == {"transfer.created", "transfer.dispatched", "transfer.received"}
    assert AuditLog.objects.filter(action="stock.transfer_out").count() == 2


def test_partial_receipt_stays_in_transit_until_every_line_is_in(
    stocked, main, store, system_actor
):
    lamp, mug = stocked(10), stocked(10)
    transfer = transfer_create(
        actor=system_actor, from_location=main, to_location=store, lines={lamp.pk: 6, mug.pk: 2}
    )
    transfer_dispatch(actor=system_actor, transfer=transfer)

    transfer = transfer_receive(actor=system_actor, transfer=transfer, lines={lamp.pk: 4})
    assert transfer.status == "in_transit"
    assert (_level(lamp, store), _total(lamp)) == ((4, 0), 8)
    assert inventory_drift() == []
    partial = Event.objects.filter(type="transfer.received").latest("id").data
    assert partial["arrived"] == [{"product": lamp.pk, "quantity": 4}]
    assert partial["complete"] is False and partial["in_transit"] == 4
    assert {line["product"]: line["in_transit"] for line in partial["lines"]} == {
        lamp.pk: 2,
        mug.pk: 2,
    }

    transfer = transfer_receive(actor=system_actor, transfer=transfer)  # the rest
    assert transfer.status == "received"
    assert (_level(lamp, store), _level(mug, store), _total(lamp), _total(mug)) == (
        (6, 0), (2, 0), 10, 10,
    )  # fmt: skip
    last = Event.objects.filter(type="transfer.received").latest("id").data
    assert last["arrived"] == [
        {"product": lamp.pk, "quantity": 2},
        {"product": mug.pk, "quantity": 2},
    ]
    assert last["complete"] is True and last["in_transit"] == 0
    assert inventory_drift() == []


def test_cancelling_in_transit_sends_what_has_not_arrived_back(stocked, main, store, system_actor):
    lamp = stocked(10)
    transfer = transfer_create(
        actor=system_actor, from_location=main, to_location=store, lines={lamp: 6}
    )
    transfer_dispatch(actor=system_actor, transfer=transfer)
    transfer_receive(actor=system_actor, transfer=transfer, lines={lamp: 2})

    transfer = transfer_cancel(actor=system_actor, transfer=transfer)
    assert transfer.status == "cancelled" and transfer.cancelled_at is not None
    assert (_level(lamp, main), _level(lamp, store), _total(lamp)) == ((8, 0), (2, 0), 10)
    back = InventoryMovement.objects.filter(reference=f"transfer:{transfer.number}").first()
    assert (back.kind, back.location.code, back.on_hand_delta, back.reason) == (
        "transfer_in", "main", 4, "transfer cancelled",
    )  # fmt: skip
    cancelled = Event.objects.get(type="transfer.cancelled").data
    assert cancelled["returned"] == [{"product": lamp.pk, "quantity": 4}]
    assert inventory_drift() == []


def test_cancelling_a_draft_moves_nothing(stocked, main, store, system_actor):
    lamp = stocked(3)
    transfer = transfer_create(
        actor=system_actor, from_location=main, to_location=store, lines={lamp: 3}
    )
    transfer_cancel(actor=system_actor, transfer=transfer)
    assert _ledger(transfer) == [] and _level(lamp, main) == (3, 0)
    with pytest.raises(Conflict) as caught:
        transfer_dispatch(actor=system_actor, transfer=transfer)
    assert caught.value.code == "invalid_transition"


def test_the_inventory_check_sees_a_transfer_at_odds_with_its_ledger(
    stocked, main, store, system_actor
):
    lamp = stocked(10)
    transfer = transfer_create(
        actor=system_actor, from_location=main, to_location=store, lines={lamp: 6}
    )
    transfer_dispatch(actor=system_actor, transfer=transfer)
    assert inventory_drift() == []
    # Someone marks two as arrived behind the services' back: nothing arrived in the ledger.
    transfer.lines.update(received_quantity=2)
    assert [str(d) for d in inventory_drift()] == [
        f"product {lamp.pk}: transfer {transfer.number} has 4 in transit, its ledger "
        "movements leave 6 on the way"
    ]


def test_a_location_with_goods_on_the_way_stays_active_and_a_named_one_stays(
    stocked, main, store, system_actor
):
    from inventory.locations import location_delete, location_update

    spare = Location.objects.create(code="spare", name="Spare room", priority=300)
    lamp = stocked(5)
    moving = transfer_create(
        actor=system_actor, from_location=main, to_location=store, lines={lamp: 5}
    )
    transfer_dispatch(actor=system_actor, transfer=moving)
    # main holds nothing now and store nothing yet: only the transfer keeps them.
    for code in ("main", "store"):
        with pytest.raises(Conflict) as caught:
            location_update(actor=system_actor, code=code, data={"is_active": False})
        assert caught.value.code == "location_transfers_in_transit"
        assert moving.number in caught.value.detail
    transfer_create(actor=system_actor, from_location=store, to_location=spare, lines={lamp: 1})
    with pytest.raises(Conflict) as caught:
        location_delete(actor=system_actor, code="spare")
    assert caught.value.code == "location_in_use" and "1 transfer" in caught.value.detail

    transfer_receive(actor=system_actor, transfer=moving)
    location_update(actor=system_actor, code="main", data={"is_active": False})
    assert inventory_drift() == []


def test_a_draft_can_be_changed_and_nothing_else_can(stocked, main, store, system_actor):
    lamp, mug = stocked(5), stocked(5)
    transfer = transfer_create(
        actor=system_actor, from_location=main, to_location=store, lines={lamp: 1}
    )
    transfer_update(actor=system_actor, transfer=transfer, lines={mug: 2}, note="mugs instead")
    transfer.refresh_from_db()
    assert [(line.product_id, line.quantity) for line in transfer.lines.all()] == [(mug.pk, 2)]
    assert transfer.note == "mugs instead"
    transfer_dispatch(actor=system_actor, transfer=transfer)
    with pytest.raises(Conflict) as caught:
        transfer_update(actor=system_actor, transfer=transfer, lines={mug: 3})
    assert caught.value.code == "invalid_transition"
    assert _events(transfer) == ["transfer.created", "transfer.updated", "transfer.dispatched"]


# --- bad input: each refused with nothing written -------------------------------------


def _nothing_written(before: tuple[int, int, int, int]) -> None:
    assert (
        Transfer.objects.count(),
        InventoryMovement.objects.count(),
        Event.objects.count(),
        AuditLog.objects.count(),
    ) == before


def _counts() -> tuple[int, int, int, int]:
    return (
        Transfer.objects.count(),
        InventoryMovement.objects.count(),
        Event.objects.count(),
        AuditLog.objects.count(),
    )


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("to itself", 400, "invalid_transfer"),
        ("unknown from", 400, "unknown_location"),
        ("unknown to", 400, "unknown_location"),
        ("inactive to", 409, "location_inactive"),
        ("unknown product", 400, "unknown_product"),
        ("zero quantity", 400, "validation_error"),
        ("negative quantity", 400, "validation_error"),
        ("too many", 400, "validation_error"),
        ("no lines", 400, "validation_error"),
        ("repeated product", 400, "validation_error"),
    ],
)
def test_bad_transfers_are_refused_through_the_api_with_nothing_written(
    case, status, code, admin_api, stocked, main, store
):
    lamp = stocked(5)
    Location.objects.create(code="closed", name="Closed shop", is_active=False)
    body = {
        "from_location": "main",
        "to_location": "store",
        "lines": [{"product": lamp.pk, "quantity": 1}],
    }
    change = {
        "to itself": {"to_location": "main"},
        "unknown from": {"from_location": "nowhere"},
        "unknown to": {"to_location": "nowhere"},
        "inactive to": {"to_location": "closed"},
        "unknown product": {"lines": [{"product": 999_999, "quantity": 1}]},
        "zero quantity": {"lines": [{"product": lamp.pk, "quantity": 0}]},
        "negative quantity": {"lines": [{"product": lamp.pk, "quantity": -1}]},
        "too many": {"lines": [{"product": lamp.pk, "quantity": MAX_MOVEMENT_QUANTITY + 1}]},
        "no lines": {"lines": []},
        "repeated product": {
            "lines": [{"product": lamp.pk, "quantity": 1}, {"product": lamp.pk, "quantity": 2}]
        },
    }[case]
    before = _counts()
    answer = admin_api.post(TRANSFERS, body | change, format="json")
    assert answer.status_code == status, answer.content
    assert answer["Content-Type"].startswith("application/problem+json")
    assert answer.json()["code"] == code
    _nothing_written(before)


@pytest.mark.parametrize(
    "lines", [{}, {"x": 1}, {1: 0}, {1: -2}, {1: MAX_MOVEMENT_QUANTITY + 1}, {1: True}]
)
def test_the_service_refuses_bad_lines_itself(lines, stocked, main, store, system_actor):
    stocked(1)
    with pytest.raises(InvalidInput):
        transfer_create(actor=system_actor, from_location=main, to_location=store, lines=lines)
    assert not Transfer.objects.exists()


def test_dispatch_without_the_available_stock_names_each_short_line(
    admin_api, stocked, main, store, system_actor
):
    lamp, mug, cup = stocked(3), stocked(10), stocked(2)
    # 2 of the cups are reserved by an order: on hand is not available.
    order_place(
        actor=system_actor,
        items=[{"product": cup.pk, "quantity": 2}],
        customer=ORDER_CUSTOMER,
        shipping_address=ORDER_ADDRESS,
    )
    transfer = transfer_create(
        actor=system_actor, from_location=main, to_location=store,
        lines={lamp: 4, mug: 10, cup: 1},
    )  # fmt: skip
    before = _counts()
    answer = admin_api.post(f"{TRANSFERS}{transfer.number}/dispatch/")
    assert answer.status_code == 409
    problem = answer.json()
    assert problem["code"] == "insufficient_stock"
    assert [
        (line["product"], line["requested"], line["available"]) for line in problem["lines"]
    ] == [
        (lamp.pk, 4, 3),
        (cup.pk, 1, 0),
    ]
    assert lamp.sku in problem["detail"] and cup.sku in problem["detail"]
    assert mug.sku not in problem["detail"]
    _nothing_written(before)
    transfer.refresh_from_db()
    assert transfer.status == "draft" and _level(mug, main) == (10, 0)
    assert inventory_drift() == []


def test_receiving_more_than_was_sent_or_in_the_wrong_status_is_refused(
    admin_api, stocked, main, store, system_actor
):
    lamp, mug = stocked(5), stocked(5)
    transfer = transfer_create(
        actor=system_actor, from_location=main, to_location=store, lines={lamp: 3}
    )
    url = f"{TRANSFERS}{transfer.number}"
    draft = admin_api.post(f"{url}/receive/", {}, format="json")
    assert (draft.status_code, draft.json()["code"]) == (409, "invalid_transition")
    assert draft.json()["status"] == 409 and draft.json()["transfer_status"] == "draft"
    assert "only a transfer that is in transit can be received" in draft.json()["detail"]

    admin_api.post(f"{url}/dispatch/")
    twice = admin_api.post(f"{url}/dispatch/")
    assert (twice.status_code, twice.json()["code"]) == (409, "invalid_transition")

    before = _counts()
    over = admin_api.post(
        f"{url}/receive/", {"lines": [{"product": lamp.pk, "quantity": 4}]}, format="json"
    )
    assert (over.status_code, over.json()["code"]) == (409, "receipt_exceeds_outstanding")
    assert over.json()["lines"] == [{"product": lamp.pk, "requested": 4, "outstanding": 3}]
    foreign = admin_api.post(
        f"{url}/receive/", {"lines": [{"product": mug.pk, "quantity": 1}]}, format="json"
    )
    assert (foreign.status_code, foreign.json()["code"]) == (400, "invalid_transfer")
    empty = admin_api.post(f"{url}/receive/", {"lines": []}, format="json")
    assert empty.status_code == 400
    _nothing_written(before)

    admin_api.post(
        f"{url}/receive/", {"lines": [{"product": lamp.pk, "quantity": 3}]}, format="json"
    )
    again = admin_api.post(f"{url}/receive/", {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")
    cancel = admin_api.post(f"{url}/cancel/")
    assert (cancel.status_code, cancel.json()["code"]) == (409, "invalid_transition")
    assert admin_api.post(f"{TRANSFERS}TR-NOPE/dispatch/").status_code == 404
    assert inventory_drift() == []


def test_the_api_flow_shows_what_is_in_transit(admin_api, stocked, main, store):
    lamp = stocked(10)
    created = admin_api.post(
        TRANSFERS,
        {
            "from_location": "main",
            "to_location": "store",
            "lines": [{"product": lamp.pk, "quantity": 7}],
            "note": "restock",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    number = created.json()["number"]
    assert created.json()["status"] == "draft" and created.json()["in_transit"] == 0

    sent = admin_api.post(f"{TRANSFERS}{number}/dispatch/")
    assert sent.status_code == 200
    assert sent.json()["in_transit"] == 7
    assert sent.json()["lines"] == [
        {"product": lamp.pk, "quantity": 7, "received": 0, "in_transit": 7}
    ]
    part = admin_api.post(
        f"{TRANSFERS}{number}/receive/",
        {"lines": [{"product": lamp.pk, "quantity": 5}]},
        format="json",
    )
    assert (part.json()["status"], part.json()["in_transit"]) == ("in_transit", 2)
    shown = admin_api.get(f"{TRANSFERS}{number}/").json()
    assert shown == part.json()
    # The event carries what the API shows (plus what arrived).
    event = Event.objects.filter(type="transfer.received").latest("id").data
    assert {k: v for k, v in event.items() if k not in ("arrived", "complete")} == {
        k: v for k, v in shown.items() if not k.endswith("_at")
    } | {k: event[k] for k in shown if k.endswith("_at")}

    listed = admin_api.get(TRANSFERS, {"status": "in_transit"}).json()
    assert [t["number"] for t in listed["results"]] == [number]
    assert admin_api.get(TRANSFERS, {"status": "draft"}).json()["results"] == []

    done = admin_api.post(f"{TRANSFERS}{number}/receive/")
    assert (done.json()["status"], done.json()["in_transit"]) == ("received", 0)
    assert inventory_drift() == []


def test_storefront_keys_neither_read_nor_run_transfers(
    storefront, client_for, stocked, main, store
):
    lamp = stocked(2)
    body = {"from_location": "main", "to_location": "store",
            "lines": [{"product": lamp.pk, "quantity": 1}]}  # fmt: skip
    assert storefront.get(TRANSFERS).status_code == 403
    assert storefront.post(TRANSFERS, body, format="json").status_code == 403
    reader = client_for("inventory:read")
    assert reader.get(TRANSFERS).status_code == 403
    writer = client_for("inventory:write")
    assert writer.post(TRANSFERS, body, format="json").status_code == 201
    assert writer.get(TRANSFERS).status_code == 200


def test_transfer_events_are_registered_for_inventory_writers_only():
    from pms_backend.events.registry import EVENT_TOPICS, topic

    for kind in ("created", "updated", "dispatched", "received", "cancelled"):
        assert EVENT_TOPICS[f"transfer.{kind}"] == "transfers"
    transfers = topic("transfers")
    assert transfers.read_scope == transfers.full_scope == "inventory:write"
    assert transfers.public is None and transfers.owner is None


def test_only_inventory_writers_may_point_a_webhook_at_transfer_events(client_for):
    body = {"url": "https://example.com/h", "event_types": ["transfer.dispatched"]}
    refused = client_for("webhooks:manage,inventory:read").post(
        "/api/v1/webhooks/endpoints/", body, format="json"
    )
    assert refused.status_code == 403
    assert refused.json()["missing_scopes"] == ["inventory:write"]
    allowed = client_for("webhooks:manage,inventory:write").post(
        "/api/v1/webhooks/endpoints/", body, format="json"
    )
    assert allowed.status_code == 201, allowed.content


def test_a_location_pair_that_is_the_same_is_refused_by_the_database(main, system_actor):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Transfer.objects.create(from_location=main, to_location=main, created_by="x")


# --- admin ------------------------------------------------------------------------------


def test_admin_drafts_dispatches_receives_and_cancels_through_the_services(
    admin_client, stocked, main, store
):
    lamp = stocked(8)
    assert admin_client.get("/admin/inventory/transfer/add/").status_code == 200
    added = admin_client.post(
        "/admin/inventory/transfer/add/",
        {
            "from_location": main.pk,
            "to_location": store.pk,
            "note": "by hand",
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "1000",
            "lines-0-product": lamp.pk,
            "lines-0-quantity": "5",
        },
    )
    assert added.status_code == 302, added.context and added.context["adminform"].form.errors
    transfer = Transfer.objects.get()
    assert "boss" in transfer.created_by
    assert AuditLog.objects.filter(action="transfer.created").count() == 1
    page = f"/admin/inventory/transfer/{transfer.pk}/change/"
    shown = admin_client.get(page)
    assert b"Dispatch" in shown.content and b"Draft" in shown.content

    line = transfer.lines.get()
    form = {
        "note": "by hand",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "1",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-id": line.pk,
        "lines-0-transfer": transfer.pk,
        "lines-0-product": lamp.pk,
        "lines-0-quantity": "5",
    }
    dispatched = admin_client.post(page, form | {"_fsm_transition_to": "dispatch"})
    assert dispatched.status_code == 302
    transfer.refresh_from_db()
    assert transfer.status == "in_transit" and _level(lamp, main) == (3, 0)
    assert not AuditLog.objects.filter(action="transfer.updated").exists()
    shown = admin_client.get(page)
    assert b"In transit" in shown.content and b"Receive all" in shown.content

    received = admin_client.post(page, form | {"_fsm_transition_to": "receive"})
    assert received.status_code == 302
    transfer.refresh_from_db()
    assert transfer.status == "received" and _level(lamp, store) == (5, 0)
    assert inventory_drift() == []
    listed = admin_client.get("/admin/inventory/transfer/").content.decode()
    assert transfer.number in listed and "Received" in listed


def test_warehouse_staff_draft_a_transfer_with_its_lines_in_the_admin(client, stocked, main, store):
    """The lines go with the transfer's permissions: the roles hand out none of their own,
    and the lines were once missing from the form of everyone but a superuser."""
    lamp = stocked(8)
    wanda = get_user_model().objects.create_user("wanda", is_staff=True)
    wanda.groups.add(Group.objects.get(name="Warehouse staff"))
    client.force_login(wanda)
    form = client.get("/admin/inventory/transfer/add/").content.decode()
    assert 'name="lines-TOTAL_FORMS"' in form and 'name="lines-0-quantity"' in form

    added = client.post(
        "/admin/inventory/transfer/add/",
        {
            "from_location": main.pk,
            "to_location": store.pk,
            "note": "",
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "1000",
            "lines-0-product": lamp.pk,
            "lines-0-quantity": "3",
        },
    )
    assert added.status_code == 302
    transfer = Transfer.objects.get()
    assert list(transfer.lines.values_list("product_id", "quantity")) == [(lamp.pk, 3)]

    # Dispatched, the lines stay in view, read-only.
    transfer_dispatch(actor=Actor.system("tests"), transfer=transfer)
    shown = client.get(f"/admin/inventory/transfer/{transfer.pk}/change/").content.decode()
    assert lamp.sku in shown and 'name="lines-0-quantity"' not in shown
    # Said as staff say it, and nothing offered to save on it.
    assert re.search(r"Created by:</label>\s*<div class=\"readonly\">wanda</div>", shown)
    assert 'name="_addanother"' not in shown and 'name="_save"' not in shown
    listed = client.get("/admin/inventory/transfer/").content.decode()
    assert re.search(r'<td class="field-in_transit">3</td>', listed), listed

    # A role without transfers sees neither the transfer nor its lines.
    orders = get_user_model().objects.create_user("olga", is_staff=True)
    orders.groups.add(Group.objects.get(name="Order managers"))
    client.force_login(orders)
    assert client.get("/admin/inventory/transfer/add/").status_code == 403
    assert client.get(f"/admin/inventory/transfer/{transfer.pk}/change/").status_code == 403


def test_admin_cancel_asks_first_and_refusals_are_messages(admin_client, stocked, main, store):
    lamp = stocked(1)
    transfer = transfer_create(
        actor=Actor.system("tests"), from_location=main, to_location=store, lines={lamp: 4}
    )
    page = f"/admin/inventory/transfer/{transfer.pk}/change/"
    form = {"note": "", "lines-TOTAL_FORMS": "0", "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "0", "lines-MAX_NUM_FORMS": "1000"}  # fmt: skip
    line = transfer.lines.get()
    form |= {"lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "1", "lines-0-id": line.pk,
             "lines-0-transfer": transfer.pk, "lines-0-product": lamp.pk,
             "lines-0-quantity": "4"}  # fmt: skip
    short = admin_client.post(page, form | {"_fsm_transition_to": "dispatch"}, follow=True)
    assert "not enough available" in short.content.decode()
    transfer.refresh_from_db()
    assert transfer.status == "draft"

    asked = admin_client.post(page, form | {"_fsm_transition_to": "cancel"})
    assert asked.status_code == 302 and asked["Location"].endswith(f"{transfer.pk}/cancel/")
    confirm = admin_client.get(asked["Location"])
    assert confirm.status_code == 200 and transfer.number in confirm.content.decode()
    transfer.refresh_from_db()
    assert transfer.status == "draft"
    done = admin_client.post(asked["Location"])
    assert done.status_code == 302
    transfer.refresh_from_db()
    assert transfer.status == "cancelled"


def test_admin_cannot_write_transfers_outside_the_services(admin_client, stocked, main, store):
    lamp = stocked(5)
    transfer = transfer_create(
        actor=Actor.system("tests"), from_location=main, to_location=store, lines={lamp: 2}
    )
    transfer_dispatch(actor=Actor.system("tests"), transfer=transfer)
    page = f"/admin/inventory/transfer/{transfer.pk}/change/"
    line = transfer.lines.get()
    admin_client.post(
        page,
        {"note": "changed", "lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "1",
         "lines-MIN_NUM_FORMS": "0", "lines-MAX_NUM_FORMS": "1000", "lines-0-id": line.pk,
         "lines-0-transfer": transfer.pk, "lines-0-product": lamp.pk, "lines-0-quantity": "1"},
    )  # fmt: skip
    line.refresh_from_db()
    transfer.refresh_from_db()
    assert (line.quantity, transfer.note) == (2, "")
    assert admin_client.post(f"/admin/inventory/transfer/{transfer.pk}/delete/").status_code == 403


# --- concurrency ------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_orders_racing_a_dispatch_from_the_same_location_never_oversell_nor_deadlock(
    make_product, system_actor
):
    main = Location.objects.get_or_create(code="main", defaults={"name": "Main"})[0]
    store = Location.objects.create(code="store", name="Store", priority=200)
    lamp, mug = make_product("published"), make_product("published")
    for product in (lamp, mug):
        stock_record_movement(
            actor=system_actor, product_id=product.pk, kind="receipt", quantity=20,
            reason="test", location=main,
        )  # fmt: skip
    # Taking all 20 of each: it dispatches only if no order got in first.
    transfers = [
        transfer_create(
            actor=system_actor, from_location=main, to_location=store, lines={mug: 10, lamp: 10}
        )
        for _ in range(2)
    ]
    barrier = threading.Barrier(12)
    buyer = Actor.system("concurrency-test")

    def run(i: int) -> str:
        try:
            barrier.wait(timeout=30)
            if i < 2:
                transfer_dispatch(actor=system_actor, transfer=transfers[i].number)
                return "dispatched"
            body = order_body((lamp, 2), (mug, 2)) if i % 2 else order_body((mug, 2), (lamp, 2))
            order_place(
                actor=buyer,
                items=body["items"],
                customer=ORDER_CUSTOMER,
                shipping_address=ORDER_ADDRESS,
            )
            return "ordered"
        except DomainError as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = Counter(pool.map(run, range(12)))

    # 10 orders of 2+2 and two transfers of 10+10 over 20 of each: whatever the order,
    # nobody deadlocked (a deadlock surfaces as an error, not a code) and every unit
    # went to exactly one taker.
    assert sum(outcomes.values()) == 12
    assert set(outcomes) <= {"dispatched", "ordered", "insufficient_stock"}
    taken = 10 * outcomes["dispatched"] + 2 * outcomes["ordered"]
    for product in (lamp, mug):
        on_hand, reserved = _level(product, main)
        assert reserved == 2 * outcomes["ordered"] and on_hand == 20 - 10 * outcomes["dispatched"]
        assert reserved <= on_hand
    assert taken <= 20
    assert inventory_drift() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_dispatch_racing_the_destinations_deactivation_never_strands_goods(
    make_product, system_actor
):
    from inventory.locations import location_update

    main = Location.objects.get_or_create(code="main", defaults={"name": "Main"})[0]
    lamp = make_product("published")
    stock_record_movement(
        actor=system_actor, product_id=lamp.pk, kind="receipt", quantity=50, reason="test",
        location=main,
    )  # fmt: skip
    for round_ in range(5):
        place = Location.objects.create(code=f"pop-up-{round_}", name="Pop-up", priority=300)
        transfer = transfer_create(
            actor=system_actor, from_location=main, to_location=place, lines={lamp: 1}
        )
        barrier = threading.Barrier(2)

        def dispatch(number=transfer.number, barrier=barrier):
            barrier.wait(timeout=30)
            try:
                transfer_dispatch(actor=system_actor, transfer=number)
                return "dispatched"
            except DomainError as exc:
                return exc.code
            finally:
                connection.close()

        def deactivate(code=place.code, barrier=barrier):
            barrier.wait(timeout=30)
            try:
                location_update(actor=system_actor, code=code, data={"is_active": False})
                return "deactivated"
            except DomainError as exc:
                return exc.code
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(dispatch), pool.submit(deactivate)]
        results = sorted(future.result() for future in futures)
        assert results in (
            ["deactivated", "location_inactive"],
            ["dispatched", "location_transfers_in_transit"],
        ), results
        transfer.refresh_from_db()
        place.refresh_from_db()
        assert not (transfer.status == "in_transit" and not place.is_active)
    assert inventory_drift() == []
