"""The Celery application: settings come from Django's, under the CELERY_ prefix."""

import os

from celery import Celery
from celery.signals import task_prerun, worker_init

from pms_backend.monitoring.startup import log_backends

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")

app = Celery("pms_backend")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect(weak=False)
def drop_stale_connections(task=None, **kwargs) -> None:
    """Before a task, as Django does before a request: close connections past
    ``CONN_MAX_AGE`` or broken (a restarted PostgreSQL), keep the rest (CELERY_DB_REUSE_MAX
    stops Celery from closing them all)."""
    if task is not None and getattr(task.request, "is_eager", False):
        return  # runs inside the caller's transaction (tests)
    from django.db import close_old_connections

    close_old_connections()


@worker_init.connect(weak=False)
def log_backends_at_worker_start(**kwargs) -> None:
    log_backends()
