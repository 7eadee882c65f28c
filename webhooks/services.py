"""Webhook endpoints and deliveries: managing receivers, sending, retrying, redelivering."""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.actors import Actor
from audit.changes import diff
from audit.services import audit_record
from pms_backend.errors import InvalidInput, NotFound
from pms_backend.events.models import Event
from pms_backend.events.services import EVENT_TOPICS
from pms_backend.monitoring import metrics
from pms_backend.outbound import client
from pms_backend.outbound.addresses import DisallowedDestination, check_url
from webhooks import signing
from webhooks.errors import WebhookErrorCode as Code
from webhooks.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

ROTATION_OVERLAP = timedelta(hours=24)
LEASE = timedelta(seconds=60)
# A queued delivery task not run by then is taken for lost and queued again by the sweep.
QUEUED_TASK_LOST_AFTER = timedelta(seconds=60)
MAX_RETRY_AFTER = timedelta(hours=24)
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
                f"Unknown event type(s): {', '.join(unknown)}.",
                errors={"event_types": [f"Known: {', '.join(sorted(EVENT_TOPICS))}."]},
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


def deliveries_for_events(events: list[Event]) -> list[int]:
    """Create one delivery per (event, interested active endpoint); return their ids.

    The unique constraint makes this idempotent: dispatching an event twice (a retried
    task, the sweep racing the relay) never makes a second delivery.
    """
    endpoints = list(WebhookEndpoint.objects.filter(is_active=True))
    rows = [
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=timezone.now())
        for event in events
        for endpoint in endpoints
        if endpoint.wants(event.type)
    ]
    if not rows:
        return []
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    return list(
        WebhookDelivery.objects.filter(
            event__in=events, status=WebhookDelivery.Status.PENDING
        ).values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    latency_ms: int | None
    excerpt: str
    error: str
    retry_after: timedelta | None


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
        return SendResult(None, None, "", f"not sent: {exc}", None)
    except DisallowedDestination as exc:
        return SendResult(None, None, "", f"refused destination: {exc}", None)
    except httpx.TimeoutException:
        return SendResult(None, None, "", "timed out", None)
    except httpx.HTTPError as exc:
        return SendResult(None, None, "", f"{type(exc).__name__}: {exc}"[:500], None)
    return SendResult(
        reply.status_code, reply.latency_ms, reply.text[:1000], "", _retry_after(reply)
    )


def _next_delay(attempt_count: int) -> timedelta | None:
    schedule = settings.PMS_WEBHOOK_RETRY_SCHEDULE
    if attempt_count > len(schedule):
        return None
    base = schedule[attempt_count - 1]
    return timedelta(seconds=base * random.uniform(0.9, 1.1))


def _earlier_open_delivery(delivery: WebhookDelivery) -> bool:
    """Is an earlier event about the same object still on its way to this endpoint?"""
    subject = delivery.event.subject
    if not subject:
        return False
    return WebhookDelivery.objects.filter(
        endpoint_id=delivery.endpoint_id,
        event__subject=subject,
        event_id__lt=delivery.event_id,
        status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
    ).exists()


def delivery_attempt(delivery_id: int, *, now: datetime | None = None) -> str:
    """Send one due delivery once; record the attempt and schedule what comes next.

    Return what happened: ``succeeded``, ``retrying``, ``failed``, ``waiting`` (an earlier
    event for the same object goes first) or ``skipped`` (not due, taken, or done).
    """
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint")
            .filter(
                pk=delivery_id,
                status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
            )
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .first()
        )
        if delivery is None:
            return "skipped"
        endpoint = delivery.endpoint
        if not endpoint.is_active:
            delivery.status, delivery.last_error = (
                WebhookDelivery.Status.FAILED,
                "endpoint disabled",
            )
            delivery.next_attempt_at = None
            delivery.save(update_fields=["status", "last_error", "next_attempt_at"])
            return "failed"
        # The queued task is running: from here on, next_attempt_at alone says when.
        delivery.queued_at = None
        if _earlier_open_delivery(delivery):
            delivery.next_attempt_at = now + timedelta(seconds=1)
            delivery.save(update_fields=["next_attempt_at", "queued_at"])
            return "waiting"
        # Lease it: another worker will not pick it up while this one is sending.
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["next_attempt_at", "queued_at"])
    result = _send(delivery, endpoint)
    return _record(delivery.pk, endpoint.pk, result)


def _record(delivery_id: int, endpoint_id, result: SendResult) -> str:
    now = timezone.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        DeliveryAttempt.objects.create(
            delivery=delivery,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            response_excerpt=result.excerpt,
            error=result.error,
        )
        delivery.attempt_count += 1
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error or (
            "" if result.status_code and result.status_code < 300 else f"HTTP {result.status_code}"
        )
        code = result.status_code or 0
        if 200 <= code < 300:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
                WebhookDelivery.Status.SUCCEEDED,
                now,
                None,
            )
            endpoint.failing_since, endpoint.last_success_at = None, now
            endpoint.save(update_fields=["failing_since", "last_success_at"])
            _release_next_for_subject(delivery)
        elif code == 410:
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
            if now - endpoint.failing_since >= timedelta(
                days=settings.PMS_WEBHOOK_DISABLE_AFTER_DAYS
            ):
                _disable(
                    endpoint,
                    f"failing for {settings.PMS_WEBHOOK_DISABLE_AFTER_DAYS} days straight",
                )
        delivery.save()
    metrics.count_webhook_delivery(delivery.status)
    return delivery.status


def _release_next_for_subject(delivery: WebhookDelivery) -> None:
    """Send the next waiting event about the same object right away, not at the next sweep."""
    subject = Event.objects.filter(pk=delivery.event_id).values_list("subject", flat=True).first()
    if not subject:
        return
    following = (
        WebhookDelivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            event__subject=subject,
            event_id__gt=delivery.event_id,
            status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
        )
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
    """Hand deliveries to workers now; if the broker is down, the due sweep sends them."""
    from webhooks.tasks import deliver

    if not delivery_ids:
        return
    # Marked as queued, the due sweep leaves them alone unless the task is lost.
    WebhookDelivery.objects.filter(pk__in=delivery_ids).update(queued_at=timezone.now())
    for delivery_id in delivery_ids:
        try:
            deliver.apply_async((delivery_id,), retry=False)
        except Exception:  # broker down: the due-delivery sweep sends it
            logger.warning("could not queue delivery %s; the sweep will", delivery_id)
            return
