"""Webhook delivery in process: real HTTP to a local receiver, real signatures, real JWE."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from standardwebhooks import Webhook

from audit.actors import Actor
from pms_backend.events.models import Event
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.signing import secret_bytes

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = Actor.system("tests")


def verify(secret: str, received) -> str:
    """Verify like a receiver would, with the standardwebhooks package; return the body."""
    hook = Webhook(secret)
    if received.headers["content-type"] == "application/json":
        hook.verify(received.body, received.headers)
    else:
        # The package's verify() parses the body as JSON; a JWE body is checked with its
        # signer against the header instead.
        timestamp = datetime.fromtimestamp(int(received.headers["webhook-timestamp"]), UTC)
        expected = hook.sign(received.headers["webhook-id"], timestamp, received.body)
        assert expected in received.headers["webhook-signature"].split(" ")
    return received.body


def test_a_published_product_reaches_the_receiver_signed(receiver, make_product):
    endpoint, secret = services.endpoint_create(
        actor=ACTOR, url=receiver.url, event_types=["product.published"]
    )

    product = make_product("published")

    (received,) = receiver.wait_for(1)
    envelope = json.loads(verify(secret, received))
    assert envelope["type"] == "product.published"
    assert envelope["data"]["id"] == product.pk and envelope["data"]["status"] == "published"
    assert received.headers["webhook-id"] == envelope["id"]
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "succeeded" and delivery.attempts.get().status_code == 200


def test_an_encrypted_endpoint_gets_a_jwe_that_an_independent_library_opens(receiver, make_product):
    _, secret = services.endpoint_create(
        actor=ACTOR, url=receiver.url, event_types=["product.created"], encrypt=True
    )

    make_product(name="Secret sauce")

    (received,) = receiver.wait_for(1)
    body = verify(secret, received)  # the signature covers the JWE string
    assert received.headers["content-type"] == "application/jose"
    token = jwcrypto_jwe.JWE()
    token.deserialize(body, key=jwcrypto_jwk.JWK(kty="oct", k=_b64url(secret_bytes(secret))))
    envelope = json.loads(token.payload)
    assert envelope["type"] == "product.created" and envelope["data"]["name"] == "Secret sauce"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_failures_are_retried_on_schedule_and_every_attempt_is_kept(
    receiver, make_product, settings
):
    settings.PMS_WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    receiver.answer = lambda n: (500, 0, {}) if n < 2 else (200, 0, {})
    endpoint, _ = services.endpoint_create(
        actor=ACTOR, url=receiver.url, event_types=["product.created"]
    )
    make_product()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "retrying" and delivery.attempt_count == 1

    for _ in range(2):
        services.delivery_attempt(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert [a.status_code for a in delivery.attempts.order_by("id")] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # stable id


def test_retry_after_is_honoured(receiver, make_product, settings):
    settings.PMS_WEBHOOK_RETRY_SCHEDULE = [5]
    receiver.answer = lambda n: (503, 0, {"Retry-After": "120"})
    endpoint, _ = services.endpoint_create(actor=ACTOR, url=receiver.url)
    make_product()
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint).first()
    wait = (delivery.next_attempt_at - delivery.attempts.get().attempted_at).total_seconds()
    assert 115 <= wait <= 125


def test_410_disables_the_endpoint_and_audits_it(receiver, make_product):
    receiver.answer = lambda n: (410, 0, {})
    endpoint, _ = services.endpoint_create(actor=ACTOR, url=receiver.url)
    make_product()
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "410" in endpoint.disabled_reason
    from audit.models import AuditLog

    assert AuditLog.objects.filter(
        action="webhook_endpoint.disabled", object_id=str(endpoint.pk)
    ).exists()


def test_dispatch_is_idempotent(receiver, make_product):
    from pms_backend.events.relay import dispatch_events

    services.endpoint_create(actor=ACTOR, url=receiver.url)
    make_product()
    event_ids = list(Event.objects.values_list("pk", flat=True))
    Event.objects.update(dispatched_at=None)

    dispatch_events(event_ids)
    dispatch_events(event_ids)

    assert WebhookDelivery.objects.count() == len(event_ids)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/hook", "https"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("https://10.0.0.5/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://[::1]/hook", "private"),
        ("https://example.com/" + "a" * 2100, "2000"),
    ],
)
def test_bad_webhook_urls_are_refused(admin_api, url, why):
    response = admin_api.post("/api/v1/webhooks/endpoints/", {"url": url}, format="json")
    assert response.status_code == 400
    assert why in response.json()["detail"]
    assert not WebhookEndpoint.objects.exists()


def test_unknown_event_types_are_refused(admin_api):
    response = admin_api.post(
        "/api/v1/webhooks/endpoints/",
        {"url": "https://example.com/h", "event_types": ["product.exploded"]},
        format="json",
    )
    assert response.status_code == 400
    assert any(field.startswith("event_types") for field in response.json()["errors"])


def test_the_secret_is_shown_once_and_stored_encrypted(admin_api):
    created = admin_api.post(
        "/api/v1/webhooks/endpoints/", {"url": "https://example.com/h"}, format="json"
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    again = admin_api.get(f"/api/v1/webhooks/endpoints/{created.json()['id']}/")
    assert "secret" not in again.json()
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret_ct.startswith("pms1.") and secret not in endpoint.secret_ct
    assert endpoint.secret == secret


def test_a_name_resolving_to_a_private_address_is_refused_at_send_time(make_product, settings):
    endpoint, _ = services.endpoint_create(actor=ACTOR, url="https://localhost.:8443/hook")
    make_product()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert "refused destination" in delivery.attempts.get().error


def test_redeliver_sends_a_succeeded_delivery_again(receiver, make_product, admin_api):
    endpoint, _ = services.endpoint_create(
        actor=ACTOR, url=receiver.url, event_types=["product.created"]
    )
    make_product()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)

    response = admin_api.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/redeliver/")

    assert response.status_code == 202
    assert len(receiver.wait_for(2)) == 2
    assert delivery.attempts.count() == 2


def test_the_due_sweep_does_not_queue_a_delivery_twice_but_recovers_lost_tasks(make_product):
    from datetime import timedelta

    from django.utils import timezone

    endpoint, _ = services.endpoint_create(actor=ACTOR, url="https://example.com/hook")
    make_product()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="pending", next_attempt_at=now, queued_at=now
    )
    assert delivery.pk not in services.due_deliveries(now=now)  # its task is on its way

    later = now + services.QUEUED_TASK_LOST_AFTER + timedelta(seconds=1)
    assert delivery.pk in services.due_deliveries(now=later)  # that task was lost

    WebhookDelivery.objects.filter(pk=delivery.pk).update(queued_at=None)
    assert delivery.pk in services.due_deliveries(now=now)  # a retry the sweep must queue


def _publish_in_one_transaction(events: list[tuple[str, dict, str]]) -> None:
    from django.db import transaction

    from pms_backend.events.services import publish

    with transaction.atomic():
        for type, data, subject in events:
            publish(type, data, subject=subject)


def test_one_transactions_events_go_as_one_batch_in_order_and_a_miss_holds_the_rest(
    receiver, settings
):
    settings.PMS_WEBHOOK_RETRY_SCHEDULE = [60]
    receiver.answer = lambda n: (500, 0, {}) if n == 1 else (200, 0, {})
    endpoint, _ = services.endpoint_create(
        actor=ACTOR, url=receiver.url, event_types=["stock.updated"]
    )

    _publish_in_one_transaction(
        [("stock.updated", {"product": 7, "on_hand": n}, "product:7") for n in (1, 2, 3)]
        + [("stock.updated", {"product": 8, "on_hand": 9}, "product:8")]
    )

    deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("event_id"))
    assert [d.status for d in deliveries] == ["succeeded", "retrying", "pending", "succeeded"]
    # The third event about product 7 was not sent while the second one is retrying; the
    # event about product 8 was not held up by product 7's trouble.
    sent = [
        (json.loads(r.body)["data"]["product"], json.loads(r.body)["data"]["on_hand"])
        for r in receiver.received
    ]
    assert sent == [(7, 1), (7, 2), (8, 9)]
    assert deliveries[2].attempt_count == 0 and deliveries[2].next_attempt_at is not None


def test_a_batch_of_deliveries_costs_a_few_queries_each(receiver, django_assert_max_num_queries):
    from django.db import connection
    from django.utils import timezone

    endpoint, _ = services.endpoint_create(
        actor=ACTOR, url=receiver.url, event_types=["stock.updated"]
    )
    _publish_in_one_transaction(
        [("stock.updated", {"product": n, "on_hand": n}, f"product:{n}") for n in range(20)]
    )
    ids = list(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("pk", flat=True))
    assert len(ids) == 20 and len(receiver.received) == 20
    WebhookDelivery.objects.update(status="pending", next_attempt_at=timezone.now())

    # Leasing the batch: one locking read (with the per-object order check) and one
    # update, with the transaction's BEGIN and COMMIT; then per delivery one statement
    # (attempt row, delivery done, next-in-line lookup), and the endpoint's last success
    # at most once. (Sent one by one, it was 14 per delivery; then 6, as the ORM path
    # used without PostgreSQL still takes: lock, attempt row, lookup, update, BEGIN/COMMIT.)
    per_delivery = 1 if connection.vendor == "postgresql" else 4 + 2
    with django_assert_max_num_queries((2 + 2) + 20 * per_delivery + 1):
        outcome = services.deliver_batch(ids)

    assert set(outcome.values()) == {"succeeded"}
    assert len(receiver.received) == 40


@pytest.mark.django_db
def test_every_scheduled_task_is_a_registered_task(settings):
    from pms_backend.celery import app

    app.autodiscover_tasks(force=True)  # as a worker does at start
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled <= set(app.tasks), scheduled - set(app.tasks)


@pytest.fixture
def broker_queue():
    """Tasks go to the real broker (Redis) instead of running inline; return a function
    that reads the ``webhooks`` queue's length. Queues are emptied before and after."""
    from pms_backend.celery import app

    if not app.conf.broker_url.startswith("redis"):
        pytest.skip("needs Redis: set REDIS_URL")
    connection = app.connection_for_write()
    channel = connection.default_channel
    queues = ("events", "webhooks")

    def purge() -> None:
        for queue in queues:
            channel.queue_purge(queue)

    purge()
    app.conf.task_always_eager = False
    try:
        yield lambda: channel.client.llen("webhooks")
    finally:
        app.conf.task_always_eager = True
        purge()
        connection.release()


