"""Every catalog write leaves one audit entry and one outbox event; the audit API reads them."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.models import AuditLog
from pms_backend.events.models import Event
from tests.integration.problem_json import assert_problem, leaves_no_trace

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
CATEGORIES = "/api/v1/categories/"
AUDIT = "/api/v1/audit/"


def prefix_of(client) -> str:
    return client.raw_key.split("_")[1]


class Recorder:
    """Run one API write and return the single audit entry and event it left."""

    def __init__(self, client):
        self.client = client

    def __call__(self, method: str, path: str, body=None, **extra):
        last_audit = AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
        last_event = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
        response = getattr(self.client, method)(path, body, format="json", **extra)
        assert response.status_code in (200, 201, 204), response.content
        entries = list(AuditLog.objects.filter(id__gt=last_audit))
        events = list(Event.objects.filter(id__gt=last_event))
        assert len(entries) == 1, [e.action for e in entries]
        assert len(events) == 1, [e.type for e in events]
        return response, entries[0], events[0]


@pytest.fixture
def record(admin_api):
    return Recorder(admin_api)


# --- Audit entries of catalog writes ------------------------------------------------------


def test_product_create_is_audited_with_the_key_and_request_id(admin_api, record, category):
    response, entry, _ = record(
        "post",
        PRODUCTS,
        {"sku": "AUD-1", "name": "Audited", "price": "5.00", "category": category.pk},
    )

    product_id = response.json()["id"]
    assert entry.action == "product.created"
    assert entry.actor_type == "api_key"
    assert entry.actor_id == prefix_of(admin_api)
    assert prefix_of(admin_api) in entry.actor_label
    assert entry.object_type == "catalog.product"
    assert entry.object_id == str(product_id)
    assert entry.request_id == response["X-Request-ID"]
    assert entry.request_id
    assert entry.ip == "127.0.0.1"
    assert entry.changes["sku"] == {"before": None, "after": "AUD-1"}
    assert entry.changes["price"] == {"before": None, "after": "5.00"}
    assert entry.changes["status"] == {"before": None, "after": "draft"}
    assert entry.changes["category"] == {"before": None, "after": category.pk}


def test_callers_request_id_is_kept_in_response_and_audit(record, category):
    response, entry, _ = record(
        "post",
        PRODUCTS,
        {"sku": "RID-1", "name": "Traced", "price": "5.00"},
        HTTP_X_REQUEST_ID="shop-checkout-42",
    )

    assert response["X-Request-ID"] == "shop-checkout-42"
    assert entry.request_id == "shop-checkout-42"


def test_an_insane_request_id_is_replaced(record):
    response, entry, _ = record(
        "post",
        PRODUCTS,
        {"sku": "RID-2", "name": "Traced", "price": "5.00"},
        HTTP_X_REQUEST_ID="<script>" + "x" * 200,
    )

    assert response["X-Request-ID"] != "<script>" + "x" * 200
    assert entry.request_id == response["X-Request-ID"]


def test_product_update_records_only_the_changed_fields(record, make_product):
    product = make_product("draft", name="Before", description="same")

    response, entry, _ = record(
        "patch",
        f"{PRODUCTS}{product.pk}/",
        {"name": "After", "price": "1.25", "description": "same"},
    )

    assert entry.action == "product.updated"
    assert entry.changes == {
        "name": {"before": "Before", "after": "After"},
        "price": {"before": "19.90", "after": "1.25"},
    }
    assert entry.request_id == response["X-Request-ID"]


def test_a_patch_that_changes_nothing_leaves_no_entry_or_event(admin_api, make_product):
    product = make_product("draft", name="Same")

    with leaves_no_trace():
        response = admin_api.patch(
            f"{PRODUCTS}{product.pk}/", {"name": "Same", "price": "19.90"}, format="json"
        )

    assert response.status_code == 200


TRANSITION_CASES = [
    ("draft", "publish", "product.published", {"status": ("draft", "published")}),
    ("published", "unpublish", "product.unpublished", {"status": ("published", "draft")}),
    ("published", "archive", "product.archived", {"status": ("published", "archived")}),
    ("archived", "restore", "product.restored", {"status": ("archived", "draft")}),
]


@pytest.mark.parametrize(("start", "transition", "action", "status_change"), TRANSITION_CASES)
def test_transitions_are_audited(
    admin_api, record, make_product, start, transition, action, status_change
):
    product = make_product(start)

    response, entry, event = record("post", f"{PRODUCTS}{product.pk}/{transition}/")

    assert entry.action == action
    assert entry.actor_type == "api_key"
    assert entry.actor_id == prefix_of(admin_api)
    assert entry.object_id == str(product.pk)
    assert entry.request_id == response["X-Request-ID"]
    before, after = status_change["status"]
    assert entry.changes["status"] == {"before": before, "after": after}
    # published_at appears only when it changed.
    if transition == "archive":
        assert set(entry.changes) == {"status"}
    else:
        assert set(entry.changes) == {"status", "published_at"}
    assert event.type == action


def test_category_writes_are_audited(admin_api, record):
    response, created, _ = record("post", CATEGORIES, {"name": "Lamps"})
    category_id = response.json()["id"]
    assert created.action == "category.created"
    assert created.object_type == "catalog.category"
    assert created.object_id == str(category_id)
    assert created.actor_id == prefix_of(admin_api)
    assert created.changes["name"] == {"before": None, "after": "Lamps"}
    assert created.request_id == response["X-Request-ID"]

    response, updated, _ = record("patch", f"{CATEGORIES}{category_id}/", {"name": "Lights"})
    assert updated.action == "category.updated"
    assert updated.changes == {"name": {"before": "Lamps", "after": "Lights"}}
    assert updated.request_id == response["X-Request-ID"]

    response, deleted, _ = record("delete", f"{CATEGORIES}{category_id}/")
    assert deleted.action == "category.deleted"
    assert deleted.object_id == str(category_id)
    assert deleted.changes["name"] == {"before": "Lights", "after": None}
    assert deleted.request_id == response["X-Request-ID"]


def test_refused_writes_leave_no_audit_entry_or_event(admin_api, make_product, category):
    taken = make_product("draft", sku="TAKEN")
    draft = make_product("draft", price=0)

    with leaves_no_trace():
        admin_api.post(PRODUCTS, {"sku": "TAKEN", "name": "x", "price": "1"}, format="json")
        admin_api.post(PRODUCTS, {"sku": "OK-1", "name": "x", "price": "-1"}, format="json")
        admin_api.patch(f"{PRODUCTS}{taken.pk}/", {"status": "published"}, format="json")
        admin_api.post(f"{PRODUCTS}{draft.pk}/publish/")
        admin_api.post(f"{PRODUCTS}{taken.pk}/archive/")
        admin_api.delete(f"{CATEGORIES}{category.pk}/")
        admin_api.patch(f"{CATEGORIES}{category.pk}/", {"parent": category.pk}, format="json")


# --- Outbox events --------------------------------------------------------------------


def assert_envelope(event: Event, type_: str) -> dict:
    envelope = event.envelope()
    assert set(envelope) == {"id", "type", "timestamp", "data"}
    assert envelope["id"].startswith("evt_")
    assert envelope["id"] == event.event_id
    assert envelope["type"] == type_
    stamp = parse_datetime(envelope["timestamp"])
    assert stamp is not None
    assert stamp.tzinfo is not None
    assert abs(timezone.now() - stamp) < timedelta(minutes=5)
    return envelope


def test_product_created_event_carries_the_api_representation(admin_api, record, category):
    response, _, event = record(
        "post",
        PRODUCTS,
        {
            "sku": "EVT-1",
            "name": "Evented",
            "price": "7.10",
            "category": category.pk,
            "attributes": {"size": "L"},
        },
    )

    envelope = assert_envelope(event, "product.created")
    shown = admin_api.get(f"{PRODUCTS}{response.json()['id']}/").json()
    assert envelope["data"] == shown
    assert envelope["data"] == response.json()
    assert event.topic == "products"


def test_product_updated_event_carries_the_api_representation(admin_api, record, make_product):
    product = make_product("draft")

    _, _, event = record("patch", f"{PRODUCTS}{product.pk}/", {"name": "Updated"})

    envelope = assert_envelope(event, "product.updated")
    assert envelope["data"] == admin_api.get(f"{PRODUCTS}{product.pk}/").json()
    assert envelope["data"]["name"] == "Updated"


@pytest.mark.parametrize(("start", "transition", "action", "_"), TRANSITION_CASES)
def test_transition_event_carries_the_api_representation(
    admin_api, record, make_product, start, transition, action, _
):
    product = make_product(start)

    _, _, event = record("post", f"{PRODUCTS}{product.pk}/{transition}/")

    envelope = assert_envelope(event, action)
    assert envelope["data"] == admin_api.get(f"{PRODUCTS}{product.pk}/").json()


def test_category_events_carry_the_api_representation(admin_api, record):
    response, _, created = record("post", CATEGORIES, {"name": "Bath"})
    category_id = response.json()["id"]
    envelope = assert_envelope(created, "category.updated")
    assert envelope["data"] == admin_api.get(f"{CATEGORIES}{category_id}/").json()

    _, _, updated = record("patch", f"{CATEGORIES}{category_id}/", {"position": 3})
    envelope = assert_envelope(updated, "category.updated")
    assert envelope["data"] == admin_api.get(f"{CATEGORIES}{category_id}/").json()
    assert envelope["data"]["position"] == 3

    _, _, deleted = record("delete", f"{CATEGORIES}{category_id}/")
    envelope = assert_envelope(deleted, "category.updated")
    assert envelope["data"]["id"] == category_id
    assert envelope["data"]["deleted"] is True


def test_event_ids_are_unique(record, make_product):
    product = make_product("draft")
    ids = set()
    for transition in ("publish", "unpublish", "publish", "archive", "restore"):
        _, _, event = record("post", f"{PRODUCTS}{product.pk}/{transition}/")
        ids.add(event.envelope()["id"])

    assert len(ids) == 5


def test_event_and_audit_entry_commit_with_the_change(admin_api, category):
    # A write that fails half-way inside its transaction must leave none of the three.
    from unittest import mock

    with (
        leaves_no_trace(),
        mock.patch("catalog.services.publish", side_effect=RuntimeError("outbox down")),
        pytest.raises(RuntimeError),
    ):
        admin_api.post(PRODUCTS, {"sku": "HALF-1", "name": "Half", "price": "1.00"}, format="json")


# --- Reading the audit log ----------------------------------------------------------------


def test_audit_list_shape_and_order(admin_api, make_product):
    make_product("draft")
    make_product("draft")

    body = admin_api.get(AUDIT).json()

    assert set(body) == {"count", "next", "previous", "results"}
    ids = [e["id"] for e in body["results"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    first = body["results"][0]
    assert {"actor_type", "actor_id", "action", "object_type", "object_id", "changes"} <= set(first)


def test_audit_filters(admin_api, client_for, make_product, category):
    writer = client_for("catalog:write")
    product = make_product("draft")
    other = make_product("draft")
    writer.patch(f"{PRODUCTS}{product.pk}/", {"name": "Renamed"}, format="json")
    admin_api.post(f"{PRODUCTS}{other.pk}/publish/")

    def actions(**params) -> list[str]:
        response = admin_api.get(AUDIT, params)
        assert response.status_code == 200, response.content
        return [e["action"] for e in response.json()["results"]]

    assert actions(object_type="catalog.product", object_id=str(product.pk)) == [
        "product.updated",
        "product.created",
    ]
    assert actions(action="product.published") == ["product.published"]
    assert actions(actor=prefix_of(writer)) == ["product.updated"]
    assert actions(actor=prefix_of(admin_api)) == ["product.published"]
    assert actions(actor="job:tests", object_type="catalog.category") == ["category.created"]
    assert actions(actor_type="api_key", object_type="catalog.product") == [
        "product.published",
        "product.updated",
    ]
    assert actions(action="no.such.action") == []


def test_audit_time_range_filters(admin_api, make_product, monkeypatch):
    now = timezone.now()
    # The log is append-only, so the old entry is written under a clock set back 10 days.
    with monkeypatch.context() as clock:
        clock.setattr(timezone, "now", lambda: now - timedelta(days=10))
        old = make_product("draft")
    new = make_product("draft")

    def object_ids(**params) -> set[str]:
        body = admin_api.get(AUDIT, {"object_type": "catalog.product", **params}).json()
        return {e["object_id"] for e in body["results"]}

    cut = (now - timedelta(days=1)).isoformat()
    assert object_ids(since=cut) == {str(new.pk)}
    assert object_ids(until=cut) == {str(old.pk)}
    assert object_ids(
        since=(now - timedelta(days=11)).isoformat(), until=(now - timedelta(days=9)).isoformat()
    ) == {str(old.pk)}
    assert object_ids() == {str(old.pk), str(new.pk)}


def test_bad_time_range_is_400(admin_api):
    body = assert_problem(admin_api.get(AUDIT, {"since": "last tuesday"}), 400)

    assert "since" in body["errors"]


def test_audit_detail_and_scope(admin_api, storefront, client_for, make_product):
    make_product("draft")
    entry = AuditLog.objects.filter(action="product.created").get()

    assert admin_api.get(f"{AUDIT}{entry.pk}/").json()["action"] == "product.created"
    assert client_for("audit:read").get(f"{AUDIT}{entry.pk}/").status_code == 200
    assert_problem(storefront.get(f"{AUDIT}{entry.pk}/"), 403)
    assert_problem(client_for("catalog:write").get(AUDIT), 403)


def test_audit_log_cannot_be_written_over_the_api(admin_api, make_product):
    make_product("draft")
    entry = AuditLog.objects.filter(action="product.created").get()

    with leaves_no_trace():
        for method in ("post", "put", "patch", "delete"):
            path = AUDIT if method == "post" else f"{AUDIT}{entry.pk}/"
            response = getattr(admin_api, method)(path, {"action": "forged"}, format="json")
            assert_problem(response, 405, "method_not_allowed")

    entry.refresh_from_db()
    assert entry.action == "product.created"
