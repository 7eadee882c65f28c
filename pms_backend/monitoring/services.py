"""The metric collection job: snapshot the shop's numbers per hour and per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Trunc
from django.utils import timezone

from pms_backend.events.models import Event
from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.periods import Granularity, check_range, period_start, periods
from pms_backend.monitoring.registry import flow_metrics, level_metrics, register_level_metrics

# A level of the platform's own; the domains name theirs (``<domain>/monitoring.py``).
OUTBOX_LAG = "events.outbox_lag_seconds"


@dataclass(frozen=True)
class Collected:
    rows: int
    since: datetime
    until: datetime


def metrics_collect(
    *, now: datetime | None = None, since: datetime | None = None, until: datetime | None = None
) -> Collected:
    """Snapshot every metric and return how many rows were written (inserted or replaced).

    Flows (what happened: orders placed, revenue, webhook success rate...) are computed
    for every hour and day from ``since`` to ``until``: by default from the start of
    yesterday to now, so each run also completes the periods the previous run saw
    half-way. Levels (stock value, webhook backlog, outbox lag...) can only be read now:
    they go to the current hour and day. The domains register both (``registry.py``). Running it
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
        for collect in flow_metrics():
            rows += collect(starts, granularity, now)
    levels: dict[str, tuple[Any, dict]] = {}
    for read in level_metrics():
        levels |= read(now)
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


def grouped_by_period(
    queryset: QuerySet, field: str, starts: list[datetime], granularity: str
) -> QuerySet:
    """Filter ``queryset`` to the periods in ``starts`` and annotate each row's ``period``."""
    end = starts[-1] + (timedelta(hours=1) if granularity == Granularity.HOUR else timedelta(1))
    return (
        queryset.filter(**{f"{field}__gte": starts[0], f"{field}__lt": end})
        .annotate(period=Trunc(field, granularity, tzinfo=UTC))
        .order_by()
    )


@register_level_metrics
def _outbox_levels(now: datetime) -> dict[str, tuple[Any, dict]]:
    undispatched = Event.objects.filter(dispatched_at__isnull=True)
    oldest = undispatched.order_by("id").values_list("created_at", flat=True).first()
    return {
        OUTBOX_LAG: (
            Decimal(max((now - oldest).total_seconds(), 0)).quantize(Decimal("0.001"))
            if oldest
            else Decimal("0"),
            {"undispatched": undispatched.count()},
        ),
    }


def money(amount) -> Decimal:
    """Return ``amount`` (``None``: zero) rounded to cents."""
    return Decimal(amount or 0).quantize(Decimal("0.01"))


def snapshot_row(
    name: str, granularity: str, start: datetime, now: datetime, value, data: dict | None = None
) -> MetricSnapshot:
    """Return the (unsaved) snapshot of ``name`` for the period starting at ``start``."""
    return MetricSnapshot(
        name=name,
        granularity=granularity,
        period_start=start,
        value=value,
        data=data or {},
        collected_at=now,
    )
