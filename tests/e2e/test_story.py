"""One day of the shop, end to end, over real processes: the production server
(``scripts/start.sh``) on HTTPS/WSS with a self-signed pair from ``manage.py make_tls_cert``,
a Celery worker with beat (``scripts/worker.sh --beat``), PostgreSQL, a private Redis and
a local webhook receiver that checks every signature with ``standardwebhooks``.

The operator makes the API keys with ``manage.py generate_api_key``. The back office (an
integration holding an admin key) builds the catalog and runs orders through the API; a
storefront (storefront key) reads the catalog, places orders and listens on the
websocket; a staff member receives stock in the admin; a customer gets part of an order
paid back (the back office refunds it through the API), sends a lamp back (the storefront
asks for the return, the staff member receives and restocks it and refunds it in the
admin) and the rest is refunded with restock; the inventory cleanup job cancels an order
whose reservation ran out. At the end ``check_inventory`` and
``verify_audit_chain`` pass and the audit log names the right actor for every step.
"""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Max
from django.db.models.functions import Now

from audit.models import AuditLog, AuditSeal
from pms_backend.apikeys.models import ApiKey
from pms_backend.events.models import Event
from tests.e2e.clients import (
    AdminSession,
    EventListener,
    all_pages,
    api,
    create_endpoint,
    generate_api_key,
    manage,
    place_order,
    verified_envelopes,
    ws_url,
)
from tests.e2e.processes import (
    Redis,
    base_env,
    make_tls_cert,
    start_server,
    start_worker,
    started_together,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STAFF, STAFF_PASSWORD = "morgan", "a long enough passphrase 42"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def shop_stack(tmp_path):
    """HTTPS server and a worker with beat, on the test database and a private Redis."""
    cert, key = make_tls_cert(tmp_path)
    with Redis(tmp_path) as redis:
        env = base_env(redis.url)
        with started_together(
            lambda: start_server(tmp_path, env, tls=(cert, key)),
            lambda: start_worker(tmp_path, env, beat=True),
        ) as (web, worker):
            yield {"web": web, "worker": worker, "env": env, "cert": cert}


def _published_with(secret: str, received: list, product_id: int) -> list[dict]:
    return [
        e
        for e in verified_envelopes(secret, received)
        if e["type"] == "product.published" and e["data"]["id"] == product_id
    ]


def _created(client, path: str, **body) -> dict:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _moved(client, path: str, expect: str, **body) -> dict:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == expect
    return response.json()


def test_a_day_in_the_shop(shop_stack, receiver, django_user_model):
    web, env, cert = shop_stack["web"], shop_stack["env"], shop_stack["cert"]
    first_audit = AuditLog.objects.aggregate(m=Max("pk"))["m"] or 0
    first_event = Event.objects.aggregate(m=Max("pk"))["m"] or 0

    # The operator makes two keys (the commands run side by side) and a staff login.
    with ThreadPoolExecutor(2) as pool:
        back_key, shop_key = pool.map(
            lambda name_scopes: generate_api_key(env, *name_scopes),
            [("back-office", "admin"), ("storefront-web", "storefront")],
        )
    back_prefix = ApiKey.objects.get(name="back-office").prefix
    shop_prefix = ApiKey.objects.get(name="storefront-web").prefix
    staff_user = django_user_model.objects.create_superuser(
        STAFF, "morgan@example.com", STAFF_PASSWORD
    )
    back, shop = api(web.base_url, back_key, cert), api(web.base_url, shop_key, cert)

    # The back office registers the storefront's webhook receiver (it keeps a cache);
    # the storefront's live pages listen on the websocket.
    endpoint_id, secret = create_endpoint(back, receiver.url, description="storefront cache")
    listener = EventListener(
        ws_url(web.base_url), shop_key, ["products", "stock", "orders"], cert
    ).start()
    try:
        # The back office builds the catalog: a category tree and two products.
        lighting = _created(back, "/categories/", name="Lighting")
        lamps = _created(back, "/categories/", name="Desk lamps", parent=lighting["id"])
        lamp = _created(
            back,
            "/products/",
            sku="LAMP-001",
            name="Brass desk lamp",
            price="24.90",
            category=lamps["id"],
        )
        bulb = _created(
            back,
            "/products/",
            sku="BULB-E27",
            name="E27 bulb",
            price="3.50",
            category=lighting["id"],
        )
        assert lamp["status"] == bulb["status"] == "draft"
        assert shop.get(f"/products/{lamp['id']}/").status_code == 404  # drafts are hidden
        for product in (lamp, bulb):
            _moved(back, f"/products/{product['id']}/publish/", "published")

        # Bulbs arrive; during a flash sale the shop holds stock for one minute only, and
        # a customer leaves two bulbs in an order they never pay for.
        _created(
            back,
            "/inventory/movements/",
            product=bulb["id"],
            quantity=10,
            kind="receipt",
            reason="supplier delivery",
        )
        setting = "/settings/orders.reservation_minutes/"
        assert back.put(setting, json={"value": 1}).status_code == 200
        abandoned = place_order(shop, (bulb["id"], 2))
        assert abandoned.status_code == 201, abandoned.text
        abandoned = abandoned.json()
        reserved_until = datetime.fromisoformat(abandoned["reserved_until"])
        assert reserved_until - datetime.now(UTC) < timedelta(seconds=61)
        assert back.put(setting, json={"value": None}).status_code == 200  # back to default

        # product.published reaches the storefront by webhook (signature verified) and by
        # websocket (WSS); the storefront then fetches the product.
        wait_until(
            lambda: _published_with(secret, receiver.received, lamp["id"]),
            60,
            "no product.published webhook",
        )
        listener.wait_for(
            lambda seen: any(
                e["type"] == "product.published" and e["data"]["id"] == lamp["id"] for e in seen
            ),
            60,
            "no product.published on the websocket",
        )
        fetched = shop.get(f"/products/{lamp['id']}/")
        assert fetched.status_code == 200, fetched.text
        assert (fetched.json()["status"], fetched.json()["price"]) == ("published", "24.90")
        etag = fetched.headers["etag"]
        again = shop.get(f"/products/{lamp['id']}/", headers={"If-None-Match": etag})
        assert again.status_code == 304

        # A staff member receives the lamps in the admin.
        staff = AdminSession(web.base_url, cert)
        staff.login(STAFF, STAFF_PASSWORD)
        received = staff.post_form(
            f"/admin/catalog/product/{lamp['id']}/stock/",
            {"kind": "receipt", "quantity": "25", "reason": "first delivery"},
        )
        assert received.status_code == 302, received.text[:2000]
        stock = shop.get(f"/products/{lamp['id']}/stock/").json()
        assert (stock["on_hand"], stock["available"]) == (25, 25)

        # An order, retried with the same Idempotency-Key: one order, the same answer.
        idempotency_key = uuid.uuid4().hex
        first = place_order(shop, (lamp["id"], 3), idempotency_key=idempotency_key)
        assert first.status_code == 201, first.text
        retry = place_order(shop, (lamp["id"], 3), idempotency_key=idempotency_key)
        assert retry.status_code == 201, retry.text
        assert retry.headers.get("idempotent-replayed") == "true"
        assert retry.json() == first.json()
        order = first.json()

        # More than is left is refused, with the numbers, as problem+json.
        oversell = place_order(shop, (lamp["id"], 100))
        assert oversell.status_code == 409, oversell.text
        assert oversell.headers["content-type"].startswith(PROBLEM_JSON)
        problem = oversell.json()
        assert (problem["status"], problem["code"]) == (409, "insufficient_stock")
        assert problem["lines"] == [{"product": lamp["id"], "requested": 100, "available": 22}]

        # The back office processes the order and ships one lamp of three (a partial
        # shipment, tracked); the storefront reads it; completing ships the other two.
        # Another order is cancelled.
        orders = f"/orders/{order['id']}"
        _moved(back, f"{orders}/process/", "processing", expected_status="pending")
        shipped = back.post(
            f"{orders}/fulfillments/",
            json={
                "lines": [{"product": lamp["id"], "quantity": 1}],
                "carrier": "DHL",
                "tracking_number": "JD0001",
                "tracking_url": "https://tracking.example/JD0001",
            },
        )
        assert shipped.status_code == 201, shipped.text
        assert (shipped.json()["number"], shipped.json()["order_status"]) == (
            f"{order['number']}-1",
            "processing",
        )
        partly = shop.get(f"{orders}/").json()
        assert [(i["quantity_fulfilled"], i["fulfillment_status"]) for i in partly["items"]] == [
            (1, "partial")
        ]
        assert [
            f["tracking_number"] for f in shop.get(f"{orders}/fulfillments/").json()["results"]
        ] == ["JD0001"]
        stock = shop.get(f"/products/{lamp['id']}/stock/").json()
        assert (stock["on_hand"], stock["reserved"]) == (24, 2)
        _moved(back, f"{orders}/complete/", "completed")
        shipped_all = shop.get(f"{orders}/").json()
        assert [f["number"] for f in shipped_all["fulfillments"]] == [
            f"{order['number']}-1",
            f"{order['number']}-2",
        ]
        assert shipped_all["items"][0]["fulfillment_status"] == "fulfilled"
        other = place_order(shop, (lamp["id"], 2))
        assert other.status_code == 201, other.text
        other = other.json()
        cancelled = _moved(
            back, f"/orders/{other['id']}/cancel/", "cancelled", reason="changed their mind"
        )
        assert cancelled["cancellation_reason"] == "changed their mind"

        # One lamp arrived scratched: the customer keeps it and gets 10.00 back (a partial
        # refund, sent twice with one Idempotency-Key: paid once). The order stays completed.
        refund_key = {"Idempotency-Key": uuid.uuid4().hex}
        scratched = {"lines": [{"product": lamp["id"], "quantity": 1}], "amount": "10.00"}
        partial = back.post(f"{orders}/refunds/", json=scratched, headers=refund_key)
        assert partial.status_code == 201, partial.text
        assert back.post(f"{orders}/refunds/", json=scratched, headers=refund_key).json() == (
            partial.json()
        )
        seen_by_shop = shop.get(f"{orders}/").json()
        assert (seen_by_shop["status"], seen_by_shop["refunded_amount"]) == ("completed", "10.00")
        too_much = back.post(
            f"{orders}/refunds/", json={"amount": "64.71"}, headers={"Idempotency-Key": "x1"}
        )
        assert (too_much.status_code, too_much.json()["code"]) == (409, "refund_exceeds_paid")

        # Another lamp goes back: the storefront asks for the return; the staff member
        # receives it in the admin, back on hand at the main warehouse, and refunds it.
        asked = shop.post(
            f"{orders}/returns/",
            json={"lines": [{"product": lamp["id"], "quantity": 1}], "reason": "too bright"},
        )
        assert asked.status_code == 201, asked.text
        rma = asked.json()["number"]
        on_the_page = staff.http.get(f"/admin/orders/order/{order['id']}/change/").text
        assert f"/returns/{rma}/receive/" in on_the_page
        back_on_hand = staff.post_form(
            f"/admin/orders/order/{order['id']}/returns/{rma}/receive/",
            {f"restocked_{lamp['id']}": "1", f"location_{lamp['id']}": "main"},
        )
        assert back_on_hand.status_code == 302, back_on_hand.text[:2000]
        stock = shop.get(f"/products/{lamp['id']}/stock/").json()
        assert (stock["on_hand"], stock["reserved"]) == (23, 0)
        paid_back = staff.post_form(
            f"/admin/orders/order/{order['id']}/returns/{rma}/refund/", {"amount": "24.90"}
        )
        assert paid_back.status_code == 302, paid_back.text[:2000]
        returned = shop.get(f"{orders}/returns/{rma}/").json()
        assert (returned["status"], returned["lines"][0]["restocked"]) == ("refunded", 1)
        assert shop.get(f"{orders}/").json()["refunded_amount"] == "34.90"

        # The customer sends the last lamp back: the staff member refunds the rest with
        # restock (the returned lamp is back already: only the last one is restocked).
        refunded = staff.post_form(f"/admin/orders/order/{order['id']}/refund/", {"restock": "on"})
        assert refunded.status_code == 302, refunded.text[:2000]
        assert (
            f"Order {order['number']} refunded."
            in staff.http.get(refunded.headers["location"]).text
        )
        staff.close()
        seen_by_shop = shop.get(f"{orders}/").json()
        assert (seen_by_shop["status"], seen_by_shop["restocked"]) == ("refunded", True)
        assert seen_by_shop["refunded_amount"] == seen_by_shop["total"] == "74.70"
        paid = [r["amount"] for r in shop.get(f"{orders}/refunds/").json()["results"]]
        assert paid == ["10.00", "24.90", "39.80"]
        stock = shop.get(f"/products/{lamp['id']}/stock/").json()
        assert (stock["on_hand"], stock["reserved"], stock["available"]) == (25, 0, 25)

        # The abandoned order's minute runs out. Beat runs orders.expire_reservations
        # every 60 s (no setting shortens that), so the operator runs the same job now with
        # `manage.py cleanup_inventory`; if beat got there first, the command finds nothing.
        wait_until(
            lambda: datetime.now(UTC) > reserved_until + timedelta(seconds=1),
            90,
            "the reservation did not run out",
            interval=0.5,
        )
        cleanup = manage(env, "cleanup_inventory")
        assert cleanup.returncode == 0, cleanup.stderr
        assert any(f"Cancelled {n} expired" in cleanup.stdout for n in (0, 1)), cleanup.stdout
        expired = shop.get(f"/orders/{abandoned['id']}/").json()
        assert (expired["status"], expired["cancellation_reason"]) == (
            "cancelled",
            "reservation expired",
        )
        stock = shop.get(f"/products/{bulb['id']}/stock/").json()
        assert (stock["on_hand"], stock["reserved"], stock["available"]) == (10, 0, 10)

        # Every event of the day reached the receiver, signed; the storefront's websocket
        # heard the catalog, stock and its own orders, without customer data.
        # (audit.sealed, which beat may publish meanwhile, goes only to endpoints naming it.)
        events = dict(
            Event.objects.filter(pk__gt=first_event)
            .exclude(type="audit.sealed")
            .values_list("event_id", "topic")
        )
        wait_until(
            lambda: {r.headers["webhook-id"] for r in receiver.received} >= set(events),
            60,
            "some events never reached the webhook receiver",
        )
        envelopes = verified_envelopes(secret, receiver.received)
        assert {e["id"] for e in envelopes} == set(events)
        live = {eid for eid, topic in events.items() if topic in ("stock", "orders")}
        live |= {e["id"] for e in envelopes if e["type"] == "product.published"}
        listener.wait_for(
            lambda seen: {e["id"] for e in seen} >= live, 60, "events missing on the websocket"
        )
        for event in listener.events:
            if event["type"].startswith(("order.", "refund.", "return.")):
                assert "customer" not in event["data"], event
                assert "shipping_address" not in event["data"], event

        # The operator's checks pass.
        inventory = manage(env, "check_inventory")
        assert inventory.returncode == 0, inventory.stdout + inventory.stderr
        assert "Inventory OK" in inventory.stdout
        story = set(AuditLog.objects.filter(pk__gt=first_audit).values_list("pk", flat=True))

        def chain_verified_and_sealed() -> bool:
            verified = manage(env, "verify_audit_chain", "--seal")
            assert verified.returncode == 0, verified.stdout + verified.stderr
            assert "Audit chain intact" in verified.stdout
            return AuditSeal.objects.filter(entry_id__in=story).count() == len(story)

        # Entries are sealed once 2 s old (by beat every 30 s, or by --seal); should beat's
        # sealer hold the lock at that moment, the next run seals them.
        settled = AuditLog.objects.filter(pk__in=story, created_at__gt=Now() - timedelta(seconds=3))
        wait_until(lambda: not settled.exists(), 30, "the audit entries did not settle")
        wait_until(chain_verified_and_sealed, 60, "the day's audit entries were not sealed", 2)

        # Every step is in the audit log (read through the API) under the right actor.
        entries = [e for e in all_pages(back, "/audit/?page_size=100") if e["id"] in story]
        assert len(entries) == len(story)
        back_office = ("api_key", back_prefix)
        storefront = ("api_key", shop_prefix)
        person = ("user", str(staff_user.pk))
        cleanup_job = ("system", "cleanup_inventory")
        lamp_id, bulb_id = str(lamp["id"]), str(bulb["id"])
        expected = Counter(
            {
                (*back_office, "category.created", str(lighting["id"])): 1,
                (*back_office, "category.created", str(lamps["id"])): 1,
                (*back_office, "product.created", lamp_id): 1,
                (*back_office, "product.created", bulb_id): 1,
                (*back_office, "product.published", lamp_id): 1,
                (*back_office, "product.published", bulb_id): 1,
                (*back_office, "stock.receipt", bulb_id): 1,
                (*storefront, "order.created", abandoned["id"]): 1,
                (*storefront, "stock.reserve", bulb_id): 1,
                (*person, "stock.receipt", lamp_id): 1,
                (*storefront, "order.created", order["id"]): 1,  # once, despite the retry
                (*storefront, "stock.reserve", lamp_id): 2,
                (*back_office, "order.process", order["id"]): 1,
                (*back_office, "order.complete", order["id"]): 1,
                (*back_office, "stock.sale", lamp_id): 2,  # the shipment, then the rest
                (*storefront, "order.created", other["id"]): 1,
                (*back_office, "order.cancel", other["id"]): 1,
                (*back_office, "stock.release", lamp_id): 1,
                (*back_office, "refund.created", order["id"]): 1,  # once, despite the retry
                (*storefront, "return.requested", order["id"]): 1,
                (*person, "return.received", order["id"]): 1,
                (*person, "refund.created", order["id"]): 1,
                (*person, "return.refunded", order["id"]): 1,
                (*person, "order.refund", order["id"]): 1,
                # The returned lamp, then the last one with the refund of the rest.
                (*person, "stock.return", lamp_id): 2,
                (*cleanup_job, "order.cancel", abandoned["id"]): 1,
                (*cleanup_job, "stock.release", bulb_id): 1,
            }
        )
        business = ("category.", "product.", "stock.", "order.", "refund.", "return.")
        assert (
            Counter(
                (e["actor_type"], e["actor_id"], e["action"], e["object_id"])
                for e in entries
                if e["action"].startswith(business)
            )
            == expected
        )
        by_actor = Counter((e["actor_type"], e["actor_id"], e["action"]) for e in entries)
        assert by_actor[(*back_office, "fulfillment.create")] == 2
        assert by_actor[("system", "generate_api_key", "api_key.created")] == 2
        assert [e["object_id"] for e in entries if e["action"] == "webhook_endpoint.created"] == [
            endpoint_id
        ]
        assert by_actor[(*back_office, "setting.updated")] == 2
        assert by_actor[(*person, "auth.login")] == 1
        labels = {(e["actor_type"], e["actor_id"]): e["actor_label"] for e in entries}
        assert labels[back_office] == f"api_key:{back_prefix} (back-office)"
        assert labels[person] == f"user:{STAFF}"
        assert labels[cleanup_job] == "job:cleanup_inventory"
    finally:
        listener.close()
        back.close()
        shop.close()
