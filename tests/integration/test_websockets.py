"""The events websocket in process (Channels' communicator against the real consumer)."""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk

from pms_backend.asgi import application
from pms_backend.events.broadcast import broadcast
from pms_backend.events.models import Event
from tests.integration.websockets import Communicator

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("steady_rate_windows"),
]


def connect(headers=None) -> Communicator:
    return Communicator(application, "/ws/v1/events/", headers=headers or [])


async def next_json(comm) -> dict:
    return json.loads(await comm.receive_from())


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
    opened = time.monotonic()
    connected, _ = await late.connect()
    assert connected
    # Closed by the five-second timer: not before it (on a busy machine the close may come
    # some seconds after it, which a bound of 7 s did not allow).
    auth_timeout = settings.PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS
    closed = await late.receive_output(timeout=auth_timeout + 25)
    assert closed == {"type": "websocket.close", "code": 4401}
    assert time.monotonic() - opened >= auth_timeout == 5

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
    assert (await big.receive_output())["code"] == 1009

    flood = connect([(b"authorization", f"Api-Key {keys['storefront']}".encode())])
    await flood.connect()
    for _ in range(40):
        await flood.send_to(text_data=json.dumps({"type": "ping"}))
    # Pongs until the close (however long each takes to come), then nothing more.
    outputs = [await flood.receive_output()]
    while outputs[-1]["type"] != "websocket.close":
        outputs.append(await flood.receive_output())
    assert outputs[-1] == {"type": "websocket.close", "code": 4429}


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

    frame = await comm.receive_from()
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


