"""Webhook endpoints and deliveries: managing receivers, sending, retrying, redelivering."""

from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.actors import Actor
from audit.changes import diff
from audit.services import audit_record
from pms_backend.apikeys.scopes import staff_has_scope
from pms_backend.errors import Forbidden, InvalidInput, NotFound
from pms_backend.events.models import Event
from pms_backend.events.registry import EVENT_TOPICS, event_type_read_scopes
from pms_backend.monitoring import metrics, redis_outage
from pms_backend.outbound import client
from pms_backend.outbound.addresses import DisallowedDestination, check_url
from pms_backend.outbound.coordination import shared
from pms_backend.plurals import counted, noun
from webhooks import signing, statements
from webhooks.errors import WebhookErrorCode as Code
from webhooks.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

# The Celery task that runs deliver_batch (webhooks/tasks.py).
DELIVER_BATCH_TASK = "webhooks.deliver_batch"
ROTATION_OVERLAP = timedelta(hours=24)
OPEN = [WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING]
# Deliveries of one endpoint sent by one task, and how long it keeps starting new sends
# (each may take the 15 s timeout, and all must end within the lease).
BATCH_SIZE = 50
BATCH_SEND_WINDOW = timedelta(seconds=25)
# A delivery behind an earlier event about the same object looks again this much later
# (or at once, when that one succeeds).
WAIT_FOR_EARLIER = timedelta(seconds=1)
# A queued delivery task not run by then is taken for lost and queued again by the sweep.
QUEUED_TASK_LOST_AFTER = timedelta(seconds=60)
# How long "a task for this endpoint is queued and not started" holds back queueing
# another (queue_batches). Short: after a task lost with its worker, the endpoint's next
# delivery queues a new one (which takes the lost task's deliveries too) once this has
# passed; with no next delivery, the sweep takes them after QUEUED_TASK_LOST_AFTER. A task
# waiting longer in a busy queue only gets a twin.
ENDPOINT_TASK_QUEUED_FOR = timedelta(seconds=5)
MAX_RETRY_AFTER = timedelta(hours=24)
# A delivery skipped by an open circuit is tried again when the circuit may let a probe
# through, spread over this much more so the waiting deliveries do not all come at once.
CIRCUIT_SPREAD_SECONDS = 2.0
ENDPOINT_FIELDS = ["url", "description", "event_types", "is_active", "encrypt"]


# --- endpoints -------------------------------------------------------------------------


def _validate(url: str | None, event_types: list[str] | None) -> None:
    if url is not None:
        try:
            check_url(url)
        except DisallowedDestination as exc:
            raise InvalidInput(
                Code.INVALID_URL, f"Webhook URL refused: {exc}.", errors={"url": [str(exc)]}
            ) from exc
    if event_types is not None:
        unknown = sorted(set(event_types) - set(EVENT_TOPICS))
        if unknown:
            raise InvalidInput(
                Code.UNKNOWN_EVENT_TYPE,
                f"Unknown {noun(unknown, 'event type')}: {', '.join(unknown)}.",
                errors={"event_types": [f"Known: {', '.join(sorted(EVENT_TOPICS))}."]},
            )


def topics_out_of_reach(actor: Actor, event_types: list[str]) -> dict[str, str]:
    """Return ``{event type: scope}`` for the types among ``event_types`` (none: every
    type) whose data ``actor``'s credentials cannot read. Jobs and commands reach all."""
    if actor.api_key is not None:
        holds = actor.api_key.has_scope
    elif actor.user is not None:
        holds = lambda scope: staff_has_scope(actor.user, scope)  # noqa: E731
    else:
        return {}
    return {t: s for t, s in event_type_read_scopes(event_types).items() if not holds(s)}


def _check_reach(actor: Actor, event_types: list[str]) -> None:
    """Refuse to point an endpoint at data its author may not read: an endpoint receives
    every event of its types, customer data included."""
    missing = topics_out_of_reach(actor, event_types)
    if not missing:
        return
    by_scope: dict[str, list[str]] = {}
    for event_type, scope in sorted(missing.items()):
        by_scope.setdefault(scope, []).append(event_type)
    needs = "; ".join(f"{scope!r} for {', '.join(types)}" for scope, types in by_scope.items())
    what = ", ".join(event_types) if event_types else "every event type (none chosen)"
    raise Forbidden(
        Code.SCOPE_FOR_EVENT_TYPE_MISSING,
        f"Subscribing to {what} needs scopes your credentials lack: {needs}.",
        errors={"event_types": [f"{t} needs {s!r}." for t, s in sorted(missing.items())]},
        extra={"missing_scopes": sorted(by_scope)},
    )


