"""What orders contribute to monitoring: order metrics and the dashboard's Orders section."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce

from inventory.models import Stock
from orders.models import Order
from pms_backend.monitoring.dashboard import chart, snapshot_value
from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.periods import Granularity, period_start
from pms_backend.monitoring.registry import (
    DashboardSection,
    register_dashboard_section,
    register_flow_metrics,
    register_level_metrics,
)
from pms_backend.monitoring.selectors import metric_series
from pms_backend.monitoring.services import grouped_by_period, money, snapshot_row
from pms_backend.plurals import counted

# Flows: what happened during the period.
ORDERS_PLACED = "orders.placed"
REVENUE = "orders.revenue"
# Levels: the last reading taken during the period.
ORDERS_BY_STATUS = "orders.by_status"
PENDING_RESERVATIONS = "orders.pending_reservations"

NOT_REVENUE = (Order.Status.CANCELLED, Order.Status.REFUNDED)
PERMISSION = "orders.view_order"


def _placed_and_revenue() -> dict[str, Any]:
    """The aggregates of orders placed and their revenue (cancelled and refunded excluded,
    partial refunds taken off), for the snapshots and for today's live count alike."""
    kept = F("total") - F("refunded_amount")
    return {"placed": Count("id"), "revenue": Sum(kept, filter=~Q(status__in=NOT_REVENUE))}


@register_flow_metrics
def order_flows(starts: list[datetime], granularity: str, now: datetime) -> list[MetricSnapshot]:
    """Orders placed and revenue (cancelled and refunded orders excluded) per period."""
    if not starts:
        return []
    counts: dict[datetime, int] = defaultdict(int)
    revenue: dict[datetime, dict[str, Decimal]] = defaultdict(dict)
    grouped = (
        grouped_by_period(Order.objects, "created_at", starts, granularity)
        .values("period", "currency")
        .annotate(**_placed_and_revenue())
    )
    for row in grouped:
        period = row["period"].astimezone(UTC)
        counts[period] += row["placed"]
        if row["revenue"]:
            revenue[period][row["currency"]] = money(row["revenue"])
    rows = []
    for start in starts:
        by_currency = revenue.get(start, {})
        rows.append(snapshot_row(ORDERS_PLACED, granularity, start, now, counts.get(start, 0)))
        rows.append(
            snapshot_row(
                REVENUE,
                granularity,
                start,
                now,
                by_currency.get(settings.PMS_DEFAULT_CURRENCY, Decimal("0")),
                {"currencies": {c: str(v) for c, v in sorted(by_currency.items())}},
            )
        )
    return rows


@register_level_metrics
def order_levels(now: datetime) -> dict[str, tuple[Any, dict]]:
    """Orders by status, and the pending ones with the units they hold."""
    by_status = {
        row["status"]: row["n"]
        for row in Order.objects.order_by().values("status").annotate(n=Count("id"))
    }
    reserved_units = Stock.objects.aggregate(units=Coalesce(Sum("reserved"), 0))["units"]
    return {
        ORDERS_BY_STATUS: (
            sum(by_status.values()),
            {status: by_status.get(status, 0) for status in Order.Status.values},
        ),
        PENDING_RESERVATIONS: (
            by_status.get(Order.Status.PENDING, 0),
            {"units": reserved_units},
        ),
    }


def _today_live(today: datetime) -> tuple[int, dict[str, Decimal]]:
    """Orders placed since ``today`` began and their revenue by currency, counted now (one
    query over a day's orders, by the ``created_at`` index)."""
    rows = (
        Order.objects.filter(created_at__gte=today)
        .order_by()
        .values("currency")
        .annotate(**_placed_and_revenue())
    )
    placed, revenue = 0, {}
    for row in rows:
        placed += row["placed"]
        if row["revenue"]:
            revenue[row["currency"]] = money(row["revenue"])
    return placed, revenue


def _pending_live() -> dict[str, int]:
    """The pending orders now and the units they hold (one query over the pending orders)."""
    return Order.objects.filter(status=Order.Status.PENDING).aggregate(
        orders=Count("id", distinct=True), units=Coalesce(Sum("items__quantity"), 0)
    )


def _other_currencies(amounts_by_currency: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Sum the revenue in currencies other than the shop's, per currency."""
    total: dict[str, Decimal] = {}
    for amounts in amounts_by_currency:
        for currency, amount in amounts.items():
            if currency != settings.PMS_DEFAULT_CURRENCY:
                total[currency] = total.get(currency, Decimal(0)) + Decimal(amount)
    return total


def orders_section(days: int, now: datetime, latest: dict[str, MetricSnapshot]) -> dict[str, Any]:
    """The dashboard's Orders section: today, the last ``days`` days, pending orders.

    Today's orders and revenue, and the pending orders, are counted live (two cheap
    queries), so an order placed a minute ago shows before the hourly collection runs;
    the days before today come from the snapshots, the orders by status from the latest.
    """
    today = period_start(now, Granularity.DAY)
    series = metric_series(
        names=[ORDERS_PLACED, REVENUE],
        granularity=Granularity.DAY,
        since=today - timedelta(days=days - 1),
        until=now,
        now=now,
    )
    placed_today, revenue_today = _today_live(today)
    default = settings.PMS_DEFAULT_CURRENCY
    # Today's live count stands in for today's snapshot.
    placed = [(start, snapshot_value(s)) for start, s in series[ORDERS_PLACED] if start < today]
    placed.append((today, Decimal(placed_today)))
    revenue = [(start, snapshot_value(s)) for start, s in series[REVENUE] if start < today]
    revenue.append((today, revenue_today.get(default, Decimal(0))))
    earlier = [s.data.get("currencies", {}) for t, s in series[REVENUE] if s and t < today]
    other_currencies = _other_currencies([*earlier, revenue_today])
    by_status = latest.get(ORDERS_BY_STATUS)
    pending = _pending_live()
    return {
        "placed_total": int(sum(v for _, v in placed)),
        "revenue_total": sum((v for _, v in revenue), Decimal(0)).quantize(Decimal("0.01")),
        "placed_today": placed_today,
        "revenue_today": revenue[-1][1].quantize(Decimal("0.01")),
        "other_currencies": {c: v.quantize(Decimal("0.01")) for c, v in other_currencies.items()},
        "by_status": by_status.data if by_status else {},
        "by_status_at": by_status.collected_at if by_status else None,
        "pending_orders": pending["orders"],
        "reserved_units": pending["units"],
        "orders_chart": chart(
            f"Orders per day, last {counted(days, 'day')}", "bar", placed, digits=0
        ),
        "revenue_chart": chart(
            f"Revenue per day ({settings.PMS_DEFAULT_CURRENCY}), last {counted(days, 'day')}",
            "line",
            revenue,
            digits=2,
        ),
    }


register_dashboard_section(
    DashboardSection(
        name="orders",
        permission=PERMISSION,
        levels=(ORDERS_BY_STATUS,),
        build=orders_section,
        template="orders/dashboard_section.html",
        position=10,
    )
)