def test_a_backlog_for_one_endpoint_waits_in_one_task_not_one_per_event(receiver, broker_queue):
    from pms_backend.events.relay import dispatch_events

    endpoint, _ = services.endpoint_create(
        actor=ACTOR, url=receiver.url, event_types=["stock.updated"]
    )

    def event(n: int) -> None:
        _publish_in_one_transaction([("stock.updated", {"product": n, "on_hand": n}, "")])
        dispatch_events(list(Event.objects.filter(dispatched_at=None).values_list("pk", flat=True)))

    for n in range(3):  # three transactions, each its own dispatch
        event(n)
    # The first dispatch queued a task for the endpoint; the next two found it not yet
    # started: it takes every due delivery of the endpoint when it starts.
    assert broker_queue() == 1
    outcome = services.deliver_batch([], endpoint_id=endpoint.pk)
    assert set(outcome.values()) == {"succeeded"} and len(outcome) == 3
    assert [json.loads(r.body)["data"]["product"] for r in receiver.received] == [0, 1, 2]

    event(3)  # that task has started: a new delivery needs a task of its own
    assert broker_queue() == 2


def test_a_backlog_longer_than_a_batch_goes_on_in_another_task(receiver, broker_queue, monkeypatch):
    from pms_backend.events.relay import dispatch_events

    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    endpoint, _ = services.endpoint_create(
        actor=ACTOR, url=receiver.url, event_types=["stock.updated"]
    )
    _publish_in_one_transaction(
        [("stock.updated", {"product": n, "on_hand": n}, "") for n in range(3)]
    )
    dispatch_events(list(Event.objects.filter(dispatched_at=None).values_list("pk", flat=True)))
    assert broker_queue() == 1  # one task for the endpoint

    outcome = services.deliver_batch([], endpoint_id=endpoint.pk)

    assert list(outcome.values()) == ["succeeded", "succeeded"]
    assert broker_queue() == 2  # and one more for the third delivery
    assert services.deliver_batch([], endpoint_id=endpoint.pk) != {}
    assert len(receiver.received) == 3