def _public(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {name: getattr(endpoint, name) for name in ENDPOINT_FIELDS}


def endpoint_create(
    *,
    actor: Actor,
    url: str,
    event_types: list[str] | None = None,
    description: str = "",
    encrypt: bool = False,
    is_active: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; return it with its secret (``whsec_…``), shown only now."""
    _validate(url, event_types or [])
    _check_reach(actor, event_types or [])
    secret = signing.new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint(
            url=url,
            event_types=sorted(set(event_types or [])),
            description=description,
            encrypt=encrypt,
            is_active=is_active,
        )
        endpoint.secret = secret
        endpoint.save()
        audit_record(
            actor=actor,
            action="webhook_endpoint.created",
            target=endpoint,
            changes=diff({}, _public(endpoint)) | {"secret": {"before": None, "after": "***"}},
        )
    return endpoint, secret


def endpoint_update(*, actor: Actor, endpoint_id, data: dict[str, Any]) -> WebhookEndpoint:
    """Change an endpoint's URL, event types, description, encryption or active flag."""
    _validate(data.get("url"), data.get("event_types"))
    with transaction.atomic():
        endpoint = _get(endpoint_id, lock=True)
        # Whoever changes an endpoint (its URL above all) must reach every type it receives.
        _check_reach(actor, data.get("event_types", endpoint.event_types))
        before = _public(endpoint)
        for name in ENDPOINT_FIELDS:
            if name in data:
                value = data[name]
                setattr(endpoint, name, sorted(set(value)) if name == "event_types" else value)
        if data.get("is_active"):
            endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since = None, "", None
        changes = diff(before, _public(endpoint))
        if changes:
            endpoint.save()
            audit_record(
                actor=actor, action="webhook_endpoint.updated", target=endpoint, changes=changes
            )
    return endpoint


def endpoint_delete(*, actor: Actor, endpoint_id) -> None:
    with transaction.atomic():
        endpoint = _get(endpoint_id, lock=True)
        audit_record(
            actor=actor,
            action="webhook_endpoint.deleted",
            target=endpoint,
            changes=diff(_public(endpoint), {}),
        )
        endpoint.delete()


def endpoint_rotate_secret(*, actor: Actor, endpoint_id) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new secret; for 24 h both signatures are sent."""
    secret = signing.new_secret()
    with transaction.atomic():
        endpoint = _get(endpoint_id, lock=True)
        _check_reach(actor, endpoint.event_types)  # the secret opens encrypted bodies
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
        endpoint.secret = secret
        endpoint.save()
        audit_record(
            actor=actor,
            action="webhook_endpoint.secret_rotated",
            target=endpoint,
            changes={"secret": {"before": "***", "after": "***"}},
        )
    return endpoint, secret


def _get(endpoint_id, *, lock: bool = False) -> WebhookEndpoint:
    qs = WebhookEndpoint.objects.select_for_update() if lock else WebhookEndpoint.objects
    endpoint = qs.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(Code.ENDPOINT_NOT_FOUND, f"No webhook endpoint {endpoint_id}.")
    return endpoint


# --- deliveries ------------------------------------------------------------------------


def deliveries_for_events(events: list[Event]) -> list[tuple[Any, list[int]]]:
    """Create one delivery per (event, interested active endpoint); return the ids of those
    made (without PostgreSQL: of those still pending), in batches for :func:`queue_batches`.

    The unique constraint makes this idempotent: dispatching an event twice (a retried
    task, the sweep racing the relay) never makes a second delivery. They are created as
    queued: the caller queues them once its transaction commits.
    """
    endpoints = (
        statements.active_endpoints()
        if statements.available()
        else list(WebhookEndpoint.objects.filter(is_active=True))
    )
    now = timezone.now()
    rows = [
        WebhookDelivery(
            event=event,
            endpoint=endpoint,
            subject=event.subject,
            next_attempt_at=now,
            queued_at=now,
        )
        for event in events
        for endpoint in endpoints
        if endpoint.wants(event.type)
    ]
    if not rows:
        return []
    if statements.available():
        return _grouped(statements.insert_deliveries(rows, now))
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    return _endpoint_batches(
        WebhookDelivery.objects.filter(event__in=events, status=WebhookDelivery.Status.PENDING)
    )


def deliveries_for_dispatch(events: list[Event]) -> Callable[[], None]:
    """The relay's subscriber: make the events' deliveries in its transaction; queue them
    once it commits."""
    batches = deliveries_for_events(events)
    return lambda: queue_batches(batches)


def events_still_owed() -> QuerySet:
    """The ids of events some delivery still needs: the outbox keeps them."""
    return WebhookDelivery.objects.exclude(status=WebhookDelivery.Status.SUCCEEDED).values(
        "event_id"
    )


def _endpoint_batches(deliveries) -> list[tuple[Any, list[int]]]:
    """``(endpoint id, delivery ids)``: grouped by endpoint, in event order, in chunks of
    at most BATCH_SIZE."""
    return _grouped(deliveries.order_by("endpoint_id", "event_id").values_list("endpoint_id", "pk"))


def _grouped(rows) -> list[tuple[Any, list[int]]]:
    """:func:`_endpoint_batches` of ``(endpoint id, delivery id)`` rows in that order."""
    groups: dict[Any, list[int]] = {}
    for endpoint_id, pk in rows:
        groups.setdefault(endpoint_id, []).append(pk)
    return [
        (endpoint_id, ids[start : start + BATCH_SIZE])
        for endpoint_id, ids in groups.items()
        for start in range(0, len(ids), BATCH_SIZE)
    ]


def deliveries_by_endpoint(delivery_ids: list[int]) -> list[list[int]]:
    """Group delivery ids by endpoint, in event order, in chunks of at most BATCH_SIZE."""
    return [
        ids for _, ids in _endpoint_batches(WebhookDelivery.objects.filter(pk__in=delivery_ids))
    ]


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    latency_ms: int | None
    excerpt: str
    error: str
    retry_after: timedelta | None
    # False when nothing left (an open circuit): not an attempt, no failure of the endpoint.
    sent: bool = True


def _headers_and_body(delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> tuple[dict, str]:
    event = delivery.event
    body = json.dumps(event.envelope(), separators=(",", ":"))
    content_type = "application/json"
    if endpoint.encrypt:
        body = signing.encrypt_body(endpoint.secret, body)
        content_type = "application/jose"
    timestamp = int(time.time())
    signatures = [signing.signature(endpoint.secret, event.event_id, timestamp, body)]
    if (
        endpoint.previous_secret_ct
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > timezone.now()
    ):
        signatures.append(
            signing.signature(endpoint.previous_secret, event.event_id, timestamp, body)
        )
    headers = {
        "content-type": content_type,
        "webhook-id": event.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
        "user-agent": "PMS-Webhooks/1.0",
    }
    if event.request_id:
        # The request that caused the event, to follow it through both sides' logs.
        headers["x-pms-request-id"] = event.request_id
    return headers, body


def _retry_after(reply: client.Reply) -> timedelta | None:
    value = reply.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - timezone.now()).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(timedelta(seconds=max(seconds, 0)), MAX_RETRY_AFTER)


def _send(delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> SendResult:
    headers, body = _headers_and_body(delivery, endpoint)
    try:
        reply = client.post(
            endpoint.url,
            content=body,
            headers=headers,
            timeout=settings.PMS_WEBHOOK_TIMEOUT_SECONDS,
        )
    except client.CircuitOpen as exc:
        wait = exc.retry_in + random.uniform(0, CIRCUIT_SPREAD_SECONDS)
        return SendResult(None, None, "", f"not sent: {exc}", timedelta(seconds=wait), sent=False)
    except DisallowedDestination as exc:
        return SendResult(None, None, "", f"refused destination: {exc}", None)
    except httpx.TimeoutException:
        return SendResult(None, None, "", "timed out", None)
    except httpx.HTTPError as exc:
        return SendResult(None, None, "", f"{type(exc).__name__}: {exc}"[:500], None)
    excerpt = _without_personal(reply.text, delivery.event)[:1000]
    return SendResult(reply.status_code, reply.latency_ms, excerpt, "", _retry_after(reply))


def _without_personal(text: str, event: Event) -> str:
    """Blank the event's customer strings out of a receiver's answer: one that echoes the
    request must not put them in clear into the attempt log, kept forever."""
    if not text or not event.personal_ct:
        return text
    values: set[str] = set()
    pending: list[Any] = [event.personal]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and len(value.strip()) >= 3:
            # As sent (JSON-escaped) and as a receiver may have decoded it.
            values.update((value, json.dumps(value)[1:-1]))
    for value in sorted(values, key=len, reverse=True):
        text = re.sub(re.escape(value), "[redacted]", text, flags=re.IGNORECASE)
    return text


def _next_delay(attempt_count: int) -> timedelta | None:
    schedule = settings.PMS_WEBHOOK_RETRY_SCHEDULE
    if attempt_count > len(schedule):
        return None
    base = schedule[attempt_count - 1]
    return timedelta(seconds=base * random.uniform(0.9, 1.1))


def _earlier_open() -> Case:
    """How many earlier events about the same object are still on their way to the same
    endpoint (a subquery, so leasing a batch stays one query)."""
    earlier = (
        WebhookDelivery.objects.filter(
            endpoint_id=OuterRef("endpoint_id"),
            subject=OuterRef("subject"),
            event_id__lt=OuterRef("event_id"),
            status__in=OPEN,
        )
        .order_by()
        .values("endpoint_id")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Case(
        When(subject="", then=Value(0)),
        default=Coalesce(Subquery(earlier, output_field=IntegerField()), 0),
    )


def delivery_attempt(delivery_id: int, *, now: datetime | None = None) -> str:
    """Send one due delivery once; record the attempt and schedule what comes next.

    Return what happened: ``succeeded``, ``retrying``, ``failed``, ``waiting`` (an earlier
    event for the same object goes first) or ``skipped`` (not due, taken, or done).
    """
    return deliver_batch([delivery_id], now=now)[delivery_id]


def deliver_batch(
    delivery_ids: list[int], *, now: datetime | None = None, endpoint_id=None
) -> dict[int, str]:
    """Send the due deliveries among ``delivery_ids`` in event order; return each outcome
    (as :func:`delivery_attempt` names them). Given ``endpoint_id`` (the endpoint of every
    one of them: a task of :func:`queue_batches`), send that endpoint's earliest due
    deliveries instead, ``delivery_ids`` among them if still due, at most BATCH_SIZE.

    The relay queues a batch per endpoint, so one task sends them over one kept-alive
    connection and leases them with one query. Per object, order holds: a delivery waits
    while an earlier event about the same object is still open for its endpoint, in this
    batch or not. A batch stops starting sends after ``BATCH_SEND_WINDOW`` and hands the
    rest back to the due sweep, so the lease (:func:`lease`) outlasts every send it made.
    """
    now = now or timezone.now()
    if endpoint_id is not None:
        endpoint_id = uuid.UUID(str(endpoint_id))
    outcome = dict.fromkeys(delivery_ids, "skipped")
    # endpoint -> its sending slot, None when all were taken
    slots: dict[int, tuple[str, str] | None] = {}
    try:
        sending = _lease(delivery_ids, now, slots, outcome, endpoint_id)
        _send_leased(sending, outcome, slots)
    finally:
        for endpoint_id, slot in slots.items():
            if slot:
                _release_slot(endpoint_id, slot)
    return outcome


def _flag_waiting(endpoint_ids) -> None:
    """Tell the holders of these endpoints' slots that deliveries wait for them (once
    those are committed: the holder's wake-up must find them)."""
    for endpoint_id in endpoint_ids:
        shared.set(f"slot:{endpoint_id}:waiting", "1", lease().total_seconds())


def _lease(
    delivery_ids: list[int], now: datetime, slots: dict, outcome: dict[int, str], endpoint_id
) -> list[WebhookDelivery]:
    """Take the due deliveries no other worker holds (those of ``endpoint_id``: see
    :func:`deliver_batch`) and their endpoints' sending slots; return those to send now,
    in event order, each endpoint one shared instance (kept current by :func:`_record`)."""
    with transaction.atomic():
        deliveries, more = _due_rows(delivery_ids, now, endpoint_id)
        if not deliveries:
            return []
        outcome.update(dict.fromkeys((d.pk for d in deliveries), "skipped"))
        endpoints: dict = {}
        for delivery in deliveries:
            delivery.endpoint = endpoints.setdefault(delivery.endpoint_id, delivery.endpoint)
        deliveries = _without_busy(deliveries, endpoints, slots, now, outcome)
        if more and slots.get(endpoint_id):
            # The rest of the endpoint's backlog: another task, maybe on another slot. (Not
            # when all slots are taken: their holders wake what waits for them.)
            transaction.on_commit(lambda: queue_batches([(endpoint_id, [])]))
        deliveries = _without_disabled(deliveries, outcome)
        sending, waiting = _in_subject_order(deliveries)
        # The queued task is running: from here on, next_attempt_at alone says when.
        # Leased: another worker will not pick these up while this one is sending.
        if sending and statements.available():
            statements.set_leased([d.pk for d in sending], now + lease())
        elif sending:
            WebhookDelivery.objects.filter(pk__in=[d.pk for d in sending]).update(
                next_attempt_at=now + lease(), queued_at=None
            )
        if waiting:
            WebhookDelivery.objects.filter(pk__in=waiting).update(
                next_attempt_at=now + WAIT_FOR_EARLIER, queued_at=None
            )
            outcome.update(dict.fromkeys(waiting, "waiting"))
    _flag_waiting(pk for pk, slot in slots.items() if not slot)
    return sending


def _due_rows(delivery_ids: list[int], now: datetime, endpoint_id) -> tuple[list[Any], bool]:
    """Lock the due deliveries to lease (in the caller's transaction), in event order,
    annotated with ``earlier_open`` (read by :func:`_in_subject_order`); for an endpoint,
    at most BATCH_SIZE. Return them and whether more are due."""
    if endpoint_id is None:
        limit = None
    else:
        limit = BATCH_SIZE + 1
        # The batch's queued flag is down: deliveries made from now on queue a task of
        # their own (queue_batches), those made before are among these rows (queued:
        # taken whatever their next_attempt_at, which another process's clock set).
        shared.delete(_queued_key(endpoint_id))
    deliveries = (
        statements.lease_rows(delivery_ids, endpoint_id, now, limit)
        if statements.available()
        else _lease_rows(delivery_ids, endpoint_id, now, limit)
    )
    return deliveries[:BATCH_SIZE], len(deliveries) > BATCH_SIZE


def _lease_rows(delivery_ids: list[int], endpoint_id, now: datetime, limit: int | None) -> list:
    """:func:`webhooks.statements.lease_rows` with the ORM (SQLite, for development)."""
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    if endpoint_id is None:
        chosen = Q(pk__in=delivery_ids)
    else:
        held = WebhookDelivery.objects.filter(
            endpoint_id=OuterRef("endpoint_id"),
            subject=OuterRef("subject"),
            event_id__lt=OuterRef("event_id"),
            status__in=OPEN,
            queued_at__isnull=True,
            next_attempt_at__gt=now,
        ).exclude(subject="")
        chosen = Q(Q(endpoint_id=endpoint_id), ~Exists(held))
        within = Q(next_attempt_at__isnull=True) | Q(
            next_attempt_at__lte=now + statements.QUEUED_HORIZON
        )
        due = within & (due | Q(queued_at__isnull=False))
    rows = (
        WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("event", "endpoint")
        .filter(chosen, due, status__in=OPEN)
        .annotate(earlier_open=_earlier_open())
        .order_by("event_id")
    )
    return list(rows if limit is None else rows[:limit])


def _without_busy(
    deliveries: list[WebhookDelivery], endpoints: dict, slots: dict, now, outcome: dict
) -> list[WebhookDelivery]:
    """Claim a sending slot for each active endpoint; return the deliveries of those that
    got one (or are disabled), the others back to wait."""
    for pk, endpoint in endpoints.items():
        if endpoint.is_active:
            slots[pk] = _claim_slot(pk)
    busy = [d.pk for d in deliveries if d.endpoint_id in slots and not slots[d.endpoint_id]]
    if not busy:
        return deliveries
    # The endpoint already has its share of worker processes: back to wait, due now and
    # unqueued, woken by the holder when it is done (or by the due sweep); nothing counts
    # against the delivery.
    WebhookDelivery.objects.filter(pk__in=busy).update(next_attempt_at=now, queued_at=None)
    outcome.update(dict.fromkeys(busy, "waiting"))
    return [d for d in deliveries if d.pk not in set(busy)]


def _without_disabled(
    deliveries: list[WebhookDelivery], outcome: dict[int, str]
) -> list[WebhookDelivery]:
    """Fail the deliveries of disabled endpoints; return the others."""
    disabled = [d.pk for d in deliveries if not d.endpoint.is_active]
    if not disabled:
        return deliveries
    WebhookDelivery.objects.filter(pk__in=disabled).update(
        status=WebhookDelivery.Status.FAILED,
        last_error="endpoint disabled",
        next_attempt_at=None,
        queued_at=None,
    )
    outcome.update(dict.fromkeys(disabled, "failed"))
    return [d for d in deliveries if d.endpoint.is_active]


def _in_subject_order(
    deliveries: list[Any],  # WebhookDelivery rows annotated with earlier_open
) -> tuple[list[WebhookDelivery], list[int]]:
    """Split leased deliveries into those to send and the ids of those that wait behind
    an earlier event about the same object, still open outside this batch."""
    sending, waiting = [], []
    ahead: dict[tuple, int] = {}
    for delivery in deliveries:
        subject = delivery.subject
        key = (delivery.endpoint_id, subject)
        if subject and delivery.earlier_open > ahead.get(key, 0):
            waiting.append(delivery.pk)
        else:
            sending.append(delivery)
        if subject:
            ahead[key] = ahead.get(key, 0) + 1
    return sending, waiting


@dataclass
class _BatchSends:
    """One batch's sends, in order, and what holds its later deliveries back."""

    slots: dict[int, tuple[str, str] | None]
    batch: frozenset
    started: float = field(default_factory=time.monotonic)
    # (endpoint, subject) an earlier send of this batch missed
    held: set[tuple] = field(default_factory=set)
    # endpoints disabled by an answer (410) on the way
    stopped: set = field(default_factory=set)
    # endpoint -> (when its open circuit may let a call through, why)
    paused: dict = field(default_factory=dict)
    # endpoint -> deliveries not sent because of it
    postponed: dict = field(default_factory=dict)
    # slot -> when it was last renewed
    renewed: dict = field(default_factory=dict)

    def deliver(self, delivery: WebhookDelivery) -> str:
        """Send ``delivery`` unless something holds it back; return its outcome."""
        key = (delivery.endpoint_id, delivery.subject)
        if delivery.endpoint_id in self.paused:
            self.postponed[delivery.endpoint_id].append(delivery.pk)
            return "waiting"
        late = time.monotonic() - self.started > BATCH_SEND_WINDOW.total_seconds()
        if late or delivery.endpoint_id in self.stopped or (delivery.subject and key in self.held):
            # Back to the due sweep: now (time's up, or its endpoint is off), or once the
            # earlier event about the same object has gone.
            again = timezone.now() + (WAIT_FOR_EARLIER if key in self.held else timedelta(0))
            WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=again)
            return "waiting" if key in self.held else "skipped"
        self._renew_slot(delivery.endpoint_id)
        result = _send(delivery, delivery.endpoint)
        if not result.sent:
            # Not an attempt: the endpoint's deliveries in this batch wait for the circuit,
            # without counting one more attempt or starting its failing-since clock.
            assert result.retry_after is not None  # an attempt not made says when to retry
            self.paused[delivery.endpoint_id] = (timezone.now() + result.retry_after, result.error)
            self.postponed[delivery.endpoint_id] = [delivery.pk]
            return "waiting"
        status = _record(delivery, result, self.batch)
        if status != WebhookDelivery.Status.SUCCEEDED:
            self.held.add(key)
            if status == WebhookDelivery.Status.FAILED and delivery.last_status_code == 410:
                self.stopped.add(delivery.endpoint_id)
        return status

    def _renew_slot(self, endpoint_id) -> None:
        slot = self.slots.get(endpoint_id)
        if slot and time.monotonic() - self.renewed.get(slot, self.started) >= 1:
            shared.extend_if(*slot, _slot_seconds())  # alive: renewed at most once a second
            self.renewed[slot] = time.monotonic()

    def postpone_paused(self) -> None:
        """Give the deliveries an open circuit kept back the time it may let a call through."""
        for endpoint_id, ids in self.postponed.items():
            when, why = self.paused[endpoint_id]
            WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=when, last_error=why)


