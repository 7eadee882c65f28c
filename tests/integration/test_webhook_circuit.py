"""The circuit breaker and the per-endpoint slots of webhook delivery, with real HTTP
receivers and the real Redis the worker processes share."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.actors import Actor
from pms_backend.events.services import publish
from pms_backend.outbound import circuit, client
from tests.receiver import Receiver
from webhooks import services
from webhooks.models import DeliveryAttempt, WebhookDelivery

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
ACTOR = Actor.system("tests")


@pytest.fixture
def receivers(settings):
    started: list[Receiver] = []
    settings.PMS_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True

    def make(answer=lambda n: (200, 0.0, {})) -> Receiver:
        receiver = Receiver(answer=answer).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


def _publish(count: int, start: int = 0) -> None:
    """``count`` stock events about as many products, in one transaction (one batch)."""
    with transaction.atomic():
        for n in range(start, start + count):
            publish("stock.updated", {"product": n, "on_hand": n}, subject=f"product:{n}")


# How long the circuits of the half-open tests stay open: every check that a call is
# refused while open has to run within it. 1 s was too short for CI's busy 2-core machine
# (it once took 1.2 s to schedule five calls); the tests wait for half-open by polling,
# so a longer window costs only its own length.
OPEN_SECONDS = 5


def _until_half_open(url: str) -> None:
    """Wait until the open circuit of ``url``'s origin has become half-open (at most 60 s)."""
    deadline = time.monotonic() + OPEN_SECONDS + 60
    while client.circuit_state(url)["state"] == "open":
        assert time.monotonic() < deadline, client.circuit_state(url)
        time.sleep(0.05)
    assert client.circuit_state(url)["state"] == "half-open"


def _trip(settings, receivers) -> tuple[Receiver, object]:
    """An endpoint whose receiver answers 500 until its origin's circuit is open."""
    settings.PMS_WEBHOOK_RETRY_SCHEDULE = [600] * 9
    failing = receivers(lambda n: (500, 0.0, {}))
    endpoint, _ = services.endpoint_create(
        actor=ACTOR, url=failing.url, event_types=["stock.updated"]
    )
    _publish(settings.PMS_CIRCUIT_FAILURES)
    assert len(failing.received) == settings.PMS_CIRCUIT_FAILURES
    return failing, endpoint


def test_a_failing_endpoint_does_not_stop_a_healthy_one_on_the_same_host(settings, receivers):
    failing, _ = _trip(settings, receivers)
    healthy = receivers()
    assert healthy.url.split(":")[1] == failing.url.split(":")[1]  # same host, other port
    endpoint, _ = services.endpoint_create(
        actor=ACTOR, url=healthy.url, event_types=["stock.updated"]
    )

    _publish(3, start=100)

    assert len(healthy.received) == 3
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert {(d.status, d.attempt_count) for d in deliveries} == {("succeeded", 1)}
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None
    assert client.circuit_state(healthy.url)["state"] == "closed"


def test_deliveries_skipped_by_an_open_circuit_are_no_failures_of_their_endpoint(
    settings, receivers
):
    tripping = timezone.now()  # the circuit opens after this ...
    failing, _ = _trip(settings, receivers)
    # A second endpoint on the very same origin: its circuit is open too.
    endpoint, _ = services.endpoint_create(
        actor=ACTOR, url=failing.url.replace("/hooks", "/other"), event_types=["stock.updated"]
    )

    _publish(2, start=200)
    published = timezone.now()  # ... and before this

    assert len(failing.received) == settings.PMS_CIRCUIT_FAILURES  # nothing more was sent
    deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint))
    assert len(deliveries) == 2
    for delivery in deliveries:
        assert delivery.status == "pending" and delivery.attempt_count == 0
        assert "circuit open" in delivery.last_error
        # Tried again once the circuit may let a probe through, not at once and not later
        # than its opening plus the spread. Bounds from the moments around its opening,
        # not from the clock after it: a busy machine may take seconds between the two.
        earliest = tripping + timedelta(seconds=settings.PMS_CIRCUIT_OPEN_SECONDS - 0.5)
        latest = published + timedelta(
            seconds=settings.PMS_CIRCUIT_OPEN_SECONDS + services.CIRCUIT_SPREAD_SECONDS + 0.5
        )
        assert earliest <= delivery.next_attempt_at <= latest, (
            tripping,
            delivery.next_attempt_at,
            published,
        )
    assert not DeliveryAttempt.objects.filter(delivery__endpoint=endpoint).exists()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None  # its auto-disable clock has not started


