"""Reading metric snapshots: a series in one query, the latest readings in one query."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db.models import Subquery

from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.periods import check_range, periods


def metric_series(
    *, names: list[str], granularity: str, since: datetime, until: datetime, now: datetime
) -> dict[str, list[tuple[datetime, MetricSnapshot | None]]]:
    """Return ``{name: [(period start, snapshot or None), ...]}`` for every period from
    ``since`` to ``until``, in one query whatever the length of the range.

    Raise ``InvalidInput`` for a range that ends before it starts or starts in the future.
    """
    check_range(since, until, now=now)
    found: dict[str, dict[datetime, MetricSnapshot]] = defaultdict(dict)
    starts = list(periods(since, until, granularity))
    for snapshot in MetricSnapshot.objects.filter(
        name__in=names,
        granularity=granularity,
        period_start__gte=starts[0],
        period_start__lt=until,
    ):
        found[snapshot.name][snapshot.period_start] = snapshot
    return {name: [(start, found[name].get(start)) for start in starts] for name in names}


def latest_snapshots(*, names: list[str], granularity: str) -> dict[str, MetricSnapshot]:
    """Return the snapshots of ``names`` taken in the latest period (one query).

    The collection job writes every level for the same period, so the first name's
    latest period is everyone's: found by one step down the unique index, whatever the
    length of the history.
    """
    if not names:
        return {}
    latest = (
        MetricSnapshot.objects.filter(name=names[0], granularity=granularity)
        .order_by("-period_start")
        .values("period_start")[:1]
    )
    return {
        snapshot.name: snapshot
        for snapshot in MetricSnapshot.objects.filter(
            name__in=names, granularity=granularity, period_start=Subquery(latest)
        )
    }