def _send_leased(sending: list[WebhookDelivery], outcome: dict[int, str], slots: dict) -> None:
    sends = _BatchSends(slots, frozenset(d.pk for d in sending))
    for delivery in sending:
        outcome[delivery.pk] = sends.deliver(delivery)
    sends.postpone_paused()


def lease() -> timedelta:
    """How long deliveries taken by a batch stay out of other workers' reach: the batch's
    send window, its last send (connect retries included) and a margin — 60 s with the
    default 15 s timeout. A worker killed mid-batch delays those deliveries this long."""
    return BATCH_SEND_WINDOW + timedelta(seconds=2 * settings.PMS_WEBHOOK_TIMEOUT_SECONDS + 5)


def _slot_seconds() -> float:
    """How long a slot outlives its holder's last sign of life: one send (with its connect
    retries) and a margin. A worker killed mid-batch frees its endpoint this soon."""
    return 2 * settings.PMS_WEBHOOK_TIMEOUT_SECONDS + 10


def _claim_slot(endpoint_id) -> tuple[str, str] | None:
    """Take one of the endpoint's ``PMS_WEBHOOK_ENDPOINT_CONCURRENCY`` sending slots (shared
    by the worker processes, renewed before each send, freed soon if its holder dies);
    None if all are taken. A slow receiver thus holds that many worker processes at most."""
    token = uuid.uuid4().hex
    for number in range(settings.PMS_WEBHOOK_ENDPOINT_CONCURRENCY):
        key = f"slot:{endpoint_id}:{number}"
        if shared.add(key, token, _slot_seconds()):
            return key, token
    return None


