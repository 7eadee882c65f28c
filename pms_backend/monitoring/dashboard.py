"""The staff dashboard on the admin index: cards and charts read from metric snapshots.

Each section shows only to staff holding its permission. The queries do not depend on
the number of days shown: a chart is one query over its whole range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from pms_backend.errors import InvalidInput
from pms_backend.events.models import Event
from pms_backend.monitoring import services as names
from pms_backend.monitoring.errors import MonitoringErrorCode as Code
from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.periods import Granularity, period_start
from pms_backend.monitoring.selectors import latest_snapshots, metric_series
from webhooks.models import WebhookEndpoint

ORDERS_PERMISSION = "orders.view_order"
STOCK_PERMISSION = "catalog.view_product"
WEBHOOKS_PERMISSION = "webhooks.view_webhookendpoint"
DEFAULT_DAYS = 30
DAY_CHOICES = (7, 30, 90, 365)
MAX_DAYS = 365
CHART_WIDTH, CHART_HEIGHT, CHART_TOP, CHART_BOTTOM = 600, 170, 12, 150
LISTED_ENDPOINTS = 20


@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    cx: str  # the middle of the bar: the line chart's point
    label: str
    value: str


@dataclass(frozen=True)
class Chart:
    title: str
    kind: str  # "bar" or "line"
    bars: list[Bar]
    line: str
    peak: str
    first_label: str
    last_label: str
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    baseline: int = CHART_BOTTOM


def parse_days(raw: str | None) -> int:
    """Read the ``days`` query parameter; raise ``InvalidInput`` saying what is accepted."""
    if raw in (None, ""):
        return DEFAULT_DAYS
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(
            Code.INVALID_TIME_RANGE,
            f"days: {raw[:20]!r} is not a whole number of days from 1 to {MAX_DAYS}; "
            f"showing the last {DEFAULT_DAYS} days.",
        )
    return days


def dashboard_for(user, *, days_param: str | None = None, now: datetime | None = None) -> dict:
    """Return what the admin index shows ``user``: only the sections they may see."""
    now = now or timezone.now()
    can = {
        "orders": user.has_perm(ORDERS_PERMISSION),
        "stock": user.has_perm(STOCK_PERMISSION),
        "webhooks": user.has_perm(WEBHOOKS_PERMISSION),
    }
    if not user.is_active or not user.is_staff or not any(can.values()):
        return {"visible": False}
    error = ""
    try:
        days = parse_days(days_param)
    except InvalidInput as exc:
        days, error = DEFAULT_DAYS, exc.detail
    level_names = (
        ([names.ORDERS_BY_STATUS, names.PENDING_RESERVATIONS] if can["orders"] else [])
        + ([names.STOCK_VALUE, names.STOCK_LOW, names.STOCK_OUT] if can["stock"] else [])
        + ([names.WEBHOOK_BACKLOG] if can["webhooks"] else [])
    )
    latest = latest_snapshots(names=level_names, granularity=Granularity.HOUR)
    collected = [s.collected_at for s in latest.values()]
    return {
        "visible": True,
        "days": days,
        "day_choices": DAY_CHOICES,
        "error": error,
        "currency": settings.PMS_DEFAULT_CURRENCY,
        "as_of": max(collected) if collected else None,
        "orders": _orders(days, now, latest) if can["orders"] else None,
        "stock": _stock(latest) if can["stock"] else None,
        "webhooks": _webhooks(now, latest) if can["webhooks"] else None,
    }


def _value(snapshot: MetricSnapshot | None) -> Decimal:
    return snapshot.value if snapshot is not None and snapshot.value is not None else Decimal(0)


def _orders(days: int, now: datetime, latest: dict[str, MetricSnapshot]) -> dict[str, Any]:
    since = period_start(now, Granularity.DAY) - timedelta(days=days - 1)
    series = metric_series(
        names=[names.ORDERS_PLACED, names.REVENUE],
        granularity=Granularity.DAY,
        since=since,
        until=now,
        now=now,
    )
    placed = [(start, _value(s)) for start, s in series[names.ORDERS_PLACED]]
    revenue = [(start, _value(s)) for start, s in series[names.REVENUE]]
    other_currencies: dict[str, Decimal] = {}
    for _start, snapshot in series[names.REVENUE]:
        for currency, amount in (snapshot.data.get("currencies", {}) if snapshot else {}).items():
            if currency != settings.PMS_DEFAULT_CURRENCY:
                other_currencies[currency] = other_currencies.get(currency, 0) + Decimal(amount)
    by_status = latest.get(names.ORDERS_BY_STATUS)
    pending = latest.get(names.PENDING_RESERVATIONS)
    return {
        "placed_total": int(sum(v for _, v in placed)),
        "revenue_total": sum((v for _, v in revenue), Decimal(0)).quantize(Decimal("0.01")),
        "placed_today": int(placed[-1][1]),
        "revenue_today": revenue[-1][1].quantize(Decimal("0.01")),
        "other_currencies": {c: v.quantize(Decimal("0.01")) for c, v in other_currencies.items()},
        "by_status": by_status.data if by_status else {},
        "pending_orders": int(_value(pending)),
        "reserved_units": pending.data.get("units", 0) if pending else 0,
        "orders_chart": _chart(f"Orders per day, last {days} days", "bar", placed, digits=0),
        "revenue_chart": _chart(
            f"Revenue per day ({settings.PMS_DEFAULT_CURRENCY}), last {days} days",
            "line",
            revenue,
            digits=2,
        ),
    }


def _stock(latest: dict[str, MetricSnapshot]) -> dict[str, Any]:
    def listed(name: str) -> list[dict]:
        snapshot = latest.get(name)
        products = snapshot.data.get("products", []) if snapshot else []
        return [
            p | {"url": reverse("admin:catalog_product_change", args=[p["id"]])} for p in products
        ]

    value = latest.get(names.STOCK_VALUE)
    return {
        "value": _value(value).quantize(Decimal("0.01")),
        "value_by_currency": value.data.get("currencies", {}) if value else {},
        "low_count": int(_value(latest.get(names.STOCK_LOW))),
        "out_count": int(_value(latest.get(names.STOCK_OUT))),
        "low": listed(names.STOCK_LOW),
        "out": listed(names.STOCK_OUT),
    }


def _webhooks(now: datetime, latest: dict[str, MetricSnapshot]) -> dict[str, Any]:
    day = metric_series(
        names=[names.WEBHOOK_SUCCESS_RATE],
        granularity=Granularity.HOUR,
        since=now - timedelta(hours=23),
        until=now,
        now=now,
    )[names.WEBHOOK_SUCCESS_RATE]
    attempts = sum(s.data.get("attempts", 0) for _, s in day if s)
    succeeded = sum(s.data.get("succeeded", 0) for _, s in day if s)
    backlog = latest.get(names.WEBHOOK_BACKLOG)
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
        "backlog": int(_value(backlog)),
        "backlog_detail": backlog.data if backlog else {},
        "endpoints": endpoints,
        "outbox_lag_seconds": round(max((now - oldest).total_seconds(), 0), 1) if oldest else 0,
    }


def _chart(title: str, kind: str, points: list[tuple[datetime, Decimal]], *, digits: int) -> Chart:
    """Lay ``points`` out as bars (or a line through their tops) on a fixed canvas."""
    peak = max((v for _, v in points), default=Decimal(0))
    scale = (CHART_BOTTOM - CHART_TOP) / float(peak) if peak > 0 else 0.0
    slot = CHART_WIDTH / max(len(points), 1)
    gap = min(slot * 0.2, 4)
    bars = []
    for index, (start, value) in enumerate(points):
        height = float(value) * scale
        x = index * slot + gap / 2
        bars.append(
            Bar(
                x=f"{x:.2f}",
                y=f"{CHART_BOTTOM - height:.2f}",
                width=f"{slot - gap:.2f}",
                height=f"{height:.2f}",
                cx=f"{x + (slot - gap) / 2:.2f}",
                label=f"{start:%Y-%m-%d}",
                value=f"{value:.{digits}f}",
            )
        )
    line = " ".join(f"{bar.cx},{bar.y}" for bar in bars) if kind == "line" else ""
    return Chart(
        title=title,
        kind=kind,
        bars=bars,
        line=line,
        peak=f"{peak:.{digits}f}",
        first_label=bars[0].label if bars else "",
        last_label=bars[-1].label if bars else "",
    )
