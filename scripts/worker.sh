#!/usr/bin/env bash
# Celery worker. --beat also runs the scheduler (run exactly one beat per deployment).
# Other arguments go to `celery worker` (e.g. -Q queue, -n name@%h).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
[ "${PMS_SKIP_INSTALL:-0}" = "1" ] || ensure_venv

args=()
for arg in "$@"; do
  if [ "$arg" = "--beat" ]; then args+=(--beat); else args+=("$arg"); fi
done
mkdir -p var
# Django's connection pool is for the web process's threads. Celery's Django fixup closes
# a prefork child's pool before and after every task, so with it each task opened a new
# pool (two connections and its threads) twice: deliveries crawled (scripts/bench.sh
# events). One plain connection per worker process instead, kept between tasks
# (CELERY_DB_REUSE_MAX in the settings).
export DATABASE_POOL="${DATABASE_POOL:-false}"
# Prometheus samples of this worker's processes (task outcomes, webhook deliveries), served
# on PMS_WORKER_METRICS_PORT when set: a folder per worker, named for its pid (exec keeps
# it); folders of workers that are no longer running are removed.
metrics_root="${PMS_METRICS_DIR:-$PWD/var/metrics}"
mkdir -p "$metrics_root"
for dir in "$metrics_root"/worker-*; do
  if [ -d "$dir" ] && ! kill -0 "${dir##*-}" 2>/dev/null; then rm -rf "$dir"; fi
done
export PROMETHEUS_MULTIPROC_DIR="$metrics_root/worker-$$"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
exec .venv/bin/celery -A pms_backend worker \
  --loglevel "${LOG_LEVEL:-info}" \
  --concurrency "${WORKER_CONCURRENCY:-2}" \
  "${args[@]}"