def _release_slot(endpoint_id, slot: tuple[str, str]) -> None:
    """Free the slot, and if deliveries found the endpoint busy meanwhile, queue a task
    for the endpoint: it takes its due deliveries, a batch at a time (queue_batches)."""
    shared.delete_if(*slot)
    waiting = f"slot:{endpoint_id}:waiting"
    if shared.get(waiting):
        shared.delete(waiting)
        queue_batches([(endpoint_id, [])])


def _record(leased: WebhookDelivery, result: SendResult, batch: frozenset = frozenset()) -> str:
    """Store the attempt and what comes next; return the delivery's new status.

    ``leased`` (with its event and endpoint) is updated in place. The endpoint row is
    locked only when it changes (a failure, or the first success after failures), so
    successes to a healthy endpoint do not queue behind each other on its row.
    """
    now = timezone.now()
    code = result.status_code or 0
    succeeded = 200 <= code < 300
    if succeeded and statements.available():
        return _record_success(leased, result, batch, now)
    return _record_in_transaction(leased, result, batch, now)


def _record_in_transaction(
    leased: WebhookDelivery, result: SendResult, batch: frozenset, now: datetime
) -> str:
    """:func:`_record` of a failure (or of any outcome, without PostgreSQL)."""
    code = result.status_code or 0
    succeeded = 200 <= code < 300
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=leased.pk)
        DeliveryAttempt.objects.create(
            delivery_id=delivery.pk,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            response_excerpt=result.excerpt,
            error=result.error,
        )
        delivery.attempt_count += 1
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error or ("" if succeeded else f"HTTP {result.status_code}")
        endpoint = leased.endpoint
        if succeeded:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
                WebhookDelivery.Status.SUCCEEDED,
                now,
                None,
            )
            if endpoint.failing_since is not None or _stale(endpoint.last_success_at, now):
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                    failing_since=None, last_success_at=now
                )
                endpoint.failing_since, endpoint.last_success_at = None, now
            _release_next_for_subject(leased, batch)
        else:
            endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
            if code == 410:
                delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
                _disable(endpoint, "the receiver answered 410 Gone")
            else:
                endpoint.failing_since = endpoint.failing_since or now
                endpoint.save(update_fields=["failing_since"])
                delay = _next_delay(delivery.attempt_count)
                if result.retry_after is not None and delay is not None:
                    delay = max(delay, result.retry_after)
                if delay is None:
                    delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
                else:
                    delivery.status = WebhookDelivery.Status.RETRYING
                    delivery.next_attempt_at = now + delay
                # Queued meanwhile ("Send again now" while it was in flight): the retry
                # waits its delay, not the next task of the endpoint.
                delivery.queued_at = None
                if now - endpoint.failing_since >= timedelta(
                    days=settings.PMS_WEBHOOK_DISABLE_AFTER_DAYS
                ):
                    _disable(
                        endpoint,
                        f"failing for {counted(settings.PMS_WEBHOOK_DISABLE_AFTER_DAYS, 'day')} "
                        "straight",
                    )
            # The batch's later deliveries to this endpoint share its instance.
            for name in ("is_active", "failing_since", "disabled_at", "disabled_reason"):
                setattr(leased.endpoint, name, getattr(endpoint, name))
        delivery.save(
            update_fields=[
                "status",
                "attempt_count",
                "last_status_code",
                "last_error",
                "delivered_at",
                "next_attempt_at",
                "queued_at",
            ]
        )
    leased.status, leased.last_status_code = delivery.status, delivery.last_status_code
    metrics.count_webhook_delivery(delivery.status)
    return delivery.status