def test_deliveries_held_behind_a_failing_one_leave_room_for_other_objects(
    receiver, broker_queue, monkeypatch
):
    """One product's first event keeps failing (in its backoff); its later events wait
    behind it, in order. They must not fill every batch of the endpoint's task: another
    product's event goes out at once. (They did: each task leased the held ones first,
    parked them a second, and queued itself again.)"""
    from pms_backend.events.relay import dispatch_events

    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    endpoint, _ = services.endpoint_create(
        actor=ACTOR, url=receiver.url, event_types=["stock.updated"]
    )
    _publish_in_one_transaction(
        [("stock.updated", {"product": 1, "on_hand": n}, "product:1") for n in range(4)]
        + [("stock.updated", {"product": 2, "on_hand": 9}, "product:2")]
    )
    dispatch_events(list(Event.objects.filter(dispatched_at=None).values_list("pk", flat=True)))
    rows = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("event_id"))
    failing, held, other = rows[0], rows[1:4], rows[4]
    WebhookDelivery.objects.filter(pk=failing.pk).update(
        status="retrying",
        attempt_count=1,
        next_attempt_at=timezone.now() + timedelta(hours=1),
        queued_at=None,
    )

    outcome = services.deliver_batch([], endpoint_id=endpoint.pk)

    assert outcome == {other.pk: "succeeded"}
    assert [json.loads(r.body)["data"]["product"] for r in receiver.received] == [2]
    assert set(
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in held]).values_list("status", flat=True)
    ) == {"pending"}