async def test_a_staff_socket_ends_with_its_session(staff_user, client, settings):
    """Signing out (or losing staff status) ends the browser's live notices within the
    check interval: a socket outliving its session kept showing every new order."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.PMS_WEBSOCKET_KEY_CHECK_SECONDS = 0.2
    signed_out = await _session_socket(client, staff_user)
    colleague = await sync_to_async(get_user_model().objects.create_superuser)(
        username="colleague", password="a long passphrase 42"
    )
    still_in = await _session_socket(Client(), colleague)
    demoted_user = await sync_to_async(get_user_model().objects.create_user)(
        username="demoted", password="a long passphrase 42", is_staff=True
    )
    demoted = await _session_socket(Client(), demoted_user)
    rekeyed_user = await sync_to_async(get_user_model().objects.create_user)(
        username="rekeyed", password="a long passphrase 42", is_staff=True
    )
    rekeyed = await _session_socket(Client(), rekeyed_user)

    await sync_to_async(client.logout)()
    demoted_user.is_staff = False
    await sync_to_async(demoted_user.save)(update_fields=["is_staff"])
    rekeyed_user.set_password("another long passphrase 43")  # signs out every session
    await sync_to_async(rekeyed_user.save)(update_fields=["password"])

    for comm in (signed_out, demoted, rekeyed):
        closed = await comm.receive_output()
        assert closed == {"type": "websocket.close", "code": 4401, "reason": "session ended"}
    await still_in.send_to(text_data=json.dumps({"type": "subscribe", "topics": ["orders"]}))
    assert await next_json(still_in) == {"type": "subscribed", "topics": ["orders"]}
    await still_in.disconnect()


# --- staff of every role, malformed messages ---------------------------------------------

ROLE_TOPICS = {
    "Catalog managers": ["products", "stock", "locations"],
    "Warehouse staff": ["products", "stock", "locations", "transfers", "orders", "fulfillments"],
    "Order managers": ["products", "stock", "locations", "orders", "fulfillments"],
    # The admin refuses auditors products and stock (they read the audit log): so does this.
    "Auditors": ["audit"],
}


def _member_of(role: str):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    from pms_backend.staff.roles import ROLES

    user = get_user_model().objects.create_user(
        username=role.lower().replace(" ", "-"), password="a long passphrase 42", is_staff=True
    )
    # The roles come from a migration; a flushed transactional database lost them.
    group, _ = Group.objects.get_or_create(name=role)
    group.permissions.set(
        Permission.objects.get(content_type__app_label=label, codename=codename)
        for label, codename in (code.split(".") for code in ROLES[role])
    )
    user.groups.add(group)
    return user


async def _session_socket(client, user) -> Communicator:
    await sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = connect([(b"cookie", cookie), (b"origin", b"http://localhost")])
    connected, _ = await comm.connect()
    assert connected
    return comm


@pytest.mark.parametrize("role", list(ROLE_TOPICS))
async def test_staff_of_every_role_get_the_admins_live_notices(
    role, client, make_product, receive, make_key
):
    user = await sync_to_async(_member_of)(role)
    comm = await _session_socket(client, user)
    # What the admin's page does: ask which topics it may follow, then follow orders and
    # stock where allowed.
    await comm.send_to(text_data=json.dumps({"type": "auth"}))
    reply = await next_json(comm)
    assert reply == {"type": "authenticated", "sealed": False, "topics": ROLE_TOPICS[role]}
    wanted = [t for t in ("orders", "stock") if t in reply["topics"]]
    if wanted:
        await comm.send_to(text_data=json.dumps({"type": "subscribe", "topics": wanted}))
        assert await next_json(comm) == {"type": "subscribed", "topics": sorted(wanted)}
    if "orders" not in wanted:
        await comm.send_to(text_data=json.dumps({"type": "subscribe", "topics": ["orders"]}))
        refused = await next_json(comm)
        assert refused["type"] == "error" and refused["code"] == "forbidden_topic"

    product = await sync_to_async(make_product)("published")
    await sync_to_async(receive)(product, 10)
    # Tests dispatch at commit (Celery inline): the events go out as in production.
    await sync_to_async(_adjust)(product, -8)  # down to 2, under the threshold of 5
    if "stock" in wanted:
        seen = [(await next_json(comm))["type"] for _ in range(3)]
        assert seen == ["stock.updated", "stock.updated", "stock.low"]
    if "orders" in wanted:
        shop_key = await sync_to_async(make_key)("storefront", name="shop")
        order = await sync_to_async(_place_with_key)(shop_key, product)
        # The reservation's stock.updated travels with it.
        frames = [await next_json(comm), await next_json(comm)]
        created = next(f for f in frames if f["type"] == "order.created")
        assert created["data"]["number"] == order["number"]
        assert created["data"]["customer"]["email"] == "ada@example.com"
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


def _adjust(product, quantity: int) -> None:
    from audit.actors import Actor
    from inventory.services import stock_record_movement

    stock_record_movement(
        actor=Actor.system("tests"),
        product_id=product.pk,
        kind="adjustment",
        quantity=quantity,
        reason="count",
    )


MALFORMED = [
    ({"type": "subscribe", "topics": [["products"]]}, "invalid_topics"),
    ({"type": "subscribe", "topics": [["products", ["stock"]]]}, "invalid_topics"),
    ({"type": "subscribe", "topics": [{"topic": "products"}]}, "invalid_topics"),
    ({"type": "subscribe", "topics": "products"}, "invalid_topics"),
    ({"type": "subscribe", "topics": 7}, "invalid_topics"),
    ({"type": "subscribe", "topics": None}, "invalid_topics"),
    ({"type": "subscribe", "topics": []}, "invalid_topics"),
    ({"type": "subscribe", "topics": ["products"] * 300}, "invalid_topics"),
    ({"type": "subscribe", "topics": [1, 2]}, "invalid_topics"),
    ({"type": "subscribe", "topics": ["products"], "since": 12}, "invalid_since"),
    ({"type": "subscribe", "topics": ["products"], "since": ["evt_x"]}, "invalid_since"),
    ({"type": "unsubscribe", "topics": [["products"]]}, "invalid_topics"),
    ({"type": "unsubscribe", "topics": [[["orders"]], {"a": 1}]}, "invalid_topics"),
    ({"type": "unsubscribe", "topics": {"products": True}}, "invalid_topics"),
    ({"type": "unsubscribe", "topics": ["stock"] * 400}, "invalid_topics"),
    ({"type": "auth", "jwk": [["x"]]}, "invalid_jwk"),
    ({"type": "auth", "jwk": "x"}, "invalid_jwk"),
    ({"type": "auth", "jwk": {"kty": ["OKP"]}}, "invalid_jwk"),
    ({"type": ["subscribe"]}, "invalid_message"),
    ([{"type": "subscribe"}], "invalid_message"),
]


async def test_malformed_messages_each_get_a_clear_error_and_the_socket_lives_on(client):
    # A staff session that is not a superuser: its permissions come from the database.
    user = await sync_to_async(_member_of)("Order managers")
    await sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    # Ten messages a socket, then a ping: well under 30 messages in 10 s.
    for start in range(0, len(MALFORMED), 10):
        comm = connect([(b"cookie", cookie), (b"origin", b"http://localhost")])
        assert (await comm.connect())[0]
        for message, code in MALFORMED[start : start + 10]:
            text = json.dumps(message)
            assert len(text) <= 4096  # over it, the socket is closed (another test)
            await comm.send_to(text_data=text)
            reply = await next_json(comm)
            assert reply["type"] == "error" and reply["code"] == code, (message, reply)
            assert reply["detail"]
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
        assert await next_json(comm) == {"type": "pong"}
        await comm.send_to(text_data=json.dumps({"type": "subscribe", "topics": ["orders"]}))
        assert await next_json(comm) == {"type": "subscribed", "topics": ["orders"]}
        await comm.send_to(text_data=json.dumps({"type": "unsubscribe", "topics": ["orders"]}))
        assert await next_json(comm) == {"type": "unsubscribed", "topics": ["orders"]}
        await comm.disconnect()


# --- key guessing over websockets spends the same budget as over HTTP ---------------------

WRONG_KEY = "pms_zzzzzzzz_" + "x" * 43


def _from(ip: str, headers=None) -> Communicator:
    comm = connect(headers)
    comm.scope["client"] = (ip, 50000)
    return comm


async def _guess_by_message(ip: str) -> dict:
    comm = _from(ip)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_to(text_data=json.dumps({"type": "auth", "key": WRONG_KEY}))
    return await comm.receive_output()


async def test_websocket_key_guesses_spend_the_addresss_failed_authentication_budget(
    settings, caplog
):
    from django.test import Client

    from audit.models import AuditLog

    settings.PMS_RATE_LIMITS = {**settings.PMS_RATE_LIMITS, "auth_failures": "5/10m"}
    guesser, bystander = "203.0.113.77", "198.51.100.3"
    caplog.set_level("WARNING", logger="pms_backend.websocket.socket_guard")

    for _ in range(5):
        assert await _guess_by_message(guesser) == {"type": "websocket.close", "code": 4401}
    # The budget is spent: further guesses are refused, by message or by header...
    assert await _guess_by_message(guesser) == {"type": "websocket.close", "code": 4429}
    header = _from(guesser, [(b"authorization", f"Api-Key {WRONG_KEY}".encode())])
    assert await header.connect() == (False, 4429)
    # ...and over HTTP, which counts in the same window.
    http = Client(REMOTE_ADDR=guesser)
    response = await sync_to_async(http.get)(
        "/api/v1/products/", HTTP_AUTHORIZATION=f"Api-Key {WRONG_KEY}"
    )
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/problem+json"
    # Another address still gets the plain answer.
    assert await _guess_by_message(bystander) == {"type": "websocket.close", "code": 4401}

    # Audited as HTTP's failures are: the first of the window and the one that spent it.
    entries = await database_sync_to_async(
        lambda: list(
            AuditLog.objects.filter(ip=guesser).order_by("pk").values_list("action", "object_id")
        )
    )()
    assert entries == [("auth.failed", "zzzzzzzz"), ("auth.locked_out", "zzzzzzzz")]
    logged = [r for r in caplog.records if getattr(r, "client_ip", None) == guesser]
    assert len(logged) == 7  # five failures, two refusals by socket
    assert all(r.levelname == "WARNING" for r in logged)