def _record_success(
    leased: WebhookDelivery, result: SendResult, batch: frozenset, now: datetime
) -> str:
    """:func:`_record` of a success, in one statement (webhooks/statements.py): the
    attempt, the delivery done, and the next delivery about the same object, woken."""
    attempts, following = statements.record_success(
        {
            "id": leased.pk,
            "now": now,
            "code": result.status_code,
            "latency": result.latency_ms,
            "excerpt": result.excerpt,
            "subject": leased.subject,
            "endpoint": leased.endpoint_id,
            "event": leased.event_id,
            "batch": list(batch),
        }
    )
    if attempts is None:
        raise WebhookDelivery.DoesNotExist(f"delivery {leased.pk} is gone")
    endpoint = leased.endpoint
    if endpoint.failing_since is not None or _stale(endpoint.last_success_at, now):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            failing_since=None, last_success_at=now
        )
        endpoint.failing_since, endpoint.last_success_at = None, now
    if following is not None:
        # Sent right away, not at the next sweep (unless in this batch: it sends it next).
        WebhookDelivery.objects.filter(pk=following).update(next_attempt_at=now)
        enqueue_deliveries([following])
    leased.status, leased.last_status_code = WebhookDelivery.Status.SUCCEEDED, result.status_code
    leased.attempt_count = attempts
    metrics.count_webhook_delivery(leased.status)
    return leased.status


