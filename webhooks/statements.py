"""The webhook pipeline's hottest statements, written out for PostgreSQL.

Django spent several times the CPU of running them compiling the querysets they replace
(``bench/webhook_worker_cpu.py``). Each text is built once from the models' own table and
column names; elsewhere (SQLite, for development) services use the ORM.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from django.db import connection

from pms_backend.events.models import Event
from pms_backend.raw_rows import build, quoted, select_list, width
from webhooks.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint

OPEN = ("pending", "retrying")
# A queued delivery's next attempt is when it was queued, by the clock of the process that
# queued it: at most this far ahead of the leasing worker's.
QUEUED_HORIZON = timedelta(seconds=60)


def available() -> bool:
    return connection.vendor == "postgresql"


@functools.cache
def success_sql() -> str:
    """Record a successful attempt (its row, the delivery done) and find the next open
    delivery about the same object to the same endpoint outside the batch: one statement,
    so one round trip and atomic without a transaction of its own."""
    attempts, a = quoted(DeliveryAttempt)
    deliveries, d = quoted(WebhookDelivery)
    return (
        f"WITH attempt AS (INSERT INTO {attempts} ({a['delivery_id']}, {a['attempted_at']}, "  # noqa: S608 -- model names
        f"{a['status_code']}, {a['latency_ms']}, {a['response_excerpt']}, {a['error']}) "
        "VALUES (%(id)s, %(now)s, %(code)s, %(latency)s, %(excerpt)s, '')), "
        f"done AS (UPDATE {deliveries} SET {d['status']} = 'succeeded', "
        f"{d['attempt_count']} = {d['attempt_count']} + 1, "
        f"{d['last_status_code']} = %(code)s, {d['last_error']} = '', "
        f"{d['delivered_at']} = %(now)s, {d['next_attempt_at']} = NULL "
        f"WHERE {d['id']} = %(id)s RETURNING {d['attempt_count']}) "
        f"SELECT (SELECT {d['attempt_count']} FROM done), "
        f"(SELECT o.{d['id']} FROM {deliveries} o WHERE %(subject)s <> '' "
        f"AND o.{d['endpoint_id']} = %(endpoint)s AND o.{d['subject']} = %(subject)s "
        f"AND o.{d['event_id']} > %(event)s AND o.{d['status']} IN {OPEN!r} "
        f"AND NOT (o.{d['id']} = ANY(%(batch)s)) ORDER BY o.{d['event_id']} LIMIT 1)"
    )


def record_success(params: dict[str, Any]) -> tuple[int | None, int | None]:
    """Run :func:`success_sql`; return the delivery's attempt count (None: the row is
    gone) and the id of the next delivery about the same object, if any."""
    with connection.cursor() as cursor:
        cursor.execute(success_sql(), params)
        attempts, following = cursor.fetchone()
    return attempts, following


@functools.cache
def lease_sql(by_endpoint: bool) -> str:
    """Lock the due deliveries (of an endpoint, or among given ids) that no other worker
    holds, earliest event first, with their events and endpoints and how many earlier
    events about the same object are still open for the same endpoint. An endpoint's task
    also takes those queued for a task (due when queued, whatever the clocks of the
    processes that queued them say)."""
    deliveries, d = quoted(WebhookDelivery)
    events, e = quoted(Event)
    endpoints, p = quoted(WebhookEndpoint)
    columns = ", ".join(
        select_list(model, alias)
        for model, alias in ((WebhookDelivery, "d"), (Event, "e"), (WebhookEndpoint, "p"))
    )
    due = f"d.{d['next_attempt_at']} IS NULL OR d.{d['next_attempt_at']} <= %(now)s"
    if by_endpoint:
        # Not the deliveries held behind an earlier one about the same object that is
        # neither due nor queued (failing, in its backoff; or in another worker's hands):
        # they would fill every batch and starve the endpoint's other objects. That one's
        # success wakes the next (success_sql); its giving up leaves them to the due sweep.
        chosen = (
            f"d.{d['endpoint_id']} = %(endpoint)s AND NOT EXISTS (SELECT 1 FROM {deliveries} b "  # noqa: S608 -- model names
            f"WHERE b.{d['endpoint_id']} = d.{d['endpoint_id']} AND d.{d['subject']} <> '' "
            f"AND b.{d['subject']} = d.{d['subject']} AND b.{d['event_id']} < d.{d['event_id']} "
            f"AND b.{d['status']} IN {OPEN!r} AND b.{d['queued_at']} IS NULL "
            f"AND b.{d['next_attempt_at']} > %(now)s)"
        )
        # Queued ones whatever their next attempt (another process's clock set it), yet
        # within the horizon: a range of delivery_due_idx, never a walk over a failing
        # endpoint's whole backlog in its backoff (200,000 rows: 40-100 ms a task).
        due = (
            f"(d.{d['next_attempt_at']} IS NULL OR d.{d['next_attempt_at']} <= %(horizon)s) "
            f"AND ({due} OR d.{d['queued_at']} IS NOT NULL)"
        )
    else:
        chosen = f"d.{d['id']} = ANY(%(ids)s)"
    return (
        f"SELECT {columns}, CASE WHEN d.{d['subject']} = '' THEN 0 ELSE "  # noqa: S608 -- model names
        f"(SELECT count(*) FROM {deliveries} o WHERE o.{d['endpoint_id']} = d.{d['endpoint_id']} "
        f"AND o.{d['subject']} = d.{d['subject']} AND o.{d['event_id']} < d.{d['event_id']} "
        f"AND o.{d['status']} IN {OPEN!r}) END "
        f"FROM {deliveries} d JOIN {events} e ON e.{e['id']} = d.{d['event_id']} "
        f"JOIN {endpoints} p ON p.{p['id']} = d.{d['endpoint_id']} "
        f"WHERE {chosen} AND d.{d['status']} IN {OPEN!r} AND ({due}) "
        f"ORDER BY d.{d['event_id']} LIMIT %(limit)s FOR UPDATE OF d SKIP LOCKED"
    )


def lease_rows(ids: list[int], endpoint_id, now, limit: int | None) -> list[WebhookDelivery]:
    """Run :func:`lease_sql` (in the caller's transaction); return the deliveries, each
    with its event, its endpoint (one instance per endpoint) and ``earlier_open``."""
    with connection.cursor() as cursor:
        cursor.execute(
            lease_sql(endpoint_id is not None),
            {
                "ids": ids,
                "endpoint": endpoint_id,
                "now": now,
                "horizon": now + QUEUED_HORIZON,
                "limit": limit,
            },
        )
        rows = cursor.fetchall()
    first, second = width(WebhookDelivery), width(WebhookDelivery) + width(Event)
    endpoints: dict[Any, WebhookEndpoint] = {}
    leased = []
    for row in rows:
        delivery = build(WebhookDelivery, row[:first])
        delivery.event = build(Event, row[first:second])
        endpoint = endpoints.get(delivery.endpoint_id)
        if endpoint is None:
            endpoint = endpoints[delivery.endpoint_id] = build(WebhookEndpoint, row[second:-1])
        delivery.endpoint = endpoint
        delivery.earlier_open = row[-1]
        leased.append(delivery)
    return leased


@functools.cache
def lease_update_sql() -> str:
    deliveries, d = quoted(WebhookDelivery)
    return (
        f"UPDATE {deliveries} SET {d['next_attempt_at']} = %s, {d['queued_at']} = NULL "  # noqa: S608 -- model names
        f"WHERE {d['id']} = ANY(%s)"
    )


def set_leased(ids: list[int], until) -> None:
    """Mark deliveries as taken until ``until``, no longer queued."""
    with connection.cursor() as cursor:
        cursor.execute(lease_update_sql(), [until, ids])


@functools.cache
def deliveries_insert_sql() -> str:
    """Insert pending, queued deliveries (``unnest`` of event, endpoint and subject
    arrays), the ones that exist already left alone; return ``endpoint, id`` of the new
    ones in (endpoint, event) order."""
    deliveries, d = quoted(WebhookDelivery)
    meta = WebhookDelivery._meta
    types = {name: meta.get_field(name).db_type(connection) for name in ("event", "endpoint")}
    return (
        f"WITH new AS (INSERT INTO {deliveries} ({d['event_id']}, {d['endpoint_id']}, "  # noqa: S608 -- model names
        f"{d['subject']}, {d['status']}, {d['attempt_count']}, {d['next_attempt_at']}, "
        f"{d['queued_at']}, {d['last_error']}, {d['created_at']}) "
        "SELECT t.event, t.endpoint, t.subject, 'pending', 0, %(now)s, %(now)s, '', %(now)s "
        f"FROM unnest(%(events)s::{types['event']}[], %(endpoints)s::{types['endpoint']}[], "
        "%(subjects)s::text[]) AS t(event, endpoint, subject) "
        f"ON CONFLICT DO NOTHING RETURNING {d['endpoint_id']}, {d['id']}, {d['event_id']}) "
        f"SELECT {d['endpoint_id']}, {d['id']} FROM new "
        f"ORDER BY {d['endpoint_id']}, {d['event_id']}"
    )


def insert_deliveries(rows: list[WebhookDelivery], now) -> list[tuple[Any, int]]:
    """Insert ``rows`` (unsaved deliveries) as :func:`deliveries_insert_sql` does; return
    ``(endpoint id, delivery id)`` of those inserted."""
    with connection.cursor() as cursor:
        cursor.execute(
            deliveries_insert_sql(),
            {
                "now": now,
                "events": [row.event_id for row in rows],
                "endpoints": [row.endpoint_id for row in rows],
                "subjects": [row.subject for row in rows],
            },
        )
        return cursor.fetchall()


@functools.cache
def active_endpoints_sql() -> str:
    table, c = quoted(WebhookEndpoint)
    return (
        f"SELECT {select_list(WebhookEndpoint, table)} FROM {table} "  # noqa: S608 -- model names
        f"WHERE {c['is_active']} ORDER BY {c['created_at']}"
    )


def active_endpoints() -> list[WebhookEndpoint]:
    """The active endpoints (each event's dispatch reads them)."""
    with connection.cursor() as cursor:
        cursor.execute(active_endpoints_sql())
        return [build(WebhookEndpoint, row) for row in cursor.fetchall()]
