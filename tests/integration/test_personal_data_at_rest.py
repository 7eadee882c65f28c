"""A customer's name, e-mail, phone and address rest nowhere in clear: not in any table
of the database, not in any Redis key (cache, counters, Celery messages), however the
order travels (outbox, webhook deliveries and their attempt log, idempotent replays)."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings

from audit.actors import Actor
from pms_backend.asgi import application
from pms_backend.celery import app as celery_app
from pms_backend.events.models import Event
from pms_backend.events.relay import dispatch_events
from tests.integration.at_rest import database_dump, redis_dump
from tests.integration.websockets import Communicator
from tests.receiver import Receiver
from webhooks import services as webhooks
from webhooks.models import DeliveryAttempt

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
]

CUSTOMER = {"email": "q.verbeck.zx81@example.net", "name": "Quillon Verbeck-Zarathustra"}
ADDRESS = {
    "name": "Odalys Pemberton-Quaye",
    "line1": "42 Marigold Obscura Lane",
    "line2": "Suite Zephyr-Ninefold",
    "city": "Ottervale Springs",
    "postal_code": "ZX4471Q",
    "region": "Upper Quenbyshire",
    "country": "GB",
    "phone": "+1 555 0142 9876",
}
SECRETS = [*CUSTOMER.values(), *(v for k, v in ADDRESS.items() if k != "country")]


def found_in(dump: str) -> list[str]:
    """Return the customer strings present in ``dump`` (case-insensitively)."""
    lowered = dump.casefold()
    return [s for s in SECRETS if s.casefold() in lowered]


@pytest.fixture
def echoing_receiver():
    """A receiver that answers with the body it got (so the attempt log would keep it)."""
    from django.test import override_settings

    server = Receiver(echo=True).start()
    with override_settings(PMS_WEBHOOK_ALLOW_PRIVATE_NETWORKS=True):
        yield server
    server.stop()


@pytest.fixture
def queued_celery_messages():
    """Run with a real broker hand-off (messages wait in Redis), then drop what is left."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True
    client = redis.Redis.from_url(settings.REDIS_URL)
    for queue in ("events", "webhooks", "celery", "unacked", "unacked_index"):
        client.delete(queue)


def test_no_customer_string_rests_in_clear_in_postgresql_or_redis(
    echoing_receiver, queued_celery_messages, storefront, admin_api, make_product, receive
):
    endpoint, _secret = webhooks.endpoint_create(
        actor=Actor.system("tests"), url=echoing_receiver.url, event_types=[]
    )
    product = make_product("published")
    receive(product, 10)
    body = {
        "items": [{"product": product.pk, "quantity": 2}],
        "customer": CUSTOMER,
        "shipping_address": ADDRESS,
    }
    key = uuid.uuid4().hex

    placed = storefront.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    replayed = storefront.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    order = placed.json()
    moved = admin_api.post(f"/api/v1/orders/{order['id']}/process/", {}, format="json")

    assert placed.status_code == 201 and moved.status_code == 200
    assert replayed.status_code == 201 and replayed["Idempotent-Replayed"] == "true"
    assert replayed.json() == placed.json()
    assert order["customer"] == CUSTOMER and order["shipping_address"] == ADDRESS
    # The dispatch tasks wait in Redis (no worker runs here): they carry ids only.
    assert found_in(redis_dump()) == []

    celery_app.conf.task_always_eager = True
    dispatch_events(
        list(Event.objects.filter(dispatched_at__isnull=True).values_list("pk", flat=True))
    )

    received = echoing_receiver.wait_for(Event.objects.count())
    envelopes = {e["type"]: e for e in (json.loads(r.body) for r in received)}
    # Receivers get the payload as they always did: the order with its customer.
    assert envelopes["order.created"]["data"] == order
    status_changed = envelopes["order.status_changed"]["data"]
    assert status_changed["customer"] == CUSTOMER
    assert status_changed["shipping_address"] == ADDRESS
    assert status_changed["from"] == "pending" and status_changed["to"] == "processing"
    attempts = DeliveryAttempt.objects.filter(delivery__endpoint=endpoint)
    assert attempts.filter(status_code=200).count() == len(received) == Event.objects.count()

    leaks_in_database = found_in(database_dump())
    leaks_in_redis = found_in(redis_dump())

    assert leaks_in_database == [] and leaks_in_redis == []
    # The receiver's echo is kept in the attempt log, customer strings blanked out.
    assert "[redacted]" in attempts.filter(delivery__event__topic="orders").first().response_excerpt
    # And the replay was the first answer byte for byte (keys in their order, too).
    assert replayed.content == placed.content


@pytest.mark.asyncio
async def test_a_websocket_subscriber_gets_the_order_with_its_customer(make_key, client_for):
    admin_key = await sync_to_async(make_key)("admin")
    comm = Communicator(
        application,
        "/ws/v1/events/",
        headers=[(b"authorization", f"Api-Key {admin_key}".encode())],
    )
    assert (await comm.connect())[0]
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "topics": ["orders"]}))
    assert json.loads(await comm.receive_from())["type"] == "subscribed"

    def place_order() -> dict:
        from catalog.services import category_create, product_create, product_transition
        from inventory.services import stock_record_movement

        actor = Actor.system("tests")
        product = product_create(
            actor=actor,
            sku="WS-1",
            name="Lamp",
            price="9.50",
            category=category_create(actor=actor, name="Lights"),
        )
        product_transition(actor=actor, product_id=product.pk, transition="publish")
        stock_record_movement(
            actor=actor, product_id=product.pk, kind="receipt", quantity=3, reason="in"
        )
        response = client_for("storefront").post(
            "/api/v1/orders/",
            {
                "items": [{"product": product.pk, "quantity": 1}],
                "customer": CUSTOMER,
                "shipping_address": ADDRESS,
            },
            format="json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )
        assert response.status_code == 201
        return response.json()  # its events went out on commit (Celery runs inline here)

    order = await sync_to_async(place_order)()

    frame = json.loads(await comm.receive_from())
    assert frame["type"] == "order.created" and frame["data"] == order
    assert frame["data"]["customer"] == CUSTOMER
    await comm.disconnect()


def test_rows_the_previous_release_wrote_in_clear_are_read_then_sealed():
    """During a rolling deploy the old release's processes still write clear rows: they
    are served as they are, and the periodic jobs encrypt them."""
    from datetime import timedelta

    from django.utils import timezone

    from pms_backend.events.relay import prune
    from pms_backend.idempotency.models import IdempotencyKey
    from pms_backend.idempotency.services import idempotency_prune, run_idempotently

    order = {"id": str(uuid.uuid4()), "customer": CUSTOMER, "shipping_address": ADDRESS}
    event = Event.objects.create(type="order.created", topic="orders", data=order)
    IdempotencyKey.objects.create(
        owner="key:old",
        key="k-1",
        scope="POST /api/v1/orders/",
        request_hash="h",
        response_status=201,
        legacy_response_body=order,
        expires_at=timezone.now() + timedelta(hours=1),
    )

    def replay():
        return run_idempotently(
            owner="key:old",
            key="k-1",
            scope="POST /api/v1/orders/",
            request_hash="h",
            action=lambda: pytest.fail("a replay must not run the action again"),
            error_body=lambda exc: None,
        )

    assert event.envelope()["data"] == order and replay().body == order

    prune()
    idempotency_prune()

    assert Event.objects.get(pk=event.pk).envelope()["data"] == order
    assert replay().body == order and replay().replayed
    assert found_in(database_dump()) == []