def _stale(moment: datetime | None, now: datetime) -> bool:
    """``last_success_at`` is refreshed at most once a second per endpoint."""
    return moment is None or now - moment >= timedelta(seconds=1)


def _release_next_for_subject(delivery: WebhookDelivery, batch: frozenset) -> None:
    """Send the next waiting event about the same object right away, not at the next sweep
    (unless it is in this batch, which sends it next itself)."""
    subject = delivery.subject
    if not subject:
        return
    following = (
        WebhookDelivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            subject=subject,
            event_id__gt=delivery.event_id,
            status__in=OPEN,
        )
        .exclude(pk__in=batch)
        .order_by("event_id")
        .values_list("pk", flat=True)
        .first()
    )
    if following is not None:
        WebhookDelivery.objects.filter(pk=following).update(next_attempt_at=timezone.now())
        transaction.on_commit(lambda: enqueue_deliveries([following]))


def _disable(endpoint: WebhookEndpoint, reason: str) -> None:
    if not endpoint.is_active:
        return
    endpoint.is_active = False
    endpoint.disabled_at = timezone.now()
    endpoint.disabled_reason = reason[:200]
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason"])
    audit_record(
        actor=Actor.system("webhook-delivery"),
        action="webhook_endpoint.disabled",
        target=endpoint,
        changes={
            "is_active": {"before": True, "after": False},
            "reason": {"before": None, "after": reason},
        },
    )
    logger.error("webhook endpoint %s (%s) disabled: %s", endpoint.pk, endpoint.url, reason)


