"""Fault drills for event delivery, with real processes: web server(s), Celery worker(s)
with beat, a private Redis, PostgreSQL, and local HTTP receivers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from standardwebhooks import Webhook

from pms_backend.events.client import events as event_stream
from pms_backend.events.models import Event
from tests.conftest import order_body
from tests.e2e.processes import Redis, base_env, start_server, start_worker, wait_until
from tests.receiver import Receiver
from webhooks.models import DeliveryAttempt, WebhookDelivery

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

FAST_RETRIES = ",".join(["1"] * 9)


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


@pytest.fixture
def redis(workdir):
    server = Redis(workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def make(answer=None) -> Receiver:
        receiver = Receiver(answer=answer) if answer else Receiver()
        started.append(receiver.start())
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


@pytest.fixture
def stack(workdir, redis):
    """One web server and one worker (with beat) sharing PostgreSQL and the drill's Redis."""
    env = base_env(
        redis.url, PMS_WEBHOOK_RETRY_SCHEDULE=FAST_RETRIES, PMS_WEBHOOK_TIMEOUT_SECONDS="2"
    )
    web = start_server(workdir, env)
    worker = start_worker(workdir, env)
    procs = {"web": web, "worker": worker, "env": env}
    yield procs
    for proc in (procs["web"], procs["worker"]):
        proc.stop()


