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
exec .venv/bin/celery -A pms_backend worker \
  --loglevel "${LOG_LEVEL:-info}" \
  --concurrency "${WORKER_CONCURRENCY:-2}" \
  "${args[@]}"
