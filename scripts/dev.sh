#!/usr/bin/env bash
# From a fresh clone to a running shop: venv, install, migrate, demo data, an admin login,
# the server on http://127.0.0.1:8000 and a worker running the scheduled jobs.
# Embedded defaults (SQLite, local-memory cache, in-memory channel layer, file-system
# broker) unless DATABASE_URL / REDIS_URL are set. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
ensure_venv

mkdir -p var
if [ ! -f .env ]; then
  echo "==> writing .env (local development settings)"
  .venv/bin/python - <<'PY'
import base64, secrets
lines = [
    "DJANGO_DEBUG=true",
    f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}",
    f"PMS_DEV_ADMIN_PASSWORD={secrets.token_urlsafe(12)}",
]
open(".env", "w").write("\n".join(lines) + "\n")
PY
fi
set -a; source .env; set +a

.venv/bin/python manage.py migrate --noinput -v0
# The demo shop: products, their stock, a month of orders and the dashboard's history
# (adds nothing on a second run).
.venv/bin/python manage.py seed_database --products "${PMS_DEMO_PRODUCTS:-200}" \
  --orders "${PMS_DEMO_ORDERS:-150}" --no-progress
.venv/bin/python manage.py shell -v0 -c "
import os
from django.contrib.auth import get_user_model
User = get_user_model()
user, _ = User.objects.get_or_create(username='admin', defaults={'email': 'admin@example.com'})
user.is_staff = user.is_superuser = user.is_active = True
user.set_password(os.environ['PMS_DEV_ADMIN_PASSWORD'])
user.save()
"

.venv/bin/celery -A pms_backend worker --beat --loglevel warning --concurrency 1 \
  >var/worker.log 2>&1 &
worker_pid=$!
trap 'kill $worker_pid 2>/dev/null || true' EXIT INT TERM

port="${PORT:-8000}"
cat <<MSG

  PMS backend is running (worker log: var/worker.log)
    admin:    http://127.0.0.1:${port}/admin/   user: admin   password: ${PMS_DEV_ADMIN_PASSWORD}
    API:      http://127.0.0.1:${port}/api/v1/  docs: http://127.0.0.1:${port}/api/docs/
    API key:  .venv/bin/python manage.py generate_api_key --name me --scopes storefront

MSG
# As start.sh's websocket processes: a frame over the limit is refused from its header
# (uvicorn's default, 16 MiB, is read into memory first).
.venv/bin/uvicorn pms_backend.asgi:application --host 127.0.0.1 --port "$port" \
  --ws-max-size "${PMS_WEBSOCKET_MAX_MESSAGE_BYTES:-5120}" --reload --log-level warning
