"""Celery task outcomes for ``/metrics``, from Celery's signals, and the worker's exporter.

A worker is scraped on its own port (``PMS_WORKER_METRICS_PORT``, on
``PMS_WORKER_METRICS_HOST``, loopback unless set): its pool processes write their samples
to the worker's multiprocess folder (``scripts/worker.sh`` makes it) and the main process
serves their sum.
"""

from __future__ import annotations

import logging
import os
import time

from celery import signals
from prometheus_client import CollectorRegistry, start_http_server

from pms_backend.monitoring import metrics

logger = logging.getLogger(__name__)

_started: dict[str, float] = {}


@signals.task_prerun.connect
def _task_started(task_id=None, **kwargs) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **kwargs) -> None:
    name = getattr(task, "name", None) or "unknown"
    metrics.CELERY_TASKS.labels(task=name, outcome=(state or "unknown").lower()).inc()
    started = _started.pop(task_id, None)
    if started is not None:
        metrics.CELERY_TASK_DURATION.labels(task=name).observe(time.perf_counter() - started)


@signals.task_revoked.connect
def _task_revoked(request=None, **kwargs) -> None:
    name = getattr(request, "task", None) or "unknown"
    metrics.CELERY_TASKS.labels(task=name, outcome="revoked").inc()


def keep_json_logs(**kwargs) -> None:
    """Connected in production: Celery leaves Django's JSON logging as it is."""


@signals.worker_process_shutdown.connect
def _pool_process_gone(**kwargs) -> None:
    metrics.mark_this_process_dead()


@signals.worker_ready.connect
def _serve_worker_metrics(**kwargs) -> None:
    port = os.environ.get("PMS_WORKER_METRICS_PORT", "")
    path = metrics.multiprocess_dir()
    if not port:
        return
    if not path:
        logger.warning("PMS_WORKER_METRICS_PORT is set but PROMETHEUS_MULTIPROC_DIR is not")
        return
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.process_collector(path))
    host = os.environ.get("PMS_WORKER_METRICS_HOST", "127.0.0.1")
    start_http_server(int(port), addr=host, registry=registry)
    logger.info("worker metrics on http://%s:%s/metrics", host, port)
