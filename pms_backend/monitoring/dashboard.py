"""The staff dashboard on the admin index: cards and charts read from metric snapshots.

The domains register its sections (``registry.DashboardSection``); each section shows
only to staff holding its permission. The queries do not depend on
the number of days shown: a chart is one query over its whole range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from pms_backend.errors import InvalidInput
from pms_backend.monitoring.errors import MonitoringErrorCode as Code
from pms_backend.monitoring.models import MetricSnapshot
from pms_backend.monitoring.periods import Granularity
from pms_backend.monitoring.registry import dashboard_sections
from pms_backend.monitoring.selectors import latest_snapshots

DEFAULT_DAYS = 30
DAY_CHOICES = (7, 30, 90, 365)
MAX_DAYS = 365
CHART_WIDTH, CHART_HEIGHT, CHART_TOP, CHART_BOTTOM = 600, 170, 12, 150


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
    """Return what the admin index shows ``user``: only the sections they may see.

    ``sections`` lists them in order (template and content); each section's content is
    also under its name, ``None`` for a section the user may not see.
    """
    now = now or timezone.now()
    every = dashboard_sections()
    shown = [section for section in every if user.has_perm(section.permission)]
    if not user.is_active or not user.is_staff or not shown:
        return {"visible": False}
    days, error = _days(days_param)
    level_names = [name for section in shown for name in section.levels]
    latest = latest_snapshots(names=level_names, granularity=Granularity.HOUR)
    collected = [s.collected_at for s in latest.values()]
    built = {section.name: section.build(days, now, latest) for section in shown}
    return {
        "visible": True,
        "days": days,
        "day_choices": DAY_CHOICES,
        "error": error,
        "currency": settings.PMS_DEFAULT_CURRENCY,
        "as_of": max(collected) if collected else None,
        "sections": [
            {"template": section.template, "content": built[section.name]} for section in shown
        ],
    } | {section.name: built.get(section.name) for section in every}


def _days(days_param: str | None) -> tuple[int, str]:
    """Return the days to show and the error to show (the default days on a bad value)."""
    try:
        return parse_days(days_param), ""
    except InvalidInput as exc:
        return DEFAULT_DAYS, exc.detail


def snapshot_value(snapshot: MetricSnapshot | None) -> Decimal:
    """Return the snapshot's value; zero when there is none."""
    return snapshot.value if snapshot is not None and snapshot.value is not None else Decimal(0)


def chart(title: str, kind: str, points: list[tuple[datetime, Decimal]], *, digits: int) -> Chart:
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
