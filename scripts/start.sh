#!/usr/bin/env bash
# Production web process: apply migrations, then serve HTTP + websockets (ASGI, uvicorn)
# on $PORT with $WEB_CONCURRENCY processes. TLS when TLS_CERT_FILE and TLS_KEY_FILE are set.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
[ "${PMS_SKIP_INSTALL:-0}" = "1" ] || ensure_venv

PORT="${PORT:-8000}"
HOST="${HOST:-0.0.0.0}"
WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}"

if [ "${PMS_SKIP_MIGRATE:-0}" != "1" ]; then
  .venv/bin/python manage.py migrate --noinput
fi

args=(pms_backend.asgi:application
      --host "$HOST" --port "$PORT"
      --workers "$WEB_CONCURRENCY"
      --proxy-headers --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}"
      --timeout-graceful-shutdown 20
      --log-level "${UVICORN_LOG_LEVEL:-warning}")
if [ "${ACCESS_LOG:-0}" != "1" ]; then
  args+=(--no-access-log)
fi
if [ -n "${TLS_CERT_FILE:-}" ] || [ -n "${TLS_KEY_FILE:-}" ]; then
  if [ ! -r "${TLS_CERT_FILE:-}" ] || [ ! -r "${TLS_KEY_FILE:-}" ]; then
    echo "error: TLS_CERT_FILE and TLS_KEY_FILE must both name readable files" >&2
    exit 2
  fi
  args+=(--ssl-certfile "$TLS_CERT_FILE" --ssl-keyfile "$TLS_KEY_FILE")
fi

echo "==> serving on ${HOST}:${PORT} with ${WEB_CONCURRENCY} process(es)" >&2
exec .venv/bin/uvicorn "${args[@]}"