def due_deliveries(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Return ids of deliveries whose next attempt is due and that no task is queued for
    (or whose task was queued so long ago that it must have been lost)."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
            next_attempt_at__lte=now,
        )
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - QUEUED_TASK_LOST_AFTER))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def delivery_redeliver(*, actor: Actor, delivery_ids: list[int]) -> int:
    """Queue deliveries to be sent again now, whatever their state; return how many."""
    with transaction.atomic():
        count = WebhookDelivery.objects.filter(pk__in=delivery_ids).update(
            status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now()
        )
        if count:
            audit_record(
                actor=actor,
                action="webhook_delivery.redelivered",
                object_type="webhooks.webhookdelivery",
                object_id=",".join(map(str, delivery_ids[:20])),
                changes={"count": {"before": None, "after": count}},
            )
        transaction.on_commit(lambda: enqueue_deliveries(list(delivery_ids)))
    return count


def enqueue_deliveries(delivery_ids: list[int]) -> None:
    """Hand deliveries to workers now, a task per endpoint; if the broker is down, the due
    sweep sends them."""
    if not delivery_ids:
        return
    # Marked as queued, the due sweep leaves them alone unless the task is lost.
    WebhookDelivery.objects.filter(pk__in=delivery_ids).update(queued_at=timezone.now())
    queue_batches(_endpoint_batches(WebhookDelivery.objects.filter(pk__in=delivery_ids)))