def test_a_half_open_circuit_lets_exactly_one_probe_through(settings, receivers):
    """While the one probe waits on the receiver, every other call is refused at once: the
    refusals are all in before the receiver lets the probe go (an ordering, not a timer;
    CI's busy machine once took 1.2 s to schedule five refusals)."""
    settings.PMS_CIRCUIT_FAILURES = 2
    settings.PMS_CIRCUIT_OPEN_SECONDS = OPEN_SECONDS
    release = threading.Event()

    def answer(n):
        release.wait(60)  # hold every request until the test lets go
        return 500, 0.0, {}

    hanging = receivers(answer)
    try:
        for _ in range(2):
            with pytest.raises(client.httpx.TimeoutException):
                client.post(hanging.url, content="{}", headers={}, timeout=0.3)
        with pytest.raises(client.CircuitOpen):
            client.post(hanging.url, content="{}", headers={}, timeout=0.3)
        _until_half_open(hanging.url)
        sent_before = len(hanging.received)

        start = threading.Barrier(6)
        outcomes: list[str] = []

        def call():
            start.wait()
            try:
                reply = client.post(hanging.url, content="{}", headers={}, timeout=30.0)
                outcomes.append(f"answered {reply.status_code}")
            except client.CircuitOpen:
                outcomes.append("refused")

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(outcomes) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Five refused while the probe still waits on the receiver, which has it alone.
        assert outcomes == ["refused"] * 5, outcomes
        # The probe's request may still be on its way into the receiver's handler thread
        # (the refusals need no network): wait until it is recorded, then count it. The
        # receiver holds it until ``release``, so the refusals above came while it was held.
        deadline = time.monotonic() + 30
        while len(hanging.received) - sent_before < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(hanging.received) - sent_before == 1, outcomes
        assert outcomes == ["refused"] * 5, outcomes  # the probe is still held, unanswered
    finally:
        release.set()
    for thread in threads:
        thread.join(30)

    assert outcomes == ["refused"] * 5 + ["answered 500"], outcomes
    assert len(hanging.received) - sent_before == 1  # one probe, not six
    with pytest.raises(client.CircuitOpen):  # the probe failed: open again
        client.post(hanging.url, content="{}", headers={}, timeout=0.3)


def test_a_probe_that_succeeds_closes_the_circuit(settings, receivers):
    settings.PMS_CIRCUIT_FAILURES = 2
    settings.PMS_CIRCUIT_OPEN_SECONDS = OPEN_SECONDS
    answers = [500, 500, 200, 500, 200]
    receiver = receivers(lambda n: (answers[n], 0.0, {}))
    for _ in range(2):
        client.post(receiver.url, content="{}", headers={}, timeout=1)
    with pytest.raises(client.CircuitOpen):
        client.post(receiver.url, content="{}", headers={}, timeout=1)
    assert client.circuit_state(receiver.url)["state"] == "open"
    _until_half_open(receiver.url)

    assert client.post(receiver.url, content="{}", headers={}, timeout=1).status_code == 200

    assert client.circuit_state(receiver.url)["state"] == "closed"
    # Counting starts again from zero: one failure does not open it.
    assert client.post(receiver.url, content="{}", headers={}, timeout=1).status_code == 500
    assert client.post(receiver.url, content="{}", headers={}, timeout=1).status_code == 200


@pytest.mark.postgres
def test_a_slow_receiver_holds_one_worker_at_a_time_and_the_skipped_batch_waits_unharmed(
    receivers, settings
):
    settings.PMS_WEBHOOK_ENDPOINT_CONCURRENCY = 1
    # The receiver holds the first send until the second worker has come and gone (an
    # ordering: a 1 s delay was shorter than the second worker took on a busy machine).
    holding, release = threading.Event(), threading.Event()

    def answer(n):
        if holding.is_set() and n == 0:
            release.wait(60)
        return 200, 0.0, {}

    slow = receivers(answer)
    endpoint, _ = services.endpoint_create(actor=ACTOR, url=slow.url, event_types=["stock.updated"])
    _publish(2, start=300)
    first, second = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("event_id")
    slow.received.clear()
    slow.max_in_flight = 0
    holding.set()
    WebhookDelivery.objects.update(
        status="pending", next_attempt_at=timezone.now(), queued_at=None, attempt_count=0
    )
    outcomes: dict = {}

    def deliver(delivery):
        try:
            outcomes.update(services.deliver_batch([delivery.pk]))
        finally:
            connection.close()

    holder = threading.Thread(target=deliver, args=(first,))
    holder.start()
    try:
        deadline = time.monotonic() + 60
        while not slow.received:
            assert time.monotonic() < deadline, "the first delivery never reached the receiver"
            time.sleep(0.01)
        deliver(second)  # another worker process, while the first is still waiting
        assert slow.in_flight == 1  # the first was still held: the second met its slot
    finally:
        release.set()
    holder.join(60)

    assert slow.max_in_flight == 1  # never two sends to this receiver at once
    assert outcomes == {first.pk: "succeeded", second.pk: "waiting"}
    # The holder handed the skipped one back to the workers when it was done: sent, once,
    # and nothing counted against it for having waited.
    second.refresh_from_db()
    assert second.status == "succeeded" and second.attempt_count == 1
    assert len(slow.received) == 2


def test_the_circuit_is_kept_per_origin(settings):
    assert circuit.origin("http://127.0.0.1:9101/hook") != circuit.origin(
        "http://127.0.0.1:9103/hook"
    )
    assert circuit.origin("https://Shop.example/a") == circuit.origin("https://shop.example:443/b")
    assert circuit.origin("http://shop.example/a") != circuit.origin("https://shop.example/a")
