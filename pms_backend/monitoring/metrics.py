"""Prometheus metrics, safe across server processes.

Under ``python -m pms_backend.server`` (and ``scripts/worker.sh``) every process writes its
samples to files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape merges them; without that
variable (tests, ``runserver``) the process's own registry is served. Business counters
move only after their transaction commits, so a rolled-back order counts for nothing.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.utils import floatToGoString

from pms_backend.monitoring.registry import scrape_gauges

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

# Every server process keeps one sample per label set and bucket, and a scrape merges them
# all: the labels and buckets here are what /metrics costs (scripts/bench.sh operations).
# Statuses by class (2xx ... 5xx), not code: six codes on a route would be six series.
HTTP_REQUESTS = Counter(
    "pms_http_requests",
    "HTTP requests served, by endpoint (URL name), method and status class (2xx, 3xx, 4xx, 5xx).",
    ["endpoint", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "pms_http_request_duration_seconds",
    "Time to serve an HTTP request, by endpoint (URL name) and method.",
    ["endpoint", "method"],
    # Eight bounds, from a cache hit (5 ms) to 5 s: past that a request is simply too slow.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)
ORDERS_PLACED = Counter("pms_orders_placed", "Orders placed (committed).")
STOCK_MOVEMENTS = Counter(
    "pms_stock_movements", "Stock ledger movements written (committed), by kind.", ["kind"]
)
WEBHOOK_DELIVERIES = Counter(
    "pms_webhook_deliveries",
    "Webhook delivery attempts, by outcome (succeeded, retrying, failed).",
    ["outcome"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "pms_websocket_connections",
    "Open websocket connections (summed over the live server processes).",
    multiprocess_mode="livesum",
)
CELERY_TASKS = Counter(
    "pms_celery_tasks",
    "Celery tasks finished, by task name and outcome (success, failure, retry, revoked).",
    ["task", "outcome"],
)
CELERY_TASK_DURATION = Histogram(
    "pms_celery_task_duration_seconds",
    "Celery task run time, by task name.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 150.0),
)


def observe_request(*, method: str, endpoint: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "other"
    HTTP_REQUESTS.labels(endpoint=endpoint, method=method, status=f"{status // 100}xx").inc()
    HTTP_LATENCY.labels(endpoint=endpoint, method=method).observe(seconds)


def count_order_placed() -> None:
    """Count one order when the caller's transaction commits."""
    transaction.on_commit(ORDERS_PLACED.inc)


def count_stock_movements(kind: str, count: int) -> None:
    """Count ``count`` movements of ``kind`` when the caller's transaction commits."""
    transaction.on_commit(lambda: STOCK_MOVEMENTS.labels(kind=kind).inc(count))


def count_webhook_delivery(outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


# --- scrape ----------------------------------------------------------------------------


class DatabaseCollector:
    """Numbers read from the database at scrape time, once per scrape (not per process):
    the outbox's, then those the domains register (``registry.ScrapeGauge``)."""

    def collect(self) -> Iterable[Metric]:
        # Here, not at the top: this module loads without Django set up (bench processes).
        from pms_backend.events.models import Event

        try:
            pending = Event.objects.filter(dispatched_at__isnull=True)
            oldest = pending.order_by("id").values_list("created_at", flat=True).first()
            readings = [(gauge, gauge.read()) for gauge in scrape_gauges()]
            undispatched = pending.count()
        except Exception:
            logger.warning("metrics: could not read the outbox", exc_info=True)
            return
        lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "pms_outbox_lag_seconds",
            "Age of the oldest event not yet dispatched from the outbox (0 when empty).",
            value=max(lag, 0.0),
        )
        yield GaugeMetricFamily(
            "pms_outbox_undispatched_events", "Events waiting in the outbox.", value=undispatched
        )
        for gauge, value in readings:
            yield GaugeMetricFamily(gauge.name, gauge.documentation, value=value)


class _ThisProcess:
    """The process's own registry, as a collector (no multiprocess directory)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> bytes:
    """Return every metric in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        forget_dead_processes(path)
        registry.register(process_collector(path))
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return generate_latest(registry)


def process_collector(path: str) -> ProcessFilesCollector:
    """The collector that sums the samples every process left in ``path``."""
    return ProcessFilesCollector(path)


class ProcessFilesCollector:
    """Every process's samples in a multiprocess folder, summed: what
    ``prometheus_client.multiprocess.MultiProcessCollector`` returns, faster.

    The library turns every entry of every file into a sample before it sums them, so a
    scrape cost 2-3 µs per process per series: with eight server processes' samples
    that was most of the time /metrics took (``scripts/bench.sh operations``). Counters
    and histograms are summed here by their raw key first and decoded once per series,
    whatever the number of processes. Gauges (a rule per multiprocess mode, a pid per
    live sample) and any other type still go through the library's merge.
    """

    SUMMED = ("counter", "histogram")

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterable[Metric]:
        summed: dict[str, list[str]] = {typ: [] for typ in self.SUMMED}
        others: list[str] = []
        for name in glob.glob(os.path.join(self.path, "*.db")):
            typ = os.path.basename(name).split("_", 1)[0]
            summed.get(typ, others).append(name)
        for typ, files in summed.items():
            yield from _summed(typ, files)
        if others:
            yield from multiprocess.MultiProcessCollector.merge(others, accumulate=True)


def _summed(typ: str, files: list[str]) -> Iterable[Metric]:
    totals: dict[str, float] = {}
    get = totals.get
    for name in files:
        try:
            # Private to the library (no public API reads these files this fast): pinned
            # in pyproject.toml, guarded by tests/unit/test_metrics_merge.py.
            entries = MmapedDict.read_all_values_from_file(name)
        except FileNotFoundError:  # the folder of a server that is stopping
            continue
        for key, value, _timestamp, _position in entries:
            totals[key] = get(key, 0.0) + value
    metrics: dict[str, Metric] = {}
    buckets: dict[tuple[str, tuple], dict[float, float]] = defaultdict(dict)
    for key, value in totals.items():
        metric_name, sample_name, labels, help_text = json.loads(key)
        metric = metrics.get(metric_name)
        if metric is None:
            metric = metrics[metric_name] = Metric(metric_name, help_text, typ)
        if typ == "histogram" and "le" in labels:
            bound = float(labels.pop("le"))
            buckets[metric_name, tuple(sorted(labels.items()))][bound] = value
        elif not (typ == "histogram" and sample_name.endswith("_count")):
            metric.add_sample(sample_name, dict(sorted(labels.items())), value)
    # Buckets count what fell at or below their bound; _count is the +Inf bucket.
    for (metric_name, labels), bounds in buckets.items():
        total = 0.0
        for bound in sorted(bounds):
            total += bounds[bound]
            metrics[metric_name].add_sample(
                metric_name + "_bucket", {**dict(labels), "le": floatToGoString(bound)}, total
            )
        metrics[metric_name].add_sample(metric_name + "_count", dict(labels), total)
    return metrics.values()


_PID_IN_NAME = re.compile(r"_(\d+)\.db$")


def forget_dead_processes(path: str) -> None:
    """Drop the live gauges of processes that are gone (killed, or restarted by uvicorn).

    Their counters stay: a counter's past increments are part of its total.
    """
    pids = set()
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = _PID_IN_NAME.search(name)
        if match:
            pids.add(int(match.group(1)))
    for pid in pids:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_this_process_dead() -> None:
    """At a clean exit, take this process's live gauges out of the sums."""
    path = multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(os.getpid(), path)
