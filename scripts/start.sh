#!/usr/bin/env bash
# Production web process: apply migrations, then serve HTTP + websockets (ASGI, uvicorn)
# on $PORT with $WEB_CONCURRENCY processes; HTTPS/WSS with TLS 1.3 minimum when
# TLS_CERT_FILE and TLS_KEY_FILE are set.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
[ "${PMS_SKIP_INSTALL:-0}" = "1" ] || ensure_venv

# Production serves static files from the collected, hashed set (scripts/build.sh makes
# it); a server started without a build makes it here instead of failing on every page.
if [ ! -f staticfiles/staticfiles.json ]; then
  .venv/bin/python manage.py collectstatic --noinput -v0
fi

if [ "${PMS_SKIP_MIGRATE:-0}" != "1" ]; then
  DATABASE_URL="${DATABASE_MIGRATION_URL:-${DATABASE_URL:-}}" .venv/bin/python manage.py migrate --noinput
fi

# HOST, PORT, WEB_CONCURRENCY, TLS_CERT_FILE/TLS_KEY_FILE (TLS 1.3 minimum),
# FORWARDED_ALLOW_IPS, ACCESS_LOG, UVICORN_LOG_LEVEL: see pms_backend/server.py.
exec .venv/bin/python -m pms_backend.server
