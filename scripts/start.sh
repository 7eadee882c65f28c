#!/usr/bin/env bash
# Production web tier: apply migrations, then serve HTTP and websockets on $PORT (one
# address; HTTPS/WSS with TLS 1.3 minimum when TLS_CERT_FILE and TLS_KEY_FILE are set):
# nginx in front, $WEB_CONCURRENCY gunicorn processes for HTTP, $WS_CONCURRENCY uvicorn
# processes for /ws/ (pms_backend/server.py). Needs nginx (scripts/build.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
source scripts/lib/system.sh
[ "${PMS_SKIP_INSTALL:-0}" = "1" ] || ensure_venv
[ -n "${NGINX_BIN:-}" ] || ensure_system_package nginx nginx "the web tier's front"

# Production serves static files from the collected, hashed set (scripts/build.sh makes
# it); a server started without a build makes it here instead of failing on every page.
if [ ! -f staticfiles/staticfiles.json ]; then
  .venv/bin/python manage.py collectstatic --noinput -v0
fi

if [ "${PMS_SKIP_MIGRATE:-0}" != "1" ]; then
  DATABASE_URL="${DATABASE_MIGRATION_URL:-${DATABASE_URL:-}}" .venv/bin/python manage.py migrate --noinput
fi

# HOST, PORT, WEB_CONCURRENCY, WS_CONCURRENCY, NGINX_WORKERS, TLS_CERT_FILE/TLS_KEY_FILE,
# FORWARDED_ALLOW_IPS, ACCESS_LOG: see pms_backend/server.py and docs/deployment.md.
exec .venv/bin/python -m pms_backend.server
