"""gunicorn's settings for the HTTP processes of the web tier (``pms_backend/server.py``).

Sync workers: one request at a time per process, Django's sync stack with no thread
hand-off. They sit behind nginx on a private unix socket; nginx reads bodies whole and
holds slow clients, so a sync worker is never tied up by the network.
"""

import os

from prometheus_client import multiprocess

# pms_backend/server.py sets PMS_RUN_DIR (a private folder) for the processes it starts.
bind = f"unix:{os.environ.get('PMS_RUN_DIR', 'var/run/web')}/http.sock"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
# Load Django once in the master: workers fork from it (faster start, shared pages).
preload_app = True
backlog = 2048
# A request still running after this is a bug or a stuck dependency: the worker is
# replaced (and the client gets 502 from nginx) rather than held forever.
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
graceful_timeout = 20
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")
# The socket is in a folder only this user can open; nginx is the only peer.
forwarded_allow_ips = "*"
proc_name = "pms-http"


def child_exit(server, worker):
    """A worker that is gone (replaced, killed) leaves the live gauges' sums."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        multiprocess.mark_process_dead(worker.pid, path)
