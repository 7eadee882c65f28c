"""The metric collection job: snapshot the shop's numbers per hour and per day."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    Sum,
)
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from catalog.models import Product
from inventory.models import LOW_STOCK_SETTING, Stock
from orders.models import Order
from pms_backend.events.models import Event
from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.periods import Granularity, check_range, period_start, periods
from pms_backend.shopsettings.cache import stored_values
from pms_backend.shopsettings.selectors import setting_get, setting_get_many
from webhooks.models import DeliveryAttempt, WebhookDelivery

# Flows: what happened during the period.
ORDERS_PLACED = "orders.placed"
REVENUE = "orders.revenue"
WEBHOOK_SUCCESS_RATE = "webhooks.success_rate"
# Levels: the last reading taken during the period.
ORDERS_BY_STATUS = "orders.by_status"
PENDING_RESERVATIONS = "orders.pending_reservations"
STOCK_VALUE = "stock.value"
STOCK_LOW = "stock.low"
STOCK_OUT = "stock.out"
WEBHOOK_BACKLOG = "webhooks.backlog"
OUTBOX_LAG = "events.outbox_lag_seconds"

LISTED_PRODUCTS = 50  # products named in a low- or out-of-stock snapshot
NOT_REVENUE = (Order.Status.CANCELLED, Order.Status.REFUNDED)


@dataclass(frozen=True)
class Collected:
    rows: int
    since: datetime
    until: datetime


def metrics_collect(
    *, now: datetime | None = None, since: datetime | None = None, until: datetime | None = None
) -> Collected:
    """Snapshot every metric and return how many rows were written (inserted or replaced).

    Flows (orders placed, revenue, webhook success rate) are computed for every hour and
    day from ``since`` to ``until``: by default from the start of yesterday to now, so
    each run also completes the periods the previous run saw half-way. Levels (orders by
    status, pending reservations, stock value, low and out of stock, webhook backlog,
    outbox lag) can only be read now: they go to the current hour and day. Running it
    twice writes the same rows again, never a second set. Raise ``InvalidInput`` for a
    range that ends before it starts, starts in the future or is longer than 400 days.
    """
    now = now or timezone.now()
    until = min(until or now, now)  # a future period has no numbers yet
    since = since or period_start(now, Granularity.DAY) - timedelta(days=1)
    check_range(since, until, now=now)
    rows: list[MetricSnapshot] = []
    for granularity in (Granularity.HOUR, Granularity.DAY):
        starts = list(periods(since, until, granularity))
        rows += _order_flows(starts, granularity, now)
        rows += _webhook_flows(starts, granularity, now)
    levels = _levels(now)
    for granularity in (Granularity.HOUR, Granularity.DAY):
        start = period_start(now, granularity)
        rows += [
            MetricSnapshot(
                name=name,
                granularity=granularity,
                period_start=start,
                value=value,
                data=data,
                collected_at=now,
            )
            for name, (value, data) in levels.items()
        ]
    MetricSnapshot.objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["name", "granularity", "period_start"],
        update_fields=["value", "data", "collected_at"],
    )
    return Collected(rows=len(rows), since=since, until=until)


def _grouped(queryset, field: str, starts: list[datetime], granularity: str):
    """Filter ``queryset`` to the periods in ``starts`` and group it by period."""
    end = starts[-1] + (timedelta(hours=1) if granularity == Granularity.HOUR else timedelta(1))
    return (
        queryset.filter(**{f"{field}__gte": starts[0], f"{field}__lt": end})
        .annotate(period=Trunc(field, granularity, tzinfo=UTC))
        .order_by()
    )


def _order_flows(starts: list[datetime], granularity: str, now: datetime) -> list[MetricSnapshot]:
    if not starts:
        return []
    counts: dict[datetime, int] = defaultdict(int)
    revenue: dict[datetime, dict[str, Decimal]] = defaultdict(dict)
    grouped = (
        _grouped(Order.objects, "created_at", starts, granularity)
        .values("period", "currency")
        .annotate(
            placed=Count("id"),
            revenue=Sum("total", filter=~Q(status__in=NOT_REVENUE)),
        )
    )
    for row in grouped:
        period = row["period"].astimezone(UTC)
        counts[period] += row["placed"]
        if row["revenue"]:
            revenue[period][row["currency"]] = _money(row["revenue"])
    rows = []
    for start in starts:
        by_currency = revenue.get(start, {})
        rows.append(_row(ORDERS_PLACED, granularity, start, now, counts.get(start, 0)))
        rows.append(
            _row(
                REVENUE,
                granularity,
                start,
                now,
                by_currency.get(settings.PMS_DEFAULT_CURRENCY, Decimal("0")),
                {"currencies": {c: str(v) for c, v in sorted(by_currency.items())}},
            )
        )
    return rows


def _webhook_flows(starts: list[datetime], granularity: str, now: datetime) -> list[MetricSnapshot]:
    if not starts:
        return []
    grouped = (
        _grouped(DeliveryAttempt.objects, "attempted_at", starts, granularity)
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
            _row(
                WEBHOOK_SUCCESS_RATE,
                granularity,
                start,
                now,
                rate.quantize(Decimal("0.0001")) if rate is not None else None,
                {"attempts": attempts, "succeeded": succeeded},
            )
        )
    return rows


def _levels(now: datetime) -> dict[str, tuple[Any, dict]]:
    """Return ``{name: (value, data)}`` for every level metric, read now."""
    by_status = {
        row["status"]: row["n"]
        for row in Order.objects.order_by().values("status").annotate(n=Count("id"))
    }
    reserved_units = Stock.objects.aggregate(units=Coalesce(Sum("reserved"), 0))["units"]
    value_by_currency = {
        row["product__currency"]: row["value"]
        for row in Stock.objects.order_by()
        .values("product__currency")
        .annotate(
            value=Sum(
                ExpressionWrapper(
                    F("on_hand") * F("product__price"),
                    output_field=DecimalField(max_digits=20, decimal_places=2),
                )
            )
        )
    }
    low, out = _stock_shortages()
    backlog = {
        row["status"]: row["n"]
        for row in WebhookDelivery.objects.filter(
            status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING]
        )
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
    }
    undispatched = Event.objects.filter(dispatched_at__isnull=True)
    oldest = undispatched.order_by("id").values_list("created_at", flat=True).first()
    return {
        ORDERS_BY_STATUS: (
            sum(by_status.values()),
            {status: by_status.get(status, 0) for status in Order.Status.values},
        ),
        PENDING_RESERVATIONS: (
            by_status.get(Order.Status.PENDING, 0),
            {"units": reserved_units},
        ),
        STOCK_VALUE: (
            _money(value_by_currency.get(settings.PMS_DEFAULT_CURRENCY)),
            {"currencies": {c: str(_money(v)) for c, v in sorted(value_by_currency.items())}},
        ),
        STOCK_LOW: low,
        STOCK_OUT: out,
        WEBHOOK_BACKLOG: (
            sum(backlog.values()),
            {"pending": backlog.get("pending", 0), "retrying": backlog.get("retrying", 0)},
        ),
        OUTBOX_LAG: (
            Decimal(max((now - oldest).total_seconds(), 0)).quantize(Decimal("0.001"))
            if oldest
            else Decimal("0"),
            {"undispatched": undispatched.count()},
        ),
    }


def _stock_shortages() -> tuple[tuple[int, dict], tuple[int, dict]]:
    """Return the low-stock and out-of-stock readings of the published catalog.

    Out of stock: nothing available (a product without a stock row has none). Low: some
    available, but no more than the product's low-stock threshold (settings service).
    """
    shop_threshold = setting_get(LOW_STOCK_SETTING)
    own_thresholds = stored_values().product_values.get(LOW_STOCK_SETTING, {})
    # Only products at or below the highest threshold in force can be short.
    bound = max([shop_threshold, *own_thresholds.values()])
    candidates = list(
        Product.objects.filter(status=Product.Status.PUBLISHED)
        .annotate(
            available=ExpressionWrapper(
                Coalesce(F("stock__on_hand"), 0) - Coalesce(F("stock__reserved"), 0),
                output_field=IntegerField(),
            )
        )
        .filter(available__lte=bound)
        .order_by("available", "name", "id")
        .values("id", "sku", "name", "available")
    )
    thresholds = setting_get_many(LOW_STOCK_SETTING, product_ids=[p["id"] for p in candidates])
    low, out = [], []
    for product in candidates:
        threshold = thresholds[product["id"]]
        if product["available"] <= 0:
            out.append(product | {"threshold": threshold})
        elif product["available"] <= threshold:
            low.append(product | {"threshold": threshold})
    return (
        (len(low), {"products": low[:LISTED_PRODUCTS]}),
        (len(out), {"products": out[:LISTED_PRODUCTS]}),
    )


def _money(amount) -> Decimal:
    return Decimal(amount or 0).quantize(Decimal("0.01"))


def _row(
    name: str, granularity: str, start: datetime, now: datetime, value, data: dict | None = None
) -> MetricSnapshot:
    return MetricSnapshot(
        name=name,
        granularity=granularity,
        period_start=start,
        value=value,
        data=data or {},
        collected_at=now,
    )
