"""What the domains contribute to monitoring; the platform knows none of them by name.

A domain registers, from its ``AppConfig.ready()``:

- *flow metrics*: a function that snapshots what happened during a list of periods;
- *level metrics*: a function that reads its numbers now;
- *scrape gauges*: numbers ``/metrics`` reads from the database at each scrape;
- *dashboard sections*: a block of cards on the admin index, shown to staff holding its
  permission, built from the metric snapshots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pms_backend.monitoring.models import MetricSnapshot

# (period starts, granularity, now) -> one snapshot row per metric and period
FlowMetrics = Callable[[list[datetime], str, datetime], list["MetricSnapshot"]]
# now -> {metric name: (value, data)}
LevelMetrics = Callable[[datetime], dict[str, tuple[Any, dict]]]


@dataclass(frozen=True)
class ScrapeGauge:
    """A number ``/metrics`` reads from the database at each scrape (once, not per process)."""

    name: str
    documentation: str
    read: Callable[[], float]


@dataclass(frozen=True)
class DashboardSection:
    """A block of the staff dashboard.

    ``build(days, now, latest)`` returns what ``template`` shows; ``latest`` holds the
    snapshots of ``levels`` from the latest hour. Sections show in ``position`` order.
    """

    name: str
    permission: str
    levels: tuple[str, ...]
    build: Callable[[int, datetime, dict[str, MetricSnapshot]], dict[str, Any]]
    template: str
    position: int


_flows: list[FlowMetrics] = []
_levels: list[LevelMetrics] = []
_gauges: dict[str, ScrapeGauge] = {}
_sections: dict[str, DashboardSection] = {}


def register_flow_metrics(collect: FlowMetrics) -> FlowMetrics:
    """Have the collection job call ``collect`` for every hour and day it snapshots."""
    if collect not in _flows:
        _flows.append(collect)
    return collect


def register_level_metrics(read: LevelMetrics) -> LevelMetrics:
    """Have the collection job call ``read`` once per run for the current hour and day."""
    if read not in _levels:
        _levels.append(read)
    return read


def register_scrape_gauge(gauge: ScrapeGauge) -> None:
    _gauges[gauge.name] = gauge


def register_dashboard_section(section: DashboardSection) -> None:
    _sections[section.name] = section


def flow_metrics() -> list[FlowMetrics]:
    return list(_flows)


def level_metrics() -> list[LevelMetrics]:
    return list(_levels)


def scrape_gauges() -> list[ScrapeGauge]:
    return list(_gauges.values())


def dashboard_sections() -> list[DashboardSection]:
    return sorted(_sections.values(), key=lambda section: section.position)