def _client(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Api-Key {key}"}, timeout=15)


def _subject(envelope: dict) -> str:
    kind, data = envelope["type"].split(".")[0], envelope["data"]
    if kind == "stock":
        return f"product:{data['product']}"
    return f"{kind}:{data['id']}"


def _verified(secret: str, received) -> list[dict]:
    hook = Webhook(secret)
    return [hook.verify(r.body, r.headers) for r in received]


def _endpoint(admin: httpx.Client, url: str, **fields) -> tuple[str, str]:
    response = admin.post("/api/v1/webhooks/endpoints/", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["secret"]


def _catalog_flow(admin: httpx.Client, shop: httpx.Client) -> None:
    category = admin.post("/api/v1/categories/", json={"name": f"Drill {uuid.uuid4().hex[:6]}"})
    assert category.status_code == 201, category.text
    product = admin.post(
        "/api/v1/products/",
        json={
            "sku": f"DRILL-{uuid.uuid4().hex[:8]}",
            "name": "Drill lamp",
            "price": "12.50",
            "category": category.json()["id"],
        },
    ).json()
    assert admin.post(f"/api/v1/products/{product['id']}/publish/").status_code == 200
    moved = admin.post(
        "/api/v1/inventory/movements/",
        json={"product": product["id"], "quantity": 20, "kind": "receipt", "reason": "drill"},
    )
    assert moved.status_code == 201, moved.text
    order = shop.post(
        "/api/v1/orders/",
        json={**_body(product["id"], 2)},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    assert admin.post(f"/api/v1/orders/{order_id}/process/").status_code == 200
    assert admin.post(f"/api/v1/orders/{order_id}/complete/").status_code == 200


def _body(product_id: int, quantity: int) -> dict:
    class _P:
        pk = product_id

    return order_body((_P, quantity))


def test_every_event_of_a_flow_arrives_verified_in_commit_order_per_object(
    stack, receivers, make_key
):
    receiver = receivers()
    admin = _client(stack["web"].base_url, make_key("admin"))
    shop = _client(stack["web"].base_url, make_key("storefront"))
    _, secret = _endpoint(admin, receiver.url)
    first_event = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    _catalog_flow(admin, shop)

    # (audit.sealed, which beat may publish meanwhile, goes only to endpoints naming it.)
    flow = Event.objects.exclude(type="audit.sealed")
    expected = flow.filter(pk__gt=first_event).count()
    assert expected >= 9
    received = receiver.wait_for(expected, timeout=60)
    envelopes = _verified(secret, received)
    order_of = dict(flow.values_list("event_id", "pk"))
    assert {e["id"] for e in envelopes} == {eid for eid, pk in order_of.items() if pk > first_event}
    by_subject: dict[str, list[int]] = {}
    for envelope in envelopes:
        by_subject.setdefault(_subject(envelope), []).append(order_of[envelope["id"]])
    for subject, pks in by_subject.items():
        assert pks == sorted(pks), f"{subject} arrived out of commit order"


def _sessions_opened() -> int:
    """Connections ever opened to this database (PostgreSQL's own count)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_the_worker_keeps_its_database_connections_between_tasks(stack, receivers, make_key):
    receiver = receivers()
    admin = _client(stack["web"].base_url, make_key("admin"))
    _endpoint(admin, receiver.url, event_types=["category.updated"])
    assert admin.post("/api/v1/categories/", json={"name": "Warm"}).status_code == 201
    receiver.wait_for(1, timeout=30)
    before = _sessions_opened()

    for i in range(20):
        assert admin.post("/api/v1/categories/", json={"name": f"Reuse {i}"}).status_code == 201
    receiver.wait_for(21, timeout=60)

    # 20 events are 40 tasks (dispatch, delivery) plus the periodic ones; when Celery
    # closed the connections around every task, that opened 80 or more.
    assert _sessions_opened() - before <= 10


def test_a_worker_killed_mid_delivery_loses_nothing(stack, receivers, make_key, workdir):
    receiver = receivers(lambda n: (200, 0.2, {}))  # slow enough to be caught mid-way
    admin = _client(stack["web"].base_url, make_key("admin"))
    _, secret = _endpoint(admin, receiver.url, event_types=["category.updated"])
    for i in range(30):
        assert admin.post("/api/v1/categories/", json={"name": f"Kill {i}"}).status_code == 201
    wait_until(lambda: len(receiver.received) >= 3, 30, "no delivery started")

    stack["worker"].kill()  # SIGKILL to the whole worker process group
    stack["worker"] = start_worker(workdir, stack["env"], "worker2")

    expected = set(Event.objects.filter(type="category.updated").values_list("event_id", flat=True))
    wait_until(
        lambda: {r.headers["webhook-id"] for r in receiver.received} >= expected,
        90,
        "some events were never delivered after the worker was killed",
    )
    envelopes = _verified(secret, receiver.received)
    assert {e["id"] for e in envelopes} == expected  # deduplicated by webhook-id: exactly once


def test_a_failing_receiver_is_retried_while_a_healthy_one_is_unaffected(
    stack, receivers, make_key
):
    flaky = receivers(
        lambda n: (500, 0, {}) if n < 3 else ((200, 3, {}) if n < 5 else (200, 0, {}))
    )
    healthy = receivers()
    admin = _client(stack["web"].base_url, make_key("admin"))
    flaky_id, _ = _endpoint(admin, flaky.url, event_types=["category.updated"])
    _, healthy_secret = _endpoint(admin, healthy.url, event_types=["category.updated"])

    started = time.monotonic()
    for i in range(5):
        assert admin.post("/api/v1/categories/", json={"name": f"Flaky {i}"}).status_code == 201
    healthy.wait_for(5, timeout=30)
    healthy_done = time.monotonic() - started

    assert len(_verified(healthy_secret, healthy.received)) == 5
    assert healthy_done < 15, f"the healthy endpoint waited {healthy_done:.1f} s"
    wait_until(
        lambda: (
            WebhookDelivery.objects.filter(endpoint_id=flaky_id, status="succeeded").count() == 5
        ),
        120,
        "the flaky endpoint's deliveries did not all succeed",
    )
    attempts = DeliveryAttempt.objects.filter(delivery__endpoint_id=flaky_id)
    assert attempts.filter(status_code=500).count() >= 3
    assert attempts.exclude(error="").exists()  # the timeouts are recorded too


def test_with_redis_down_orders_succeed_and_events_wait_in_the_outbox(
    stack, receivers, make_key, make_product, receive, redis
):
    receiver = receivers()
    admin = _client(stack["web"].base_url, make_key("admin"))
    shop = _client(stack["web"].base_url, make_key("storefront"))
    _, secret = _endpoint(admin, receiver.url, event_types=["order.created"])
    product = make_product("published")
    receive(product, 50)

    redis.stop()
    numbers = []
    for _ in range(5):
        response = shop.post(
            "/api/v1/orders/",
            json=order_body((product, 1)),
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 201, response.text
        numbers.append(response.json()["number"])
    pending = Event.objects.filter(type="order.created", dispatched_at__isnull=True).count()
    assert pending == 5
    redis.start()  # same port: the worker reconnects

    received = receiver.wait_for(5, timeout=90)
    assert sorted(e["data"]["number"] for e in _verified(secret, received)) == sorted(numbers)


def test_a_websocket_client_on_one_server_sees_events_caused_through_another(
    workdir, redis, make_key
):
    env = base_env(redis.url)
    web_a, web_b = start_server(workdir, env, "web-a"), start_server(workdir, env, "web-b")
    worker = start_worker(workdir, env)
    key = make_key("admin")
    try:

        async def listen():
            ready = asyncio.Event()
            seen = []

            async def consume():
                url = f"ws://127.0.0.1:{web_a.port}/ws/v1/events/"
                async for event in event_stream(url, key, ["products"], ready=ready):
                    seen.append(event)
                    if event["type"] == "product.created":
                        return

            task = asyncio.create_task(consume())
            await asyncio.wait_for(ready.wait(), 10)
            created = await asyncio.to_thread(
                lambda: _client(web_b.base_url, key).post(
                    "/api/v1/products/", json={"sku": "WS-1", "name": "Across", "price": "3.00"}
                )
            )
            assert created.status_code == 201
            await asyncio.wait_for(task, 30)
            return seen

        seen = asyncio.run(listen())
        assert seen[-1]["data"]["sku"] == "WS-1"
    finally:
        for proc in (web_a, web_b, worker):
            proc.stop()


def test_sealed_frames_through_the_real_server(stack, make_key):
    import websockets
    from jwcrypto import jwe as jwcrypto_jwe
    from jwcrypto import jwk as jwcrypto_jwk

    key = make_key("admin")
    private = jwcrypto_jwk.JWK.generate(kty="OKP", crv="X25519")

    async def run():
        url = f"ws://127.0.0.1:{stack['web'].port}/ws/v1/events/"
        async with websockets.connect(url) as socket:
            await socket.send(
                json.dumps({"type": "auth", "key": key, "jwk": json.loads(private.export_public())})
            )
            assert json.loads(await socket.recv())["sealed"] is True
            await socket.send(json.dumps({"type": "subscribe", "topics": ["products"]}))
            assert json.loads(await socket.recv())["type"] == "subscribed"
            response = await asyncio.to_thread(
                lambda: _client(stack["web"].base_url, key).post(
                    "/api/v1/products/", json={"sku": "SEAL-1", "name": "Sealed", "price": "1.00"}
                )
            )
            assert response.status_code == 201
            return await asyncio.wait_for(socket.recv(), 30)

    frame = asyncio.run(run())
    token = jwcrypto_jwe.JWE()
    token.deserialize(frame, key=private)
    assert json.loads(token.payload)["data"]["sku"] == "SEAL-1"