def _queued_key(endpoint_id) -> str:
    return f"batch:{endpoint_id}:queued"


def queue_batches(batches: list[tuple[Any, list[int]]]) -> None:
    """Queue a ``webhooks.deliver_batch`` task per ``(endpoint id, delivery ids)`` batch
    (deliveries marked as queued), unless one for that endpoint is queued and not yet
    started: that task takes the endpoint's due deliveries when it starts, these among
    them. So a backlog costs a task per BATCH_SIZE deliveries, not one per event."""
    for number, (endpoint_id, ids) in enumerate(batches):
        key = _queued_key(endpoint_id)
        try:
            if redis_outage.paused():
                raise redis_outage.RedisPaused("Redis paused after a failure in this process")
            if not shared.add_among_processes(key, "1", ENDPOINT_TASK_QUEUED_FOR.total_seconds()):
                continue
            # By name: webhooks/tasks.py calls this module (the app's ready() loads it).
            current_app.tasks[DELIVER_BATCH_TASK].apply_async(
                (ids,), {"endpoint_id": str(endpoint_id)}, retry=False
            )
        except Exception as exc:  # broker down: the due-delivery sweep sends them next run
            shared.delete(key)
            rest = [pk for _, batch in batches[number:] for pk in batch]
            WebhookDelivery.objects.filter(pk__in=rest).update(queued_at=None)
            if redis_outage.unreachable(exc):
                redis_outage.report("broker", exc)
            else:
                logger.exception(
                    "could not queue %s; the sweep will",
                    counted(len(rest), "delivery", "deliveries"),
                )
            return
