#!/usr/bin/env bash
# Production build: install (the Python dependencies, and nginx, the web tier's front, from
# Debian's packages when run as root), collect static files, run Django's deployment checks
# with the production environment, and fail if a model change has no migration.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
source scripts/lib/system.sh
ensure_venv
ensure_system_package nginx nginx "the web tier's front (scripts/start.sh)"

if [ "${DJANGO_DEBUG:-false}" = "true" ]; then
  echo "error: build.sh checks the production settings; unset DJANGO_DEBUG" >&2
  exit 2
fi
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  echo "error: set DJANGO_SECRET_KEY (and DJANGO_ALLOWED_HOSTS) as production will" >&2
  exit 2
fi
# Said explicitly, so that a local .env (dev.sh writes DJANGO_DEBUG=true) cannot turn the
# checks below into checks of the development settings.
export DJANGO_DEBUG=false

.venv/bin/python manage.py collectstatic --noinput -v0
.venv/bin/python manage.py check --deploy --fail-level WARNING
# Migrations are the owner's business (DATABASE_MIGRATION_URL; unset: DATABASE_URL).
DATABASE_URL="${DATABASE_MIGRATION_URL:-${DATABASE_URL:-}}" \
  .venv/bin/python manage.py makemigrations --check --dry-run
echo "==> build ok"
