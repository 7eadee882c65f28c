"""The events websocket in process (Channels' communicator against the real consumer)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk

from pms_backend.asgi import application
from pms_backend.events.broadcast import broadcast
from pms_backend.events.models import Event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def connect(headers=None) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/v1/events/", headers=headers or [])


async def next_json(comm, timeout=3) -> dict:
    return json.loads(await comm.receive_from(timeout=timeout))


async def push_events(**filters) -> None:
    events = await sync_to_async(lambda: list(Event.objects.filter(**filters).order_by("pk")))()
    await sync_to_async(broadcast)(events)


@pytest.fixture
def keys(make_key):
    return {"storefront": make_key("storefront"), "admin": make_key("admin")}


async def test_header_key_subscribe_and_receive(keys, make_product):
    comm = connect([(b"authorization", f"Api-Key {keys['storefront']}".encode())])
    connected, _ = await comm.connect()
    assert connected
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "topics": ["products"]}))
    assert (await next_json(comm))["type"] == "subscribed"

    product = await sync_to_async(make_product)("published")
    await push_events(subject=f"product:{product.pk}")

    event = await next_json(comm)
    assert event["type"] in ("product.published", "product.created")
    # The draft's creation is not for storefront eyes; only the publication arrives.
    assert event["type"] == "product.published" and event["data"]["id"] == product.pk
    await comm.disconnect()


async def test_auth_message_within_five_seconds_else_closed(keys):
    late = connect()
    connected, _ = await late.connect()
    assert connected
    closed = await late.receive_output(timeout=7)
    assert closed == {"type": "websocket.close", "code": 4401}

    prompt = connect()
    await prompt.connect()
    await prompt.send_to(text_data=json.dumps({"type": "auth", "key": keys["storefront"]}))
    reply = await next_json(prompt)
    assert reply["type"] == "authenticated" and "orders" in reply["topics"]
    await prompt.disconnect()


async def test_bad_messages_get_clear_errors_and_the_socket_survives(keys):
    comm = connect([(b"authorization", f"Api-Key {keys['storefront']}".encode())])
    await comm.connect()
    await comm.send_to(text_data="not json")
    assert (await next_json(comm))["code"] == "invalid_json"
    await comm.send_to(text_data=json.dumps({"type": "launch"}))
    assert (await next_json(comm))["code"] == "unknown_type"
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "topics": ["audit"]}))
    assert (await next_json(comm))["code"] == "forbidden_topic"
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    assert (await next_json(comm))["type"] == "pong"
    await comm.disconnect()


async def test_oversized_and_flooding_clients_are_closed(keys):
    big = connect([(b"authorization", f"Api-Key {keys['storefront']}".encode())])
    await big.connect()
    await big.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * 10_000}))
    assert (await big.receive_output(timeout=3))["code"] == 1009

    flood = connect([(b"authorization", f"Api-Key {keys['storefront']}".encode())])
    await flood.connect()
    for _ in range(40):
        await flood.send_to(text_data=json.dumps({"type": "ping"}))
    outputs = []
    while True:
        try:
            outputs.append(await flood.receive_output(timeout=1))
        except TimeoutError:
            break
    assert {"type": "websocket.close", "code": 4429} in outputs


async def test_storefront_keys_get_their_own_orders_without_customer_data(
    keys, make_key, make_product, receive
):
    other_key = await sync_to_async(make_key)("storefront", name="other shop")
    product = await sync_to_async(make_product)("published")
    await sync_to_async(receive)(product, 10)
    mine = connect([(b"authorization", f"Api-Key {keys['storefront']}".encode())])
    theirs = connect([(b"authorization", f"Api-Key {other_key}".encode())])
    staff = connect([(b"authorization", f"Api-Key {keys['admin']}".encode())])
    for comm in (mine, theirs, staff):
        await comm.connect()
        await comm.send_to(text_data=json.dumps({"type": "subscribe", "topics": ["orders"]}))
        assert (await next_json(comm))["type"] == "subscribed"

    order = await sync_to_async(_place_with_key)(keys["storefront"], product)
    await push_events(topic="orders")

    seen = await next_json(mine)
    assert seen["type"] == "order.created" and seen["data"]["number"] == order["number"]
    assert "customer" not in seen["data"] and "shipping_address" not in seen["data"]
    full = await next_json(staff)
    assert full["data"]["customer"]["email"] == "ada@example.com"
    assert await theirs.receive_nothing(timeout=0.5)
    for comm in (mine, theirs, staff):
        await comm.disconnect()


def _place_with_key(raw_key, product):
    from rest_framework.test import APIClient

    from tests.conftest import order_body

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    response = client.post(
        "/api/v1/orders/", order_body((product, 1)), format="json", HTTP_IDEMPOTENCY_KEY="ws-1"
    )
    assert response.status_code == 201, response.content
    return response.json()


async def test_sealed_frames_open_only_with_the_clients_private_key(keys, make_product):
    private = jwcrypto_jwk.JWK.generate(kty="OKP", crv="X25519")
    comm = connect()
    await comm.connect()
    await comm.send_to(
        text_data=json.dumps(
            {"type": "auth", "key": keys["admin"], "jwk": json.loads(private.export_public())}
        )
    )
    assert (await next_json(comm))["sealed"] is True
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "topics": ["products"]}))
    assert (await next_json(comm))["type"] == "subscribed"

    await sync_to_async(make_product)(name="Sealed thing")
    await push_events(topic="products")

    frame = await comm.receive_from(timeout=3)
    token = jwcrypto_jwe.JWE()
    token.deserialize(frame, key=private)
    header = token.jose_header
    assert header["alg"] == "ECDH-ES" and header["enc"] == "A256GCM"
    envelope = json.loads(token.payload)
    assert envelope["type"] == "product.created" and envelope["data"]["name"] == "Sealed thing"
    await comm.disconnect()


async def test_a_browser_session_from_a_foreign_origin_is_refused(staff_user, client):
    await sync_to_async(client.force_login)(staff_user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    foreign = connect([(b"cookie", cookie), (b"origin", b"https://evil.example")])
    connected, code = await foreign.connect()
    assert not connected and code == 4403
    ours = connect([(b"cookie", cookie), (b"origin", b"http://localhost")])
    connected, _ = await ours.connect()
    assert connected
    await ours.send_to(text_data=json.dumps({"type": "subscribe", "topics": ["orders"]}))
    assert (await next_json(ours))["type"] == "subscribed"
    await ours.disconnect()