@pytest.mark.postgres
def test_an_endpoints_task_reads_its_due_deliveries_not_its_whole_backlog():
    """A receiver down for a day leaves a long backlog in its backoff; each new event's
    task must find the due and queued deliveries through the due index, not walk the
    backlog (200,000 rows cost 40-100 ms a task that way)."""
    from django.db import connection

    from webhooks import statements

    if not statements.available():
        pytest.skip("the hand-written lease is PostgreSQL's")
    endpoint, _ = services.endpoint_create(actor=ACTOR, url="https://example.com/down")
    later = timezone.now() + timedelta(hours=1)
    events = Event.objects.bulk_create(
        Event(type="stock.updated", topic="stock", data={"n": n}, subject=f"product:{n}")
        for n in range(3_003)
    )
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            event=event,
            endpoint=endpoint,
            subject=event.subject,
            status="retrying" if n < 3_000 else "pending",
            next_attempt_at=later if n < 3_000 else timezone.now(),
            queued_at=None if n < 3_000 else timezone.now(),
        )
        for n, event in enumerate(events)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE webhooks_webhookdelivery")
        now = timezone.now()
        cursor.execute(
            "EXPLAIN " + statements.lease_sql(True),
            {
                "ids": [],
                "endpoint": endpoint.pk,
                "now": now,
                "horizon": now + statements.QUEUED_HORIZON,
                "limit": 51,
            },
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "delivery_due_idx" in plan, plan
    assert "Seq Scan on webhooks_webhookdelivery d" not in plan, plan
    leased = statements.lease_rows([], endpoint.pk, now, 51)
    assert sorted(d.event_id for d in leased) == [e.pk for e in events[3_000:]]


def test_deliveries_are_grouped_by_endpoint_in_event_order(make_product):
    first, _ = services.endpoint_create(actor=ACTOR, url="https://example.com/a")
    second, _ = services.endpoint_create(actor=ACTOR, url="https://example.com/b")
    _publish_in_one_transaction(
        [("stock.updated", {"product": n, "on_hand": n}, f"product:{n}") for n in range(3)]
    )
    rows = WebhookDelivery.objects.order_by("-event_id")
    groups = services.deliveries_by_endpoint([d.pk for d in rows])

    by_endpoint = {WebhookDelivery.objects.get(pk=group[0]).endpoint_id: group for group in groups}
    assert set(by_endpoint) == {first.pk, second.pk}
    for group in groups:
        events = [WebhookDelivery.objects.get(pk=pk).event_id for pk in group]
        assert events == sorted(events) and len(events) == 3


# --- IPv4 addresses dressed as IPv6 (and other spellings) ---------------------------------

# (host as written in a URL, what it stands for)
DISGUISED = [
    ("[::7f00:1]", "127.0.0.1"),  # IPv4-compatible
    ("[::127.0.0.1]", "127.0.0.1"),
    ("[::a9fe:a9fe]", "169.254.169.254"),
    ("[::ffff:127.0.0.1]", "127.0.0.1"),  # IPv4-mapped, three spellings
    ("[::ffff:7f00:1]", "127.0.0.1"),
    ("[0:0:0:0:0:ffff:7f00:1]", "127.0.0.1"),
    ("[::ffff:0:7f00:1]", "127.0.0.1"),  # IPv4-translated (SIIT)
    ("[::ffff:0:10.0.0.1]", "10.0.0.1"),
    ("[64:ff9b::7f00:1]", "127.0.0.1"),  # NAT64
    ("[64:ff9b::169.254.169.254]", "169.254.169.254"),
    ("[64:ff9b::c0a8:1]", "192.168.0.1"),
    ("[64:ff9b:1::a00:1]", "64:ff9b:1::a00:1"),  # NAT64 for local use: never public
    ("[2002:7f00:1::]", "127.0.0.1"),  # 6to4
    ("[2002:a9fe:a9fe::]", "169.254.169.254"),
    ("[2002:a00:1::1]", "10.0.0.1"),
    ("[2001:0:7f00:1::]", "2001:0:7f00:1::"),  # Teredo, server 127.0.0.1
    ("[2001:0:4136:e378:8000:63bf:80ff:fffe]", "2001:0:4136:e378:8000:63bf:80ff:fffe"),
    ("[::e000:1]", "224.0.0.1"),  # multicast
    ("[64:ff9b::]", "0.0.0.0"),  # noqa: S104 - unspecified, not a bind address
    ("[fec0::1]", "fec0::1"),  # site-local
    ("2130706433", "127.0.0.1"),  # IPv4 spelled as resolvers also read it
    ("127.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
]
ENDPOINTS = "/api/v1/webhooks/endpoints/"


@pytest.mark.django_db  # nothing is sent: no need to commit
@pytest.mark.parametrize(("host", "means"), DISGUISED)
def test_a_disguised_private_address_is_refused_when_saved(host, means, admin_api, admin_client):
    url = f"https://{host}/hook"
    created = admin_api.post(ENDPOINTS, {"url": url}, format="json")
    assert created.status_code == 400, created.content
    assert means in created.json()["detail"] and "private" in created.json()["detail"]
    assert not WebhookEndpoint.objects.exists()

    good = admin_api.post(ENDPOINTS, {"url": "https://example.com/hook"}, format="json").json()
    changed = admin_api.patch(f"{ENDPOINTS}{good['id']}/", {"url": url}, format="json")
    assert changed.status_code == 400 and means in changed.json()["detail"]
    assert WebhookEndpoint.objects.get().url == "https://example.com/hook"

    page = admin_client.post(
        "/admin/webhooks/webhookendpoint/add/", {"url": url, "description": "x", "is_active": "on"}
    )
    assert page.status_code == 200  # the form again, with the refusal on the field
    assert page.context["adminform"].form.errors["url"]
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["[64:ff9b::808:808]", "[2002:808:808::1]", "[::ffff:8.8.8.8]"])
def test_a_public_address_in_those_forms_is_accepted(host, admin_api):
    created = admin_api.post(ENDPOINTS, {"url": f"https://{host}/hook"}, format="json")
    assert created.status_code == 201, created.content


@pytest.fixture
def attacker_dns(monkeypatch):
    """The DNS of a name the attacker controls: it answers what ``answers[name]`` says
    (a rebinding name answers a public address when saved, a private one when used)."""
    import socket

    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            family = socket.AF_INET6 if ":" in answers[host] else socket.AF_INET
            address = (answers[host], port, 0, 0) if ":" in answers[host] else (answers[host], port)
            return [(family, socket.SOCK_STREAM, 6, "", address)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


SEND_TIME = [(h.strip("[]"), m) for h, m in DISGUISED if h.startswith("[")]


@pytest.mark.parametrize(("address", "means"), SEND_TIME)
def test_a_disguised_private_address_is_refused_when_sending(
    address, means, attacker_dns, make_product
):
    attacker_dns["hooks.attacker.example"] = "93.184.215.14"  # public when saved
    by_name, _ = services.endpoint_create(actor=ACTOR, url="https://hooks.attacker.example/h")
    # An endpoint saved before these forms were refused: checked again when it is used.
    literal, _ = services.endpoint_create(actor=ACTOR, url="https://example.com/h")
    WebhookEndpoint.objects.filter(pk=literal.pk).update(url=f"https://[{address}]/h")
    attacker_dns["hooks.attacker.example"] = address  # ...and private when used

    make_product()

    for endpoint in (by_name, literal):
        error = WebhookDelivery.objects.get(endpoint=endpoint).attempts.get().error
        assert error.startswith("refused destination:"), error
        assert means in error
