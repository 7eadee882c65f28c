"""What webhooks contribute to monitoring: delivery metrics, the backlog gauge of
``/metrics`` and the dashboard's Webhooks and events section."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q
from django.urls import reverse

from pms_backend.events.models import Event
from pms_backend.monitoring.dashboard import snapshot_value
from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.periods import Granularity
from pms_backend.monitoring.registry import (
    DashboardSection,
    ScrapeGauge,
    register_dashboard_section,
    register_flow_metrics,
    register_level_metrics,
    register_scrape_gauge,
)
from pms_backend.monitoring.selectors import metric_series
from pms_backend.monitoring.services import grouped_by_period, snapshot_row
from webhooks.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint

# Flows: what happened during the period.
WEBHOOK_SUCCESS_RATE = "webhooks.success_rate"
# Levels: the last reading taken during the period.
WEBHOOK_BACKLOG = "webhooks.backlog"

PERMISSION = "webhooks.view_webhookendpoint"
LISTED_ENDPOINTS = 20
WAITING = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING)


@register_flow_metrics
def webhook_flows(starts: list[datetime], granularity: str, now: datetime) -> list[MetricSnapshot]:
    """The share of delivery attempts answered 2xx, per period."""
    if not starts:
        return []
    grouped = (
        grouped_by_period(DeliveryAttempt.objects.all(), "attempted_at", starts, granularity)
        .values("period")
        .annotate(
            attempts=Count("id"),
            succeeded=Count("id", filter=Q(status_code__gte=200, status_code__lt=300)),
        )
    )
    found = {row["period"].astimezone(UTC): row for row in grouped}
    rows = []
    for start in starts:
        row = found.get(start)
        attempts, succeeded = (row["attempts"], row["succeeded"]) if row else (0, 0)
        rate = Decimal(succeeded) / Decimal(attempts) if attempts else None
        rows.append(
            snapshot_row(
                WEBHOOK_SUCCESS_RATE,
                granularity,
                start,
                now,
                rate.quantize(Decimal("0.0001")) if rate is not None else None,
                {"attempts": attempts, "succeeded": succeeded},
            )
        )
    return rows


@register_level_metrics
def webhook_levels(now: datetime) -> dict[str, tuple[Any, dict]]:
    """Deliveries pending or waiting for a retry."""
    backlog = {
        row["status"]: row["n"]
        for row in WebhookDelivery.objects.filter(status__in=WAITING)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
    }
    return {
        WEBHOOK_BACKLOG: (
            sum(backlog.values()),
            {"pending": backlog.get("pending", 0), "retrying": backlog.get("retrying", 0)},
        ),
    }


def _backlog() -> float:
    return WebhookDelivery.objects.filter(status__in=WAITING).count()


register_scrape_gauge(
    ScrapeGauge(
        name="pms_webhook_backlog",
        documentation="Webhook deliveries pending or waiting for a retry.",
        read=_backlog,
    )
)


def webhooks_section(days: int, now: datetime, latest: dict[str, MetricSnapshot]) -> dict[str, Any]:
    """The dashboard's Webhooks and events section: the last 24 hours, the backlog, the
    endpoints failing or disabled, the outbox lag."""
    day = metric_series(
        names=[WEBHOOK_SUCCESS_RATE],
        granularity=Granularity.HOUR,
        since=now - timedelta(hours=23),
        until=now,
        now=now,
    )[WEBHOOK_SUCCESS_RATE]
    attempts = sum(s.data.get("attempts", 0) for _, s in day if s)
    succeeded = sum(s.data.get("succeeded", 0) for _, s in day if s)
    backlog = latest.get(WEBHOOK_BACKLOG)
    endpoints = [
        {
            "name": str(endpoint),
            "url": reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]),
            "state": "disabled" if not endpoint.is_active else "failing",
            "since": endpoint.disabled_at if not endpoint.is_active else endpoint.failing_since,
            "reason": endpoint.disabled_reason,
        }
        for endpoint in WebhookEndpoint.objects.filter(
            Q(is_active=False) | Q(failing_since__isnull=False)
        ).order_by("is_active", "-failing_since")[:LISTED_ENDPOINTS]
    ]
    oldest = (
        Event.objects.filter(dispatched_at__isnull=True)
        .order_by("id")
        .values_list("created_at", flat=True)
        .first()
    )
    return {
        "attempts": attempts,
        "succeeded": succeeded,
        "success_rate": round(100 * succeeded / attempts, 1) if attempts else None,
        "backlog": int(snapshot_value(backlog)),
        "backlog_detail": backlog.data if backlog else {},
        "endpoints": endpoints,
        "outbox_lag_seconds": round(max((now - oldest).total_seconds(), 0), 1) if oldest else 0,
    }


register_dashboard_section(
    DashboardSection(
        name="webhooks",
        permission=PERMISSION,
        levels=(WEBHOOK_BACKLOG,),
        build=webhooks_section,
        template="webhooks/dashboard_section.html",
        position=30,
    )
)
