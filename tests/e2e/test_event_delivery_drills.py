"""Event delivery through real processes: web server(s), Celery worker(s) with beat, a
private Redis, PostgreSQL, and local HTTP receivers. The drills that kill or break a part
(a worker, a receiver, Redis, PostgreSQL, the server) are in test_fault_drills.py."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from standardwebhooks import Webhook

from pms_backend.events.client import events as event_stream
from pms_backend.events.models import Event
from tests.conftest import order_body
from tests.e2e.processes import Redis, base_env, start_server, start_worker
from tests.receiver import Receiver

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
    # A shipment, refund or return is an event of its order (the order's id, or its summary).
    if kind == "fulfillment":
        return f"order:{data['order']}"
    if kind in ("refund", "return"):
        return f"order:{data['order']['id']}"
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
            await asyncio.wait_for(ready.wait(), 30)
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
